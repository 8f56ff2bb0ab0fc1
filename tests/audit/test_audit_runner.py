import time
from pathlib import Path

from clgate.artifacts import compute_manifest
from clgate.audit.checks import GateCheck, GateInputs
from clgate.audit.runner import run_check, run_checks
from clgate.measurement import Measurement


def _inputs(tmp_path: Path) -> GateInputs:
    parent = tmp_path / "parent.jsonl"
    parent.write_text('{"prompt": "a", "completion": "b"}\n')
    return GateInputs(parent=parent, cache_dir=tmp_path, manifests={"parent": compute_manifest(parent)})


def _check(name: str, fn, forward: bool = False) -> GateCheck:
    return GateCheck(name=name, version="1", needs=("parent",), forward_passes=forward, run=fn)


def test_results_are_cached_by_input_digest(tmp_path: Path) -> None:
    calls = []

    def measure(inputs: GateInputs) -> Measurement:
        calls.append(1)
        return Measurement(name="m", version="1", numbers={"x": 1.5})

    inputs, cache = _inputs(tmp_path), tmp_path / "cache"
    first = run_check(_check("m", measure), inputs, 10, cache)
    second = run_check(_check("m", measure), inputs, 10, cache)
    assert not first.cached and second.cached and len(calls) == 1
    assert second.measurement == first.measurement
    (inputs.parent).write_text('{"prompt": "a", "completion": "c"}\n')
    changed = GateInputs(parent=inputs.parent, manifests={"parent": compute_manifest(inputs.parent)})
    assert not run_check(_check("m", measure), changed, 10, cache).cached


def test_corrupt_cache_entries_are_recomputed(tmp_path: Path) -> None:
    inputs, cache = _inputs(tmp_path), tmp_path / "cache"
    check = _check("m", lambda i: Measurement(name="m", version="1", numbers={"x": 2.0}))
    run_check(check, inputs, 10, cache)
    for f in cache.iterdir():
        f.write_text("{ truncated")
    outcome = run_check(check, inputs, 10, cache)
    assert not outcome.cached and outcome.measurement.numbers == {"x": 2.0}


def test_errors_and_timeouts_become_outcomes_not_crashes(tmp_path: Path) -> None:
    def boom(inputs: GateInputs) -> Measurement:
        raise ValueError("tensor model.x has the wrong shape")

    def hang(inputs: GateInputs) -> Measurement:
        time.sleep(30)
        raise AssertionError("unreachable")

    inputs = _inputs(tmp_path)
    start = time.perf_counter()
    outcomes = run_checks(
        [_check("boom", boom), _check("hang", hang, forward=True)], inputs, lambda n: 0.5, None
    )
    assert time.perf_counter() - start < 5
    assert outcomes["boom"].error == "ValueError: tensor model.x has the wrong shape"
    assert (
        outcomes["hang"].error == "TimeoutError: timed out after 0.5s"
        and outcomes["hang"].measurement is None
    )


def test_a_measurement_with_infinite_or_missing_numbers_survives_the_evidence_store(tmp_path) -> None:
    import math

    from clgate.audit.evidence import EvidenceStore
    from clgate.measurement import Measurement

    store = EvidenceStore(tmp_path / "evidence")
    digest = store.put(
        Measurement(name="m", version="1", numbers={"cut": float("inf"), "low": -math.inf, "x": math.nan})
    )
    back = store.get(digest)
    assert (
        back.numbers["cut"] == math.inf and back.numbers["low"] == -math.inf and math.isnan(back.numbers["x"])
    )
