"""Verdicts: the only place where findings become a decision.

`Finding`, `Status` and `Decision` are records the ledger stores (and checks: an audit's verdict
must follow from its findings), so they are defined there; the rule from findings to a decision
is `clgate.ledger.decision_of`, used here and by the ledger alike.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from clgate.ledger import NOT_APPLICABLE, Decision, Finding, Status, decision_of

__all__ = ["NOT_APPLICABLE", "Decision", "Finding", "Status", "Verdict"]


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    decision: Decision
    findings: tuple[Finding, ...]

    @classmethod
    def from_findings(cls, findings: list[Finding]) -> Verdict:
        return cls(decision=decision_of(f.status for f in findings), findings=tuple(findings))

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status is not Status.PASS)
