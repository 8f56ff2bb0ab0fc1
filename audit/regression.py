"""A deployment's regression set: the target sets of the updates it promoted, rerun at every later gate.

An update gated with `--target` has its target set kept in the evidence store, by the SHA-256 its
signed proposal recorded. Once the update is promoted, that set joins its deployment's regression
set: every later gate reruns each set on the candidate (the `regression` check), so an earlier task
is protected by its own data, not by the general suites. The accuracy matrix R comes from the
ledger: R[l][j] is what the promoted model of task owner l scored on task j, recorded by l's audit
(its `evals` check for its own task, its `regression` check for the earlier ones).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from clgate.audit.evidence import EvidenceStore
from clgate.audit.state import LedgerState
from clgate.errors import InputError
from clgate.ledger import UpdateState
from clgate.ledger.canonical import canonical_json
from clgate.measurement import Measurement


@dataclass(frozen=True)
class RegressionTask:
    """One earlier promoted update's target set, where it is kept now."""

    update_id: str
    dataset: Path
    sha256: str


@dataclass(frozen=True)
class RegressionSet:
    """The deployment's earlier tasks, oldest first, and the accuracy matrix its audits recorded on them
    (`history[l][j]`: task owner l's promoted model on task j; NaN where it was never measured)."""

    tasks: tuple[RegressionTask, ...]
    history: tuple[tuple[float, ...], ...]

    @property
    def digest(self) -> str:
        """What a `regression` result depends on besides the models: the sets' bytes and the history."""
        history = [[None if math.isnan(x) else x for x in row] for row in self.history]
        body = {"tasks": _task_keys(self.tasks), "history": history}
        return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def _task_keys(tasks: tuple[RegressionTask, ...]) -> list[list[str]]:
    return [[t.update_id, t.sha256] for t in tasks]


def tasks_digest(tasks: tuple[RegressionTask, ...]) -> str:
    """What the earlier tasks' prompts depend on: which updates, and their sets' bytes."""
    return "sha256:" + hashlib.sha256(canonical_json(_task_keys(tasks))).hexdigest()


def keep_target(evidence: EvidenceStore, update: UpdateState, target: Path | None) -> None:
    """Keep the update's target set beside the ledger, so it can join the regression set once promoted."""
    if target is not None and update.kind != "memory" and Path(target).is_file():
        evidence.put_file(Path(target))


def _target_file(update: UpdateState) -> str | None:
    """The SHA-256 of the single file the update's target set was proposed as (None: no target)."""
    ref = update.proposal.artifacts.get("target")
    if ref is None:
        return None
    if len(ref.files) != 1:
        raise InputError(
            f"update {update.update_id}: its target set is not one JSONL file; it cannot be rerun"
        )
    return next(iter(ref.files.values()))


def task_owners(state: LedgerState, deployment: str, before: UpdateState | None = None) -> list[UpdateState]:
    """Promoted updates of `deployment` (not rolled back) that brought a target set, in promotion order."""
    owners = [
        u
        for u in state.updates.values()
        if u.deployment == deployment
        and u.promoted_index is not None
        and u.kind != "memory"
        and "target" in u.proposal.artifacts
        and (before is None or u.update_id != before.update_id)
    ]
    return sorted(owners, key=lambda u: u.promoted_index or 0)


def audited_accuracy(update_id: str, measurements: dict[str, Measurement]) -> dict[str, float]:
    """The accuracy an audit's candidate reached on each task its checks measured, by the task owner's id
    (its own target set under `update_id`): what its signed audit records as its row of the history."""
    accuracy = {}
    if "evals" in measurements:
        accuracy[update_id] = measurements["evals"].numbers.get("target.accuracy")
    if "regression" in measurements:
        regression = measurements["regression"]
        accuracy |= {t: regression.numbers.get(f"{t}.accuracy") for t in regression.meta.get("tasks", [])}
    return {task: float(v) for task, v in accuracy.items() if v is not None and math.isfinite(v)}


def _accuracy(evidence: EvidenceStore, owner: UpdateState, task: UpdateState, erased: set[str]) -> float:
    """What owner's audit recorded for its model on `task`'s set, in the signed audit itself; NaN if it
    measured nothing there. An audit recorded before audits carried it is read from its evidence: NaN if an
    erasure removed the measurement; a measurement missing otherwise is an InputError, since as NaN it would
    let the next gate measure forgetting against the parent alone, not the best accuracy the task reached."""
    if owner.audit is not None and owner.audit.accuracy:
        return owner.audit.accuracy.get(task.update_id, math.nan)
    check, metric = (
        ("evals", "target.accuracy") if owner is task else ("regression", f"{task.update_id}.accuracy")
    )
    digest = owner.measurements.get(check)
    measurement = evidence.get(digest) if digest else None
    if digest and measurement is None and digest not in erased:
        raise InputError(
            f"the {check} measurement {digest[:19]}… that update {owner.update_id}'s audit recorded is missing "
            f"from the evidence store {evidence.folder}; restore it (the regression history rests on it)"
        )
    value = measurement.numbers.get(metric) if measurement else None
    return float("nan") if value is None else float(value)


def accuracy_history(
    state: LedgerState, evidence: EvidenceStore, owners: list[UpdateState]
) -> list[list[float]]:
    """R[l][j] of the task owners, from their audits' evidence (NaN above the diagonal: not yet learnt)."""
    erased = {d for e in state.governance.erasures.values() for d in e.evidence_removed}
    return [
        [_accuracy(evidence, owner, task, erased) if j <= i else math.nan for j, task in enumerate(owners)]
        for i, owner in enumerate(owners)
    ]


def regression_set(
    state: LedgerState,
    deployment: str,
    evidence: EvidenceStore,
    workdir: Path,
    before: UpdateState | None = None,
) -> RegressionSet | None:
    """The regression set of `deployment` that a gate of `before` reruns (a memory update's: asks with its
    notes), or a scheduled audit asks the live memory with; None when the deployment promoted no target set.

    Each set is read from the evidence store, else from where it was proposed, and must have the bytes
    its proposal recorded: a set that can be found nowhere is an InputError (restore it), never skipped.
    What is scored is a copy in `workdir` (the run's own) of the bytes checked.
    """
    owners = task_owners(state, deployment, before=before)
    tasks = []
    into = Path(workdir) / "regression"
    for owner in owners:
        sha256 = _target_file(owner)
        assert sha256 is not None
        kept = evidence.copy_of(sha256, into, ".jsonl")
        proposed = Path(owner.proposal.artifacts["target"].uri)
        if kept is None and proposed.is_file():
            evidence.put_file(proposed)
            # None unless the proposed path held the same bytes
            kept = evidence.copy_of(sha256, into, ".jsonl")
        if kept is None:
            raise InputError(
                f"the target set of promoted update {owner.update_id} is neither kept with the ledger's evidence "
                f"nor unchanged at {proposed}; restore it there to audit deployment {deployment!r}"
            )
        tasks.append(RegressionTask(owner.update_id, kept, sha256))
    if not tasks:
        return None
    history = accuracy_history(state, evidence, owners)
    return RegressionSet(tuple(tasks), tuple(tuple(row) for row in history))
