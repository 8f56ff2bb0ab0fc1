"""What the deployed model answered when it was promoted: the yardstick of a scheduled `behaviour` check.

The audit that promoted the deployed model (or the adapter the deployment runs on it) recorded its `evals`
measurement in the ledger by digest; that measurement's rows say, per suite and item, whether the
candidate (the model deployed now) answered right. A scheduled audit reruns those items on what is
deployed and pairs them with these answers. The files are checked by digest beside it, so a change here
is the runtime, the libraries or the hardware under the same bytes changing what the deployment says.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from clgate.audit.evidence import EvidenceStore
from clgate.audit.state import LedgerState
from clgate.errors import InputError
from clgate.ledger.canonical import canonical_json
from clgate.measurement import Measurement


@dataclass(frozen=True)
class PromotedAnswer:
    suite: str
    item: str
    correct: bool


@dataclass(frozen=True)
class PromotedAnswers:
    """The deployed update's answers at promotion, from the `evals` measurement its audit recorded."""

    update_id: str
    measurement: str
    """The digest of that measurement, as the ledger records it."""
    answers: tuple[PromotedAnswer, ...]
    datasets: dict[str, str]
    """Suite -> the digest of the items it ran then: a rerun on other items cannot be paired with it."""

    @property
    def digest(self) -> str:
        body = {"update": self.update_id, "measurement": self.measurement}
        return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()

    def suites(self) -> list[str]:
        return list(dict.fromkeys(a.suite for a in self.answers))

    def count(self, suite: str) -> int:
        return sum(a.suite == suite for a in self.answers)

    def as_measurement(self) -> Measurement:
        """The answers as a single-model eval measurement, to pair item by item with a rerun."""
        rows = [{"suite": a.suite, "id": a.item, "correct": a.correct} for a in self.answers]
        return Measurement(name="evals.promoted", version="1", details=rows)


def promoted_answers(
    state: LedgerState, deployment: str, evidence: EvidenceStore, adapter_given: bool
) -> PromotedAnswers | str:
    """The answers recorded by the audit that promoted what is rerun: the deployment's adapter when one is
    given (it runs on the base), else its base. Otherwise why there is nothing to compare with: the
    adapter the deployment runs was not given, or is stale (built on an earlier base, so no audit saw what
    runs now), or nothing deployed was promoted through an `evals` check.

    Evidence that is missing or altered raises (InputError, IntegrityError): the caller records it as a
    failure, since one deleted file must not silence the audit.
    """
    base = state.deployed_update("base", deployment)
    adapter = state.deployed_update("adapter", deployment)
    if adapter is not None and not adapter_given:
        return f"the deployment runs adapter {adapter.update_id}; give it with --deployed to rerun what runs"
    if adapter is not None and base is not None and adapter.base != base.candidate_digest:
        return f"adapter {adapter.update_id} was built on an earlier base: no audit saw what runs now"
    if adapter_given and adapter is None:
        return "no adapter was promoted to this deployment"
    update = adapter if adapter_given else base
    if update is None or "evals" not in update.measurements:
        return "no evals measurement was recorded when what is deployed was promoted"
    digest = update.measurements["evals"]
    measurement = evidence.get(digest)
    if measurement is None:
        raise InputError(
            f"the evals measurement {digest[:19]}… that promoted {update.update_id} is not in the evidence "
            "store beside the ledger; restore it from a backup of the evidence folder"
        )
    answers = tuple(
        PromotedAnswer(str(row["suite"]), str(row["id"]), bool(row["candidate_correct"]))
        for row in measurement.details
        if "candidate_correct" in row
    )
    suites = measurement.meta.get("candidate", {}).get("suites", {})
    datasets = {name: str(run.get("dataset_digest")) for name, run in suites.items()}
    return PromotedAnswers(update.update_id, digest, answers, datasets)
