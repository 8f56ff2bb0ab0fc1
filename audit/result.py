"""The record of one gate run: what was audited, what every check measured, and the verdict."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from clgate.audit.judge import CheckOutcome
from clgate.audit.verdict import Verdict
from clgate.ledger import Proposal
from clgate.measurement import Measurement


class CheckSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    seconds: float
    cached: bool
    error: str | None = None
    measurement_digest: str | None = None

    @classmethod
    def of(cls, outcome: CheckOutcome) -> CheckSummary:
        digest = outcome.measurement.digest if outcome.measurement else None
        return cls(
            name=outcome.name,
            seconds=round(outcome.seconds, 3),
            cached=outcome.cached,
            error=outcome.error,
            measurement_digest=digest,
        )


class GateResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    update_id: str
    proposal: Proposal
    verdict: Verdict
    checks: tuple[CheckSummary, ...]
    measurements: dict[str, Measurement]
    policy: dict[str, str]
    ledger_entries: dict[str, int]
    seconds: float
    model_loads: int = 0  # weight loads by the run's model pool: each model once
    served_requests: int = 0  # requests answered by the servers of a served update
    served_waiting_s: float = 0.0  # wall time with a request to them in flight
