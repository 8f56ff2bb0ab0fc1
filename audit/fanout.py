"""Audits of a fleet, fanned out over processes or a Ray cluster: re-audits after a base upgrade, and the
scheduled audits of every deployment's memory store.

Promoting a new base makes every adapter and memory its deployment runs on the old one stale
(`LedgerState.pending_reaudit`), in every deployment. Each stale update is one job: propose it again on
the base its deployment runs now (superseding the stale proposal; pipeline key) and gate it (gate key).
Jobs share nothing but the ledger, to which each appends its own entries in its own transactions.
Adapters go first: a stale memory is judged through its deployment's re-audited adapter.

A job that dies between its proposal and its audit leaves the proposal unaudited ("audit incomplete");
the next run gates that proposal instead of proposing again, so a retry never records anything twice,
and a job never records half an audit (one append, in one transaction).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from clgate.audit.gate import GateRequest, GateRun, check_policy, gate_seal, propose, run_gate
from clgate.audit.journal import Journal, signing_key
from clgate.audit.policy import load_policy
from clgate.audit.schedule import scheduled_audit
from clgate.audit.state import LedgerState
from clgate.audit.workers import JobResult, Workers, fan_out
from clgate.errors import InputError
from clgate.ledger import UpdateState


@dataclass(frozen=True)
class ReauditSettings:
    """What every job needs, as paths and strings (sent to other processes and machines as is)."""

    ledger: str
    trust: Path
    pipeline_key: Path
    gate_key: Path
    out_dir: Path
    policy: Path | None = None
    cache_dir: Path | None = None
    device: str = "auto"
    dtype: str = "auto"
    seed: int = 0


@dataclass(frozen=True)
class ReauditJob:
    stale: str
    """The stale update's id."""
    settings: ReauditSettings


@dataclass(frozen=True)
class ReauditOutcome:
    stale: str
    deployment: str
    kind: str
    update_id: str | None = None
    """The re-audited proposal (None if the job recorded no audit)."""
    decision: str | None = None
    resumed: bool = False
    """It gated a proposal an earlier run left unaudited."""
    seconds: float = 0.0
    error: str | None = None
    attempts: int = 1
    worker: str = ""
    """The process that ran it (`host:pid`)."""


def pending_jobs(state: LedgerState) -> list[UpdateState]:
    """Stale adapters and memories, in every deployment, whose re-audit has not recorded an audit yet."""
    return [u for u in state.pending_reaudit() if state.reaudit_progress(u)[0] != "audited"]


def _request(state: LedgerState, stale: UpdateState) -> GateRequest:
    """The stale update's own artifacts, where its proposal recorded them, on the deployment's base now."""
    base = state.deployed_update("base", stale.deployment)
    assert base is not None  # a stale update has a deployed base it is not built on
    located = {role: Path(ref.uri) for role, ref in stale.proposal.artifacts.items() if role != "parent"}
    return GateRequest(
        parent=Path(base.proposal.artifacts["candidate"].uri),
        **located,
        deployment=stale.deployment,
        supersedes=stale.update_id,
        pipeline={"reaudit": stale.update_id},
    )


def reaudit(job: ReauditJob) -> ReauditOutcome:
    """One stale update re-proposed on its deployment's base and gated; its entries appended to the ledger."""
    s, start = job.settings, time.perf_counter()
    with Journal.open(s.ledger, signing_key(s.gate_key), s.trust) as journal:
        state = journal.state()
        stale = state.updates.get(job.stale)
        if stale is None:
            raise InputError(f"no update {job.stale} in the ledger")
        progress, resumed = state.reaudit_progress(stale)
        outcome = ReauditOutcome(stale.update_id, stale.deployment, stale.kind)
        if progress == "audited":
            assert resumed is not None
            return replace(outcome, update_id=resumed.update_id, decision=resumed.decision)
        policy = load_policy(s.policy)
        check_policy(policy, journal, [stale.deployment])
        request = _request(state, stale)
        run = GateRun(
            out_dir=s.out_dir / stale.update_id,
            cache_dir=s.cache_dir,
            seed=s.seed,
            device=s.device,
            dtype=s.dtype,
        )
        manifests = None
        if resumed is None:
            proposer = journal.as_signer(signing_key(s.pipeline_key))
            proposed = propose(request, proposer, run, seal=gate_seal(journal))
            update_id, manifests = proposed.proposal.update_id, proposed.manifests
        else:
            update_id = resumed.update_id
        result = run_gate(update_id, policy, journal, run, request, manifests)
    return replace(
        outcome,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        update_id=update_id,
        decision=result.verdict.decision.value,
        resumed=resumed is not None,
        seconds=time.perf_counter() - start,
    )


