"""The gate's view of the ledger: verify before writing, replay state, append typed entries.

Evidence (full measurements, pinned in entries by digest) is kept beside a SQLite ledger in
`evidence/`, or in `evidence_dir` for a PostgreSQL ledger.

Every write in clgate.audit goes through here, signed with one key, and only after the whole
ledger verified: the gate refuses to add records to a ledger it cannot vouch for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clgate.artifacts import default_cache_dir
from clgate.audit.evidence import EvidenceStore
from clgate.audit.policy import Policy
from clgate.audit.state import LedgerState, replay
from clgate.audit.verdict import Verdict
from clgate.errors import InputError
from clgate.ledger import Ledger, Trust, key_id


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


@dataclass
class Journal:
    ledger: Ledger
    signer: Ed25519PrivateKey | None
    lock_dir: Path
    evidence: EvidenceStore

    @classmethod
    def open(
        cls,
        target: str | Path,
        signer: Ed25519PrivateKey | None = None,
        trust: Trust | Path | None = None,
        evidence_dir: Path | None = None,
    ) -> Journal:
        """Open and fully verify the ledger; a tampered ledger is refused before anything is written."""
        if _is_file(target) and not Path(target).is_file():
            raise InputError(f"{target}: no such ledger (create one with `clgate ledger init`)")
        home = ledger_home(target, evidence_dir)
        lock_dir, evidence = home / ".clgate-locks", evidence_store(target, evidence_dir)
        ledger = Ledger.open(target, trust)
        problems = ledger.verify(trust)
        if problems:
            ledger.close()
            raise InputError(
                f"ledger {target} fails verification ({len(problems)} problem(s), first: {problems[0]}); "
                "refusing to use it"
            )
        return cls(ledger, signer, lock_dir, evidence)

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def signer_id(self) -> str:
        if self.signer is None:
            raise InputError("this action needs a signing key (--key)")
        return key_id(self.signer.public_key())

    def state(self) -> LedgerState:
        return replay(self.ledger.entries())

    def append(self, entry_type: str, subject: str, body: dict[str, Any]) -> int:
        if self.signer is None:
            raise InputError("this action needs a signing key (--key)")
        entry = self.ledger.append({"type": entry_type, "body": body}, self.signer, subject=subject)
        return entry.index

    def propose(self, proposal: dict[str, Any]) -> int:
        return self.append("update.proposed", proposal["artifacts"]["candidate"]["digest"], proposal)

    def complete(
        self,
        update_id: str,
        proposal: dict[str, Any],
        verdict: Verdict,
        policy: Policy,
        measurements: dict[str, str],
    ) -> int:
        body = {
            "update_id": update_id,
            "verdict": verdict.decision.value,
            "findings": [f.model_dump(mode="json") for f in verdict.findings],
            "measurements": measurements,
            "policy": policy.name,
            "approvals": policy.approvals.model_dump(),
        }
        return self.append("audit.completed", proposal["artifacts"]["candidate"]["digest"], body)

    def block(self, update_id: str, proposal: dict[str, Any], verdict: Verdict) -> int:
        reason = "; ".join(f.reason for f in verdict.blocking if f.status.value == "fail")[:1000]
        body = {"update_id": update_id, "reason": reason or "blocked by policy"}
        return self.append("promotion.blocked", proposal["artifacts"]["candidate"]["digest"], body)
