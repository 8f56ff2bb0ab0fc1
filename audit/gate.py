"""The promotion gate: proposal → manifests → `update.proposed` → checks → verdict → `audit.completed`.

Fail closed at every step: a check that raises, times out or does not run blocks the update,
and once an update is proposed its audit is always recorded, even when the gate itself breaks.
"""

from __future__ import annotations

import fcntl
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import rfc8785

from clgate.artifacts import ArtifactKind, Manifest, check_adapter_fits, compute_manifest, resolve_model_dir
from clgate.audit.checks import GateInputs
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.journal import Journal
from clgate.audit.judge import CheckOutcome, judge
from clgate.audit.policy import Policy
from clgate.audit.report import write_gate_report
from clgate.audit.result import CheckSummary, GateResult
from clgate.audit.runner import run_checks
from clgate.audit.verdict import Decision, Finding, Status, Verdict
from clgate.errors import InputError

_ROLES_KIND = {
    "parent": ArtifactKind.MODEL,
    "candidate": ArtifactKind.MODEL,
    "adapter": ArtifactKind.ADAPTER,
    "data": ArtifactKind.DATASET,
    "memory_old": ArtifactKind.MEMORY,
    "memory_new": ArtifactKind.MEMORY,
    "target": ArtifactKind.DATASET,
}


@dataclass(frozen=True)
class GateRequest:
    parent: Path
    candidate: Path | None = None
    adapter: Path | None = None
    data: Path | None = None
    memory_old: Path | None = None
    memory_new: Path | None = None
    target: Path | None = None
    out_dir: Path = Path("clgate-report")
    cache_dir: Path | None = None
    seed: int = 0
    pipeline: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        kinds = [
            k
            for k, present in (
                ("model", self.candidate),
                ("adapter", self.adapter),
                ("memory", self.memory_new),
            )
            if present
        ]
        if len(kinds) != 1:
            raise InputError(
                "an update is exactly one of --candidate, --adapter or --memory-new "
                f"(got {', '.join(kinds) or 'none'})"
            )
        if self.memory_new and not self.memory_old:
            raise InputError("--memory-new needs --memory-old (the store it changes)")
        return kinds[0]


def _manifests(request: GateRequest, progress: Callable[[str, str], None] | None) -> dict[str, Manifest]:
    out = {}
    for role, kind in _ROLES_KIND.items():
        path = getattr(request, role)
        if path is not None:
            if progress:
                progress(f"manifest:{role}", "hashing")
            out[role] = compute_manifest(path, kind)
    return out


@contextmanager
def _exclusive(lock_dir: Path, key: str) -> Iterator[None]:
    """One gate per candidate at a time on this machine: a racing second gate is refused."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"gate-{key[:24]}.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError("another gate is already auditing this update; wait for it to finish") from None
        yield


def _proposal(request: GateRequest, manifests: dict[str, Manifest], base: str) -> dict:
    artifacts = {
        role: {
            "kind": m.kind.value,
            "uri": str(Path(getattr(request, role)).resolve()),
            "digest": m.root,
            "files": {f.path: f.sha256 for f in m.files},
        }
        for role, m in manifests.items()
    }
    candidate_role = {"model": "candidate", "adapter": "adapter", "memory": "memory_new"}[request.kind]
    artifacts["candidate"] = artifacts[candidate_role]
    body = {
        "kind": request.kind,
        "base": base,
        "artifacts": artifacts,
        "pipeline": dict(request.pipeline),
        "nonce": secrets.token_hex(8),
    }
    body["update_id"] = hashlib.sha256(rfc8785.dumps(body)).hexdigest()[:16]
    return body


def _lineage_findings(request: GateRequest, journal: Journal, parent_digest: str) -> list[Finding]:
    """An adapter or memory is audited against the base it will actually run on."""
    current = journal.state().current_base
    if request.kind == "model" or current is None or current == parent_digest:
        return []
    return [
        Finding(
            rule="lineage",
            check="lineage",
            status=Status.FAIL,
            reason=f"parent {parent_digest[:19]}… is not the promoted base {current[:19]}…; "
            "audit the update against the base it will run on",
        )
    ]


def run_gate(
    request: GateRequest,
    policy: Policy,
    journal: Journal,
    progress: Callable[[str, str], None] | None = None,
) -> GateResult:
    start = time.perf_counter()
    kind = request.kind
    policy.unknown_checks(set(GATE_CHECKS))
    parent_dir = resolve_model_dir(request.parent, request.cache_dir)
    if request.adapter is not None:
        check_adapter_fits(request.adapter, parent_dir)
    manifests = _manifests(request, progress)
    base = manifests["candidate"].root if kind == "model" else manifests["parent"].root
    proposal = _proposal(request, manifests, base)
    update_id = proposal["update_id"]
    cache_dir = request.cache_dir or Path(request.out_dir) / ".cache"
    with _exclusive(journal.lock_dir, proposal["artifacts"]["candidate"]["digest"].removeprefix("sha256:")):
        proposed = journal.propose(proposal)
        inputs = GateInputs(
            parent=parent_dir,
            candidate=request.candidate,
            adapter=request.adapter,
            data=request.data,
            memory_old=request.memory_old,
            memory_new=request.memory_new,
            target=request.target,
            cache_dir=cache_dir,
            seed=request.seed,
            manifests=manifests,
            options={name: policy.options_for(name) for name in policy.checks},
        )
        try:
            checks = [c for c in GATE_CHECKS.values() if c.applies(inputs)]
            outcomes = run_checks(checks, inputs, policy.timeout_for, cache_dir / "checks", progress)
        except Exception as exc:  # the gate broke: record a blocking audit rather than none
            outcomes = {"gate": CheckOutcome("gate", None, error=f"{type(exc).__name__}: {exc}")}
        verdict = judge(policy, outcomes, kind)
        lineage = _lineage_findings(request, journal, manifests["parent"].root)
        if lineage:
            verdict = Verdict.from_findings([*verdict.findings, *lineage])
        measurements = {n: o.measurement for n, o in outcomes.items() if o.measurement is not None}
        audited = journal.complete(
            update_id,
            proposal,
            verdict,
            policy,
            {n: journal.evidence.put(m) for n, m in measurements.items()},
        )
        entries = {"update.proposed": proposed, "audit.completed": audited}
        if verdict.decision is Decision.BLOCK:
            entries["promotion.blocked"] = journal.block(update_id, proposal, verdict)
    result = GateResult(
        update_id=update_id,
        proposal=proposal,
        verdict=verdict,
        checks=tuple(CheckSummary.of(o) for o in outcomes.values()),
        measurements=measurements,
        policy={"name": policy.name, "digest": policy_digest(policy)},
        ledger_entries=entries,
        seconds=time.perf_counter() - start,
    )
    out = Path(request.out_dir)
    for name, m in measurements.items():
        m.write(out / "measurements" / f"{name}.json")
    write_gate_report(result, out)
    return result


def policy_digest(policy: Policy) -> str:
    return "sha256:" + hashlib.sha256(rfc8785.dumps(policy.model_dump(mode="json"))).hexdigest()
