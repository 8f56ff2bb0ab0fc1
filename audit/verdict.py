"""Findings and verdicts: the only place where a measurement becomes a judgement."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


class Decision(StrEnum):
    PROMOTE = "promote"
    REVIEW = "review"
    BLOCK = "block"

    @property
    def exit_code(self) -> int:
        return {Decision.PROMOTE: 0, Decision.REVIEW: 10, Decision.BLOCK: 20}[self]


class Finding(BaseModel):
    """A measurement judged against one policy rule, with the reason in one sentence."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    rule: str
    check: str
    status: Status
    reason: str
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    decision: Decision
    findings: tuple[Finding, ...]

    @classmethod
    def from_findings(cls, findings: list[Finding]) -> Verdict:
        statuses = {f.status for f in findings}
        decision = (
            Decision.BLOCK
            if Status.FAIL in statuses
            else Decision.REVIEW
            if Status.WARN in statuses
            else Decision.PROMOTE
        )
        return cls(decision=decision, findings=tuple(findings))

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.status is not Status.PASS)
