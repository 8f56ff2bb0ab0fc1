"""Signed, append-only update ledger: DSSE/Ed25519 entries in an RFC 6962 Merkle log.

Open a ledger with `Ledger.open(path_or_url)`, append with `ledger.append(entry, signer=key)`,
verify with `ledger.verify(trust)`. Everything an outside verifier needs is in `export_bundle`.
"""

from clgate.ledger import merkle
from clgate.ledger.checkpoint import (
    Checkpoint,
    load_checkpoint,
    parse_checkpoint,
    save_checkpoint,
    sign_checkpoint,
)
from clgate.ledger.dsse import Envelope, sign_envelope
from clgate.ledger.entries import (
    ENTRY_TYPES,
    AuditCompleted,
    AuditScheduledRun,
    EntryBody,
    EntryDraft,
    EntryPayload,
    KeyAdded,
    KeyRevoked,
    Note,
    PromotionApproved,
    PromotionBlocked,
    PromotionDone,
    Rollback,
    UpdateProposed,
    entry_type,
    roles_for,
)
from clgate.ledger.export import (
    Bundle,
    intoto_statement,
    load_bundle,
    verify_bundle,
    write_attestations,
    write_bundle,
)
from clgate.ledger.keys import (
    ROLES,
    Role,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    save_private_key,
    save_public_key,
)
from clgate.ledger.log import AppendRefused, Ledger, LedgerEntry, parse_entry
from clgate.ledger.trust import KeyRing, Trust, TrustedKey, load_trust, save_trust
from clgate.ledger.verify import Problem, Report

__all__ = [
    "ENTRY_TYPES",
    "ROLES",
    "AppendRefused",
    "AuditCompleted",
    "AuditScheduledRun",
    "Bundle",
    "Checkpoint",
    "EntryBody",
    "EntryDraft",
    "EntryPayload",
    "Envelope",
    "KeyAdded",
    "KeyRevoked",
    "KeyRing",
    "Ledger",
    "LedgerEntry",
    "Note",
    "Problem",
    "PromotionApproved",
    "PromotionBlocked",
    "PromotionDone",
    "Report",
    "Role",
    "Rollback",
    "Trust",
    "TrustedKey",
    "UpdateProposed",
    "entry_type",
    "generate_key",
    "intoto_statement",
    "key_id",
    "load_bundle",
    "load_checkpoint",
    "load_private_key",
    "load_public_key",
    "load_trust",
    "merkle",
    "parse_checkpoint",
    "parse_entry",
    "roles_for",
    "save_checkpoint",
    "save_private_key",
    "save_public_key",
    "save_trust",
    "sign_checkpoint",
    "sign_envelope",
    "verify_bundle",
    "write_attestations",
    "write_bundle",
]
