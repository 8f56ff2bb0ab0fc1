"""Runs the gate's checks: cached by input digests, bounded by timeouts, errors kept as outcomes.

Checks that run model forward passes go one after another in one lane (they use every core);
the others (hashing, diffs of files, memory scans) run in a second lane beside them.
A check that raises or outlives its timeout becomes an outcome with an error, which the
judge turns into a blocking finding: nothing here can make a verdict more lenient.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clgate.atomic import write_text_atomic
from clgate.audit.checks import GateCheck, GateInputs
from clgate.audit.judge import CheckOutcome
from clgate.errors import InputError
from clgate.measurement import Measurement

Progress = Callable[[str, str], None]


def cache_key(check: GateCheck, inputs: GateInputs) -> str:
    material = {
        "check": check.name,
        "version": check.version,
        "seed": inputs.seed,
        "options": inputs.options_for(check.name),
    }
    material.update({role: inputs.digest(role) for role in check.roles(inputs)})
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _with_timeout(fn: Callable[[], Measurement], timeout_s: float) -> Measurement:
    """Run fn in a daemon thread; a hung check cannot hold the gate (or the process) hostage."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except Exception as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"timed out after {timeout_s:g}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    if "result" not in box:
        raise RuntimeError("check ended without a result")
    return box["result"]  # type: ignore[return-value]


def run_check(
    check: GateCheck,
    inputs: GateInputs,
    timeout_s: float,
    cache_dir: Path | None,
    progress: Progress | None = None,
) -> CheckOutcome:
    cache_file = cache_dir / f"{check.name}-{cache_key(check, inputs)}.json" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        try:
            measurement = Measurement.from_json(cache_file.read_text(encoding="utf-8"))
            if progress:
                progress(check.name, "cached")
            return CheckOutcome(check.name, measurement, cached=True)
        except InputError:
            cache_file.unlink(missing_ok=True)  # a corrupt cache entry is recomputed, never trusted
    if progress:
        progress(check.name, "running")
    start = time.perf_counter()
    try:
        measurement = _with_timeout(lambda: check.run(inputs), timeout_s)
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if progress:
            progress(check.name, "error")
        return CheckOutcome(
            check.name,
            None,
            error=f"{type(exc).__name__}: {message}"[:500],
            seconds=time.perf_counter() - start,
        )
    seconds = time.perf_counter() - start
    if cache_file is not None:
        write_text_atomic(cache_file, measurement.to_json())
    if progress:
        progress(check.name, f"done in {seconds:.1f}s")
    return CheckOutcome(check.name, measurement, seconds=seconds)


def run_checks(
    checks: list[GateCheck],
    inputs: GateInputs,
    timeout_for: Callable[[str], float],
    cache_dir: Path | None,
    progress: Progress | None = None,
) -> dict[str, CheckOutcome]:
    lanes = [[c for c in checks if c.forward_passes], [c for c in checks if not c.forward_passes]]

    def run_lane(lane: list[GateCheck]) -> list[CheckOutcome]:
        return [run_check(c, inputs, timeout_for(c.name), cache_dir, progress) for c in lane]

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [outcome for lane_outcomes in pool.map(run_lane, lanes) for outcome in lane_outcomes]
    return {o.name: o for o in results}
