"""Re-audits after a base upgrade, fanned out over processes or a Ray cluster.

Promoting a new base makes every adapter and memory its deployment runs on the old one stale
(`LedgerState.pending_reaudit`), in every deployment. Each stale update is one job: propose it again on
the base its deployment runs now (superseding the stale proposal; pipeline key) and gate it (gate key).
Jobs share nothing but the ledger, to which each appends its own entries in its own transactions.

A job that dies between its proposal and its audit leaves the proposal unaudited ("audit incomplete");
the next run gates that proposal instead of proposing again, so a retry never records anything twice,
and a job never records half an audit (one append, in one transaction). Workers: a local process pool
(`workers`), or Ray tasks (one GPU each where the cluster has GPUs), retried when a worker dies.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from clgate.artifacts import CACHE_ENV
from clgate.audit.gate import GateRequest, GateRun, check_policy, propose, run_gate
from clgate.audit.journal import PASSPHRASE_ENV, Journal, signing_key
from clgate.audit.policy import load_policy
from clgate.audit.state import LedgerState
from clgate.errors import ClgateError, InputError
from clgate.ledger import UpdateState
from clgate.ledger.seen import STATE_ENV

Progress = Literal["todo", "incomplete", "audited"]


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
    verdict: str | None = None
    resumed: bool = False
    """It gated a proposal an earlier run left unaudited."""
    seconds: float = 0.0
    error: str | None = None
    attempts: int = 1
    worker: str = ""
    """The process that ran it (`host:pid`)."""


def reaudit_progress(state: LedgerState, stale: UpdateState) -> tuple[Progress, UpdateState | None]:
    """How far the re-audit of `stale` got: the latest proposal superseding it, if it is on the base its
    deployment runs now, audited or not."""
    latest = stale
    while latest.superseded_by is not None:
        latest = state.updates[latest.superseded_by]
    if latest is stale or latest.base != state.current_base(stale.deployment):
        return "todo", None
    return ("audited" if latest.audit_index is not None else "incomplete"), latest


def pending_jobs(state: LedgerState) -> list[UpdateState]:
    """Stale adapters and memories, in every deployment, whose re-audit has not recorded an audit yet."""
    return [u for u in state.pending_reaudit() if reaudit_progress(state, u)[0] != "audited"]


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
        progress, resumed = reaudit_progress(state, stale)
        outcome = ReauditOutcome(stale.update_id, stale.deployment, stale.kind)
        if progress == "audited":
            assert resumed is not None
            return replace(outcome, update_id=resumed.update_id, verdict=resumed.decision)
        policy = load_policy(s.policy)
        check_policy(policy, journal)
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
            proposed = propose(request, proposer, run)
            update_id, manifests = proposed.proposal.update_id, proposed.manifests
        else:
            update_id = resumed.update_id
        result = run_gate(update_id, policy, journal, run, request, manifests)
    return replace(
        outcome,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        update_id=update_id,
        verdict=result.verdict.decision.value,
        resumed=resumed is not None,
        seconds=time.perf_counter() - start,
    )


def _failed(job: ReauditJob, state: LedgerState, error: str, attempts: int) -> ReauditOutcome:
    stale = state.updates[job.stale]
    return ReauditOutcome(stale.update_id, stale.deployment, stale.kind, error=error, attempts=attempts)


def _guarded(job: ReauditJob) -> ReauditOutcome | str:
    """A job's outcome, or its error in one line (never a traceback across processes)."""
    try:
        return reaudit(job)
    except ClgateError as exc:
        return str(exc)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def run_local(jobs: list[ReauditJob], workers: int, retries: int, state: LedgerState) -> list[ReauditOutcome]:
    """Jobs in a pool of `workers` processes (0: one after another in this process). A job whose worker died
    runs again, up to `retries` more times, in a fresh pool."""
    if workers == 0:
        return [
            r if isinstance(r, ReauditOutcome) else _failed(j, state, r, 1)
            for j in jobs
            for r in [_guarded(j)]
        ]
    done: dict[str, ReauditOutcome] = {}
    left, attempt = list(jobs), 0
    while left and attempt <= retries:
        attempt += 1
        died: list[ReauditJob] = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {job.stale: pool.submit(_guarded, job) for job in left}
            for job in left:
                try:
                    result = futures[job.stale].result()
                except BrokenProcessPool:
                    died.append(job)
                    continue
                done[job.stale] = (
                    replace(result, attempts=attempt)
                    if isinstance(result, ReauditOutcome)
                    else _failed(job, state, result, attempt)
                )
        left = died
    for job in left:
        done[job.stale] = _failed(job, state, f"audit incomplete: its worker died {attempt} times", attempt)
    return [done[j.stale] for j in jobs]


def run_ray(
    jobs: list[ReauditJob], address: str, retries: int, state: LedgerState, cpus_per_job: int = 1
) -> list[ReauditOutcome]:
    """Jobs as Ray tasks on the cluster at `address` (`local`: start one on this machine's loopback for this
    run), one GPU each where the cluster has GPUs and `cpus_per_job` CPUs (Ray gives a task that many
    threads); Ray runs a task again when its worker dies (`retries` times)."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs the ray package (pip install 'ray>=2.40')") from None
    env = {k: v for k, v in os.environ.items() if k in (PASSPHRASE_ENV, STATE_ENV, CACHE_ENV)}
    try:
        local = {"_node_ip_address": "127.0.0.1"} if address == "local" else {"address": address}
        ray.init(
            **local,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env} if env else None,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task: Any = ray.remote(num_cpus=cpus_per_job, num_gpus=gpus, max_retries=retries)(_guarded)
        refs = [task.remote(job) for job in jobs]
        out = []
        for job, ref in zip(jobs, refs, strict=True):
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                out.append(_failed(job, state, f"audit incomplete: {type(exc).__name__}", retries + 1))
                continue
            out.append(result if isinstance(result, ReauditOutcome) else _failed(job, state, result, 1))
        return out
    finally:
        ray.shutdown()


def run_reaudits(
    settings: ReauditSettings,
    workers: int = 2,
    ray_address: str | None = None,
    retries: int = 1,
    announce: Callable[[list[UpdateState]], None] | None = None,
    cpus_per_job: int = 1,
) -> list[ReauditOutcome]:
    """Re-gate every stale update of every deployment; the ledger alone says what is left to do."""
    with Journal.open(settings.ledger, None, settings.trust) as journal:
        state = journal.state()
        check_policy(load_policy(settings.policy), journal)  # before any job starts
    stale = pending_jobs(state)
    if announce:
        announce(stale)
    jobs = [ReauditJob(u.update_id, settings) for u in stale]
    if not jobs:
        return []
    if ray_address is not None:
        return run_ray(jobs, ray_address, retries, state, cpus_per_job)
    return run_local(jobs, workers, retries, state)
