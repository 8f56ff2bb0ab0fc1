"""The gate's view of the ledger: verify before writing, replay state, append typed entries.

Evidence (full measurements, pinned in entries by digest) is kept beside a SQLite ledger in
`evidence/`, or in `evidence_dir` for a PostgreSQL ledger.

Every write in clgate.audit goes through here, signed with one key, and only after the whole
ledger verified against the trust file and extended the largest head this machine verified
before: the gate refuses to add records to a ledger it cannot vouch for. The ledger itself then
checks each entry against its governance rules, inside the append transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clgate.artifacts import default_cache_dir
from clgate.audit.evidence import EvidenceStore
from clgate.audit.policy import Policy
from clgate.audit.state import LedgerState
from clgate.audit.verdict import Verdict
from clgate.errors import InputError, IntegrityError
from clgate.ledger import (
    AppendRefused,
    AuditRecord,
    Block,
    CheckpointNote,
    EntryBody,
    JudgedWith,
    Ledger,
    LedgerEntry,
    Proposal,
    SeenHeads,
    Trust,
    UpdateState,
    key_id,
    load_private_key,
    load_trust,
    merkle,
    parse_entry,
    passphrase_from_env,
)
from clgate.redact import display_target


def _is_file(target: str | Path) -> bool:
    return isinstance(target, Path) or "://" not in str(target)


def ledger_home(target: str | Path, evidence_dir: Path | None = None) -> Path:
    """Beside a SQLite file; for a PostgreSQL ledger, `evidence_dir` or the user cache."""
    if _is_file(target):
        return Path(target).resolve().parent
    return Path(evidence_dir or default_cache_dir() / "ledgers")


def evidence_store(target: str | Path, evidence_dir: Path | None = None) -> EvidenceStore:
    """The evidence of a ledger, for readers that do not open a `Journal` (the dashboard)."""
    return EvidenceStore(Path(evidence_dir or ledger_home(target, evidence_dir) / "evidence"))


def require_trust(trust: Trust | Path | None) -> Trust:
    """Every command that writes or reports needs the trust file: without it a forged ledger is believed."""
    if trust is None:
        raise InputError(
            "a trust file is required (--trust or $CLGATE_TRUST): without it a forged ledger would be believed"
        )
    return trust if isinstance(trust, Trust) else load_trust(Path(trust))


def signing_key(path: Path | None, passphrase_env: str | None = None) -> Ed25519PrivateKey | None:
    """A private key from `path`, its passphrase as `passphrase_from_env` finds it; None for no path."""
    return load_private_key(path, passphrase_from_env(passphrase_env)) if path else None


@dataclass
class Journal:
    ledger: Ledger
    signer: Ed25519PrivateKey | None
    lock_dir: Path
    evidence: EvidenceStore
    verified_size: int
    verified_root: bytes
    verified_checkpoints: list[CheckpointNote]

    @classmethod
    def open(
        cls,
        target: str | Path,
        signer: Ed25519PrivateKey | None,
        trust: Trust | Path | None,
        evidence_dir: Path | None = None,
        seen: SeenHeads | None = None,
    ) -> Journal:
        """Open and fully verify the ledger; a tampered, forked or truncated one is refused before any write."""
        anchors = require_trust(trust)
        if _is_file(target) and not Path(target).is_file():
            raise InputError(f"{target}: no such ledger (create one with `clgate ledger init`)")
        home = ledger_home(target, evidence_dir)
        lock_dir, evidence = home / ".clgate-locks", evidence_store(target, evidence_dir)
        ledger = Ledger.open(target, anchors)
        report = ledger.verify_report(seen=seen or SeenHeads())
        if report.problems:
            ledger.close()
            raise IntegrityError(
                f"ledger {display_target(target)} fails verification ({len(report.problems)} problem(s), "
                f"first: {report.problems[0]}); refusing to use it"
            )
        return cls(ledger, signer, lock_dir, evidence, report.size, report.root, report.checkpoints)

    def verified_entries(self) -> list[LedgerEntry]:
        """The entries verified when this journal opened, read again and held to the tree head verified then:
        an entry changed in the database since, or one appended since unverified, never reaches a report
        that says the ledger verified."""
        leaves = [leaf for _, leaf in self.ledger.store.read(stop=self.verified_size)]
        if len(leaves) != self.verified_size or (leaves and merkle.root(leaves) != self.verified_root):
            raise IntegrityError(
                f"the ledger's first {self.verified_size} entries changed after they verified; "
                "run `clgate ledger verify`"
            )
        return [parse_entry(index, leaf) for index, leaf in enumerate(leaves)]

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def as_signer(self, signer: Ed25519PrivateKey) -> Journal:
        """This verified journal signing with another key: one verification per command, whoever signs.

        The ledger still checks every entry's signer and rules on append; only the original closes it.
        """
        return replace(self, signer=signer)

    @property
    def signer_id(self) -> str:
        if self.signer is None:
            raise InputError("this action needs a signing key (--key)")
        return key_id(self.signer.public_key())

    def require_role(self, type_name: str) -> None:
        """Refuse now what the ledger would refuse to record for this signer's roles: before a command
        writes a file that only the record explains."""
        governance = self.ledger.governance()
        refusal = governance.ring.check(governance.size, self.signer_id, type_name, {})
        if refusal:
            raise AppendRefused(f"refused: {refusal}")

    def state(self) -> LedgerState:
        return LedgerState(self.ledger.governance())

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """One holder of `name` at a time across every machine sharing this ledger."""
        with self.ledger.store.exclusive(name, self.lock_dir):
            yield

    def append(self, body: EntryBody, subject: str | None) -> int:
        """Sign and append one typed entry; the ledger refuses what its rules forbid (AppendRefused)."""
        if self.signer is None:
            raise InputError("this action needs a signing key (--key)")
        return self.ledger.append(body, self.signer, subject=subject).index

    def propose(self, proposal: Proposal) -> int:
        return self.append(proposal, proposal.candidate.digest)

    def complete(
        self,
        update: UpdateState,
        verdict: Verdict,
        policy: Policy,
        measurements: dict[str, str],
        judged_with: JudgedWith | None = None,
        accuracy: dict[str, float] | None = None,
    ) -> int:
        """Record the audit of `update`; `judged_with`: for a memory update, the model it was asked through;
        `accuracy`: its candidate's on the deployment's tasks, by task (the regression history's row)."""
        record = AuditRecord(
            update_id=update.update_id,
            verdict=verdict.decision,
            findings=list(verdict.findings),
            measurements=measurements,
            policy=policy.ref,
            approvals=policy.approvals,
            witnesses=policy.witnesses,
            judged_with=judged_with,
            accuracy=accuracy or {},
        )
        return self.append(record, update.candidate_digest)

    def block(self, update: UpdateState, verdict: Verdict) -> int:
        reason = "; ".join(f.reason for f in verdict.blocking if f.status.value == "fail")[:1000]
        body = Block(update_id=update.update_id, reason=reason or "blocked by policy")
        return self.append(body, update.candidate_digest)