def _outcome(job: ReauditJob, result: JobResult[ReauditOutcome], state: LedgerState) -> ReauditOutcome:
    if result.value is not None:
        return replace(result.value, attempts=result.attempts)
    stale = state.updates[job.stale]
    error = f"audit {result.error}" if (result.error or "").startswith("incomplete") else result.error
    return ReauditOutcome(
        stale.update_id, stale.deployment, stale.kind, error=error, attempts=result.attempts
    )


def run_reaudits(
    settings: ReauditSettings,
    workers: Workers = Workers(),
    announce: Callable[[list[UpdateState]], None] | None = None,
) -> list[ReauditOutcome]:
    """Re-gate every stale update of every deployment; the ledger alone says what is left to do."""
    with Journal.open(settings.ledger, None, settings.trust) as journal:
        state = journal.state()
        stale = pending_jobs(state)
        # before any job starts: adopted, and for every deployment a job re-gates
        check_policy(load_policy(settings.policy), journal, [u.deployment for u in stale])
    if announce:
        announce(stale)
    waves = [[ReauditJob(u.update_id, settings) for u in wave] for wave in reaudit_waves(stale)]
    jobs = [job for wave in waves for job in wave]
    return [
        _outcome(job, result, state)
        for job, result in zip(jobs, fan_out(reaudit, waves, workers), strict=True)
    ]


def reaudit_waves(stale: list[UpdateState]) -> list[list[UpdateState]]:
    """Adapters before the memories of their deployment: a memory is judged through the adapter its
    deployment will run, which is the adapter's re-audit, so that must be recorded first."""
    readapted = {u.deployment for u in stale if u.kind == "adapter"}
    waiting = [u for u in stale if u.kind == "memory" and u.deployment in readapted]
    first = [u for u in stale if u not in waiting]
    return [wave for wave in (first, waiting) if wave]


@dataclass(frozen=True)
class ScheduledJob:
    """One deployment's memory store, audited where it is deployed (its scheduled checks, signed by `key`)."""

    deployment: str
    store: Path
    ledger: str
    trust: Path
    key: Path
    policy: Path | None
    cache_dir: Path


@dataclass(frozen=True)
class ScheduledOutcome:
    deployment: str
    store: Path
    entry_index: int | None = None
    decision: str | None = None
    error: str | None = None


def scheduled_memory_audit(job: ScheduledJob) -> ScheduledOutcome:
    """A scheduled audit of one deployment's deployed memory, recorded as its own `audit.scheduled_run`."""
    with Journal.open(job.ledger, signing_key(job.key), job.trust) as journal:
        result = scheduled_audit(
            journal,
            load_policy(job.policy),
            [job.store],
            job.cache_dir / job.deployment,
            deployment=job.deployment,
        )
    return ScheduledOutcome(job.deployment, job.store, result.entry_index, result.verdict.decision.value)


def fleet_memories(state: LedgerState, live: dict[str, Path]) -> dict[str, Path]:
    """Each deployment that runs a promoted memory, and where its store is: `live[deployment]` (the store it
    writes to now), else where its promoted snapshot was proposed."""
    unknown = sorted(set(live) - set(state.governance.deployments()))
    if unknown:
        raise InputError(f"no deployment {unknown[0]!r} in the ledger")
    out = {}
    for deployment in state.governance.deployments():
        memory = state.deployed_update("memory", deployment)
        if memory is not None:
            out[deployment] = live.get(deployment, Path(memory.proposal.candidate.uri))
    strays = sorted(set(live) - set(out))
    if strays:
        raise InputError(f"deployment {strays[0]!r} runs no promoted memory")
    return out


def run_scheduled(
    ledger: str,
    trust: Path,
    key: Path,
    policy: Path | None,
    cache_dir: Path,
    live: dict[str, Path],
    workers: Workers = Workers(),
) -> list[ScheduledOutcome]:
    """The scheduled audit of every deployment's memory store, one job each, where `workers` says."""
    with Journal.open(ledger, None, trust) as journal:
        stores = fleet_memories(journal.state(), live)
        check_policy(load_policy(policy), journal, stores)  # bad input before any job starts
    jobs = [ScheduledJob(d, p, ledger, trust, key, policy, cache_dir) for d, p in stores.items()]
    return [
        r.value or ScheduledOutcome(job.deployment, job.store, error=r.error)
        for job, r in zip(jobs, fan_out(scheduled_memory_audit, [jobs], workers), strict=True)
    ]
