"""Where the jobs of a fan-out run: in this process, in a local process pool, or as Ray tasks.

A job is a module-level function and a picklable argument, so it can run in another process or on
another machine; whatever it records, it records in the ledger itself. Its result comes back, or its
error as one line (never a traceback across processes). A job whose worker died runs again: in a
fresh pool, or by Ray's own task retry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Generic, TypeVar

from clgate.artifacts import CACHE_ENV
from clgate.errors import ClgateError, InputError
from clgate.ledger import PASSPHRASE_ENV
from clgate.ledger.seen import STATE_ENV
from clgate.reachable import check_reachable

J = TypeVar("J")
R = TypeVar("R")
FORWARDED_ENV = (PASSPHRASE_ENV, STATE_ENV, CACHE_ENV)
"""What a Ray worker, started with the cluster's environment, must see of this one's."""


@dataclass(frozen=True)
class Workers:
    processes: int = 2
    """Local worker processes (spawned); 0 runs the jobs one after another in this process."""
    ray: str | None = None
    """A Ray cluster's address, or `local` to start one on this machine's loopback for the run."""
    retries: int = 1
    """Times a job whose worker died runs again."""
    cpus_per_job: int = 1
    """On Ray: CPUs a job asks for (Ray gives it that many threads)."""

    def where(self) -> str:
        return (
            f"Ray ({self.ray})"
            if self.ray
            else f"{self.processes} local workers"
            if self.processes
            else "this process"
        )


@dataclass(frozen=True)
class JobResult(Generic[R]):
    value: R | None
    error: str | None = None
    attempts: int = 1


def _guarded(fn: Callable[[Any], R], job: Any) -> tuple[R | None, str | None]:
    try:
        return fn(job), None
    except ClgateError as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def fan_out(fn: Callable[[J], R], waves: Sequence[Sequence[J]], workers: Workers) -> list[JobResult[R]]:
    """`fn` over the jobs of each wave in turn (a wave starts once the one before it is done) where
    `workers` says; results in the jobs' order. One pool, or one Ray session, serves every wave, so a
    worker's imports are paid once per run, not once per wave."""
    if not any(waves):
        return []
    if workers.ray is not None:
        return _on_ray(fn, waves, workers)
    if workers.processes == 0:
        return [JobResult(*_guarded(fn, job)) for wave in waves for job in wave]
    pool = _Pool(workers.processes)
    try:
        return [result for wave in waves for result in _in_pool(fn, wave, pool, workers.retries)]
    finally:
        pool.close()


class _Pool:
    """Spawned worker processes, started when first asked for; a broken set is closed and replaced."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.executor: ProcessPoolExecutor | None = None

    def get(self) -> ProcessPoolExecutor:
        if self.executor is None:
            self.executor = ProcessPoolExecutor(max_workers=self.processes, mp_context=get_context("spawn"))
        return self.executor

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None


def _in_pool(fn: Callable[[J], R], jobs: Sequence[J], pool: _Pool, retries: int) -> list[JobResult[R]]:
    done: dict[int, JobResult[R]] = {}
    left, attempt = list(range(len(jobs))), 0
    while left and attempt <= retries:
        attempt += 1
        executor, died, futures = pool.get(), [], {}
        for i in left:
            try:  # a worker that died between waves breaks the pool before a job is even handed over
                futures[i] = executor.submit(_guarded, fn, jobs[i])
            except BrokenProcessPool:
                died.append(i)
        for i in futures:
            try:
                value, error = futures[i].result()
            except BrokenProcessPool:
                died.append(i)
                continue
            done[i] = JobResult(value, error, attempt)
        if died:  # the pool is broken for every job: a fresh one for the retry
            pool.close()
        left = died
    for i in left:
        done[i] = JobResult(None, f"incomplete: its worker died {attempt} times", attempt)
    return [done[i] for i in range(len(jobs))]


def _check_reachable(address: str) -> None:
    """A cluster at HOST:PORT must answer first (`local`, `auto` and the like are left to Ray)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if sep and host and port.isdigit():
        check_reachable(host, int(port), f"the Ray cluster at {address}")


def _on_ray(fn: Callable[[J], R], waves: Sequence[Sequence[J]], workers: Workers) -> list[JobResult[R]]:
    """One Ray task per job, one GPU each where the cluster has GPUs; Ray reruns a task whose worker died."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs the ray package (pip install 'ray>=2.40')") from None
    env = {k: v for k, v in os.environ.items() if k in FORWARDED_ENV}
    address = workers.ray
    _check_reachable(address)
    try:
        where = {"_node_ip_address": "127.0.0.1"} if address == "local" else {"address": address}
        ray.init(
            **where,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env} if env else None,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task: Any = ray.remote(num_cpus=workers.cpus_per_job, num_gpus=gpus, max_retries=workers.retries)(
            _guarded
        )
        out: list[JobResult[R]] = []
        for wave in waves:
            for ref in [task.remote(fn, job) for job in wave]:
                try:
                    out.append(JobResult(*ray.get(ref)))
                except ray.exceptions.RayError as exc:
                    out.append(JobResult(None, f"incomplete: {type(exc).__name__}", workers.retries + 1))
        return out
    finally:
        ray.shutdown()
