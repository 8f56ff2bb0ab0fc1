"""Deployment-time audits: are the deployed files still the promoted ones, and has anything drifted?

A scheduled run checks each deployed artifact against the manifest its promotion recorded (a
tampered or silently replaced file is a block-level finding), reruns the policy's
`scheduled_checks` on what is deployed now (e.g. the memory store, which keeps changing), and
records an `audit.scheduled_run` entry. `serve` repeats that on an interval until SIGTERM.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clgate.artifacts import Manifest, compute_manifest, detect_kind, resolve_model_dir
from clgate.audit.baseline import PromotedAnswers, promoted_answers
from clgate.audit.check_inputs import GateInputs
from clgate.audit.eval_logs import LOG_FOLDER
from clgate.audit.evidence import EvidenceStore
from clgate.audit.gate import check_policy, gate_seal
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.journal import Journal
from clgate.audit.judge import judge
from clgate.audit.policy import Policy
from clgate.audit.regression import RegressionTask, regression_set
from clgate.audit.runner import CheckCache, run_checks
from clgate.audit.state import DEFAULT_DEPLOYMENT, LedgerState
from clgate.audit.verdict import Finding, Status, Verdict
from clgate.errors import InputError, IntegrityError
from clgate.ledger import SLOT_OF_KIND, ScheduledRun


@dataclass(frozen=True)
class ScheduledAudit:
    entry_index: int
    verdict: Verdict
    deployed: list[dict[str, Any]]


def _integrity(
    state: LedgerState, path: Path, manifest: Manifest, deployment: str
) -> tuple[dict[str, Any], Finding]:
    slot = SLOT_OF_KIND[manifest.kind.value if manifest.kind.value != "dataset" else "memory"]
    deployed = state.deployed_update(slot, deployment)
    update_id = deployed.update_id if deployed else None
    record: dict[str, Any] = {
        "deployment": deployment,
        "slot": slot,
        "path": str(path),
        "digest": manifest.root,
        "update_id": update_id,
    }
    if deployed is None:
        return record, Finding(
            rule="deployed-integrity",
            check="integrity",
            status=Status.FAIL,
            reason=f"{path} is deployed as the {slot}, but no {slot} was ever promoted",
        )
    promoted = deployed.proposal.candidate
    record["expected"] = promoted.digest
    if promoted.digest == manifest.root:
        return record, Finding(
            rule="deployed-integrity",
            check="integrity",
            status=Status.PASS,
            reason=f"deployed {slot} matches promoted update {update_id}",
        )
    now = {f.path: f.sha256 for f in manifest.files}
    then = promoted.files
    changed = sorted(p for p in now.keys() & then.keys() if now[p] != then[p])
    missing, extra = sorted(then.keys() - now.keys()), sorted(now.keys() - then.keys())
    record.update(changed=changed, missing=missing, extra=extra)
    parts = [
        f"{label}: {', '.join(v[:3])}"
        for label, v in (("changed", changed), ("missing", missing), ("extra", extra))
        if v
    ]
    return record, Finding(
        rule="deployed-integrity",
        check="integrity",
        status=Status.FAIL,
        reason=f"deployed {slot} differs from promoted update {update_id} ({'; '.join(parts)})",
    )


def _promoted_snapshot(
    state: LedgerState, deployment: str
) -> tuple[tuple[Path, Manifest] | None, list[Finding]]:
    """The memory store as promoted, where its proposal recorded it: what the live store is compared with.
    A file there that is no longer the promoted bytes is not used (a finding says so): the diff would
    hide what changed since."""
    memory = state.deployed_update("memory", deployment)
    snapshot = Path(memory.proposal.candidate.uri) if memory is not None else None
    if memory is None or snapshot is None or not snapshot.is_file():
        return None, []
    manifest = compute_manifest(snapshot)
    if manifest.root == memory.candidate_digest:
        return (snapshot, manifest), []
    return None, [
        Finding(
            rule="memory-snapshot",
            check="integrity",
            status=Status.WARN,
            reason=f"the promoted memory snapshot {snapshot} was changed since update {memory.update_id} "
            f"promoted it (digest {manifest.root[:19]}…): the live store is not compared with it entry by entry",
        )
    ]


def _baseline(
    state: LedgerState,
    policy: Policy,
    paths: dict[str, tuple[Path, Manifest]],
    deployment: str,
    evidence: EvidenceStore,
) -> tuple[PromotedAnswers | None, list[Finding]]:
    """The answers to rerun `behaviour` against, when the policy schedules it on a deployed model; else why
    not, as a finding: review when there is nothing to compare with, block when the recorded answers are
    missing or altered (one deleted file must not silence the audit: the run is still recorded)."""
    if "behaviour" not in policy.scheduled_checks or "base" not in paths:
        return None, []
    try:
        found = promoted_answers(state, deployment, evidence, adapter_given="adapter" in paths)
    except (InputError, IntegrityError) as exc:
        found, status = str(exc), Status.FAIL
    else:
        status = Status.WARN
    if isinstance(found, PromotedAnswers):
        return found, []
    reason = f"the deployed model's behaviour was not rerun: {found}"
    return None, [Finding(rule="behaviour-baseline", check="behaviour", status=status, reason=reason)]


def _earlier_tasks(
    state: LedgerState,
    policy: Policy,
    paths: dict[str, tuple[Path, Manifest]],
    deployment: str,
    evidence: EvidenceStore,
    cache_dir: Path,
) -> tuple[tuple[RegressionTask, ...] | None, list[Finding]]:
    """The deployment's earlier promoted tasks, which `memory.behaviour` asks with the live store's notes as
    a gate would; a set that cannot be found blocks the run, which is still recorded, and the rest runs."""
    if "memory.behaviour" not in policy.scheduled_checks or "memory" not in paths:
        return None, []
    try:
        regression = regression_set(state, deployment, evidence, cache_dir)
    except InputError as exc:
        reason = f"the deployment's earlier tasks were not asked with the live memory: {exc}"
        return None, [
            Finding(rule="regression-set", check="memory.behaviour", status=Status.FAIL, reason=reason)
        ]
    return (regression.tasks if regression else None), []


def _deployed_inputs(
    paths: dict[str, tuple[Path, Manifest]],
    snapshot: tuple[Path, Manifest] | None,
    promoted: PromotedAnswers | None,
    tasks: tuple[RegressionTask, ...] | None,
    cache_dir: Path,
    policy: Policy,
) -> GateInputs:
    """What is deployed, as gate inputs: the live memory is compared with the promoted snapshot and asked
    the deployment's earlier tasks, the model with the answers its promotion recorded (when the policy
    schedules `behaviour`)."""
    roles = {"base": "parent", "adapter": "adapter", "memory": "memory_new"}
    inputs: dict[str, Path] = {roles[slot]: path for slot, (path, _) in paths.items()}
    manifests = {roles[slot]: manifest for slot, (_, manifest) in paths.items()}
    if "adapter" in paths:  # the adapter deployed is the one the memory is asked through
        inputs["deployed_adapter"], manifests["deployed_adapter"] = paths["adapter"]
    if "memory" in paths and snapshot is not None:
        inputs["memory_old"], manifests["memory_old"] = snapshot
    return GateInputs(
        **inputs,
        promoted=promoted,
        regression_tasks=tasks,
        suites=tuple(policy.suites) or None,
        cache_dir=cache_dir,
        # this run's own folder: `inspect view` on it opens what the recorded numbers rest on
        log_dir=(cache_dir / LOG_FOLDER / datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")).resolve(),
        manifests=manifests,
        options={name: policy.options_for(name) for name in policy.checks},
    )


def scheduled_audit(
    journal: Journal,
    policy: Policy,
    deployed: list[Path],
    cache_dir: Path,
    progress: Callable[[str, str], None] | None = None,
    deployment: str = DEFAULT_DEPLOYMENT,
) -> ScheduledAudit:
    if not deployed:
        raise InputError("give at least one --deployed path (model directory, adapter or memory store)")
    # an adopted policy, as a gate's: a run judged by a policy nobody adopted is no monitoring evidence, and
    # a misspelt scheduled check would be skipped and the run recorded clean
    check_policy(policy, journal, [deployment])
    state = journal.state()
    if deployment != DEFAULT_DEPLOYMENT and deployment not in state.governance.deployments():
        raise InputError(f"no deployment {deployment!r} in the ledger")  # a typo would record a phantom run
    records, findings, paths = [], [], {}
    for path in deployed:
        # deployed files are checked by root and file digests; a probe needing tensor digests computes its own
        manifest = compute_manifest(path, detect_kind(path), tensors=False)
        record, finding = _integrity(state, Path(path), manifest, deployment)
        records.append(record)
        findings.append(finding)
        paths[record["slot"]] = (Path(path), manifest)
    snapshot, noted = _promoted_snapshot(state, deployment) if "memory" in paths else (None, [])
    promoted, not_rerun = _baseline(state, policy, paths, deployment, journal.evidence)
    tasks, not_asked = _earlier_tasks(state, policy, paths, deployment, journal.evidence, cache_dir)
    findings += noted + not_rerun + not_asked
    gate_inputs = _deployed_inputs(paths, snapshot, promoted, tasks, cache_dir, policy)
    if "base" in paths and any("parent" in GATE_CHECKS[n].needs for n in policy.scheduled_checks):
        # a GGUF base is asked through a dequantisation this key sealed, not whatever the cache holds
        base = resolve_model_dir(paths["base"][0], cache_dir, "float32", gate_seal(journal))
        gate_inputs = replace(gate_inputs, parent=base)
    applicable = [
        n for n in policy.scheduled_checks if n in GATE_CHECKS and GATE_CHECKS[n].applies(gate_inputs)
    ]
    checks = [GATE_CHECKS[n] for n in applicable]
    cache = CheckCache(cache_dir, journal.signer, journal.evidence) if journal.signer else None
    outcomes = run_checks(checks, gate_inputs, policy.timeout_for, cache, progress)
    scheduled_policy = policy.model_copy(update={"required_checks": applicable})
    verdict = Verdict.from_findings([*findings, *judge(scheduled_policy, outcomes).findings])
    body = ScheduledRun(
        verdict=verdict.decision,
        deployment=deployment,
        deployed=records,
        findings=[f.model_dump(mode="json") for f in verdict.findings],
        measurements={n: journal.evidence.put(o.measurement) for n, o in outcomes.items() if o.measurement},
        policy=policy.ref.model_dump(),
    )
    index = journal.append(body, None)
    return ScheduledAudit(index, verdict, records)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LONGEST_S = 366 * 86400


def parse_interval(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not match or float(match[1]) <= 0:
        raise InputError(f"interval {text!r} is not like 30s, 15m, 6h or 1d")
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds > _LONGEST_S:
        raise InputError(f"interval {text!r} is longer than a year")
    return seconds


def serve(run_once: Callable[[], Any], every_s: float, on_error: Callable[[Exception], None]) -> None:
    """Run `run_once` now, then every `every_s` seconds until SIGTERM or SIGINT; exit cleanly. The first run
    is the check of the command's input: its error ends the command (a missing key or file would fail every
    run), while a later run's is reported and tried again at the next interval (a database restarting)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    run_once()
    scheduler = BlockingScheduler()

    def job() -> None:
        try:
            run_once()
        except Exception as exc:  # a failed run is reported and retried next interval
            on_error(exc)

    scheduler.add_job(job, "interval", seconds=every_s, max_instances=1, coalesce=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: scheduler.shutdown(wait=False))
    scheduler.start()
