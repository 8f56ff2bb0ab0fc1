"""Approve, block, promote, roll back: each a signed ledger entry, each refused when not allowed.

The rules are the ledger's own (`clgate.ledger.Governance`), checked again inside the append
transaction, so the CLI, the dashboard and a raw `clgate ledger append` all meet the same refusal.
Here they are asked first only to say why in a friendly way, and to gather what a promotion must
carry (a witnessed checkpoint, where the policy requires witnesses).
"""

from __future__ import annotations

from clgate.audit.journal import Journal
from clgate.audit.state import LedgerState
from clgate.errors import InputError
from clgate.ledger import Approval, Block, CheckpointNote, Promotion, Rollback, UpdateState


def _update(state: LedgerState, ref: str) -> UpdateState:
    update = state.find(ref)
    if update is None:
        raise InputError(
            f"no update {ref!r} in the ledger (give an update id, a candidate digest or an entry index)"
        )
    return update


def promotion_refusal(state: LedgerState, update: UpdateState, signer: str | None = None) -> str | None:
    """Why `update` may not be promoted now (by `signer`, if given), or None if it may."""
    return state.governance.promotion_refusal(update, signer)


def approve(journal: Journal, ref: str, note: str = "") -> int:
    update = _update(journal.state(), ref)
    return journal.append(Approval(update_id=update.update_id, note=note), update.candidate_digest)


def block(journal: Journal, ref: str, reason: str) -> int:
    update = _update(journal.state(), ref)
    if not reason.strip():
        raise InputError("a block needs a reason")
    return journal.append(Block(update_id=update.update_id, reason=reason), update.candidate_digest)


def witnessed_checkpoint(journal: Journal, update: UpdateState) -> CheckpointNote | None:
    """The latest stored checkpoint that covers the update's audit, if its policy needs witnesses: of those
    the journal's verification checked (a row inserted since, its cosignatures unchecked, would be cited)."""
    if update.audit is None or update.audit.witnesses.required == 0:
        return None
    assert update.audit_index is not None
    covering = [cp for cp in journal.verified_checkpoints if cp.size > update.audit_index]
    if not covering:
        raise InputError(
            f"update {update.update_id} needs a checkpoint after entry {update.audit_index} cosigned by "
            f"{update.audit.witnesses.required} witness(es): run `clgate ledger checkpoint`, then "
            "`clgate ledger witness` on each witness"
        )
    return max(covering, key=lambda cp: (len(cp.signatures), cp.size))


def promote(journal: Journal, ref: str) -> int:
    state = journal.state()
    update = _update(state, ref)
    refusal = promotion_refusal(state, update, journal.signer_id)
    if refusal:
        raise InputError(f"promotion refused: {refusal}")
    checkpoint = witnessed_checkpoint(journal, update)
    body = Promotion(
        update_id=update.update_id,
        slot=update.slot,
        replaced=state.deployed(update.deployment).get(update.slot),
        checkpoint=checkpoint.to_text() if checkpoint else None,
    )
    return journal.append(body, update.candidate_digest)


def rollback(journal: Journal, ref: str, reason: str) -> int:
    """Put a previously promoted update back in its slot; the one it replaces needs a new proposal."""
    state = journal.state()
    target = _update(state, ref)
    if not reason.strip():
        raise InputError("a rollback needs a reason")
    refusal = state.governance.rollback_refusal(target)
    if refusal:
        raise InputError(f"rollback refused: {refusal}")
    body = Rollback(
        update_id=target.update_id,
        slot=target.slot,
        replaced=state.deployed(target.deployment).get(target.slot),
        reason=reason,
    )
    return journal.append(body, target.candidate_digest)
