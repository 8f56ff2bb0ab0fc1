import json
import time
from dataclasses import replace
from pathlib import Path

from clgate.artifacts import compute_manifest
from clgate.audit.check_inputs import GateCheck, GateInputs
from clgate.audit.evidence import EvidenceStore
from clgate.audit.runner import CheckCache, cache_key, run_check, run_checks
from clgate.ledger import generate_key
from clgate.measurement import Measurement


def _inputs(tmp_path: Path) -> GateInputs:
    parent = tmp_path / "parent.jsonl"
    parent.write_text('{"prompt": "a", "completion": "b"}\n')
    return GateInputs(parent=parent, cache_dir=tmp_path, manifests={"parent": compute_manifest(parent)})


def _check(name: str, fn, forward: bool = False, reads: tuple[str, ...] = ()) -> GateCheck:
    return GateCheck(name=name, version="1", needs=("parent",), forward_passes=forward, run=fn, reads=reads)


def test_results_are_cached_by_input_digest(tmp_path: Path) -> None:
    calls = []

    def measure(inputs: GateInputs) -> Measurement:
        calls.append(1)
        return Measurement(name="m", version="1", numbers={"x": 1.5})

    inputs, cache = (
        _inputs(tmp_path),
        CheckCache(tmp_path / "cache", generate_key(), EvidenceStore(tmp_path / "evidence")),
    )
    first = run_check(_check("m", measure), inputs, 10, cache)
    second = run_check(_check("m", measure), inputs, 10, cache)
    assert not first.cached and second.cached and len(calls) == 1
    assert second.measurement == first.measurement
    (inputs.parent).write_text('{"prompt": "a", "completion": "c"}\n')
    changed = GateInputs(parent=inputs.parent, manifests={"parent": compute_manifest(inputs.parent)})
    assert not run_check(_check("m", measure), changed, 10, cache).cached


def test_every_input_a_check_reads_is_in_its_cache_key(tmp_path: Path) -> None:
    """`poison.model` read the update's data but was cached without it: now a check sees only what it declares."""

    def lines_of_data(inputs: GateInputs) -> Measurement:
        n = len(inputs.data.read_text().splitlines()) if inputs.data else -1
        return Measurement(name="d", version="1", numbers={"lines": n})

    base, cache = (
        _inputs(tmp_path),
        CheckCache(tmp_path / "cache", generate_key(), EvidenceStore(tmp_path / "evidence")),
    )
    datasets = {}
    for name, text in (("a", "x\n"), ("b", "x\ny\n")):
        datasets[name] = tmp_path / f"{name}.jsonl"
        datasets[name].write_text(text)
    undeclared, declared = _check("d", lines_of_data), _check("d", lines_of_data, reads=("data",))
    for name, expected in (("a", 1), ("b", 2)):
        path = datasets[name]
        inputs = GateInputs(
            parent=base.parent, data=path, manifests={**base.manifests, "data": compute_manifest(path)}
        )
        assert run_check(declared, inputs, 10, cache).measurement.numbers == {"lines": expected}
        assert run_check(undeclared, inputs, 10, None).measurement.numbers == {
            "lines": -1
        }  # cannot even see it


def test_corrupt_stale_or_planted_cache_entries_are_recomputed(tmp_path: Path) -> None:
    inputs, gate_key = _inputs(tmp_path), generate_key()
    cache = CheckCache(tmp_path / "cache", gate_key, EvidenceStore(tmp_path / "evidence"))
    check = _check("m", lambda i: Measurement(name="m", version="1", numbers={"x": 2.0}))
    run_check(check, inputs, 10, cache)
    (entry,) = cache.folder.iterdir()
    record = json.loads(entry.read_text())
    planted = Measurement(name="m", version="1", numbers={"x": 0.0})  # a planted "all clear"
    record["measurement"] = cache.evidence.put(planted)
    entry.write_text(json.dumps(record))
    outcome = run_check(check, inputs, 10, cache)
    assert not outcome.cached and outcome.measurement.numbers == {"x": 2.0}
    (entry,) = cache.folder.iterdir()
    evidence = cache.evidence.folder / (
        json.loads(entry.read_text())["measurement"].removeprefix("sha256:") + ".json"
    )
    evidence.write_text(evidence.read_text().replace("2.0", "0.0"))  # the evidence it names, altered
    outcome = run_check(check, inputs, 10, cache)
    assert not outcome.cached and outcome.measurement.numbers == {"x": 2.0}
    cache.evidence.remove(outcome.measurement.digest)  # erased evidence is not served from the cache
    assert not run_check(check, inputs, 10, cache).cached
    other_gate = CheckCache(
        tmp_path / "cache", generate_key(), EvidenceStore(tmp_path / "evidence")
    )  # signed by another key: not trusted
    assert not run_check(check, inputs, 10, other_gate).cached
    (entry,) = cache.folder.iterdir()
    entry.write_text("{ truncated")
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


def test_options_a_check_borrows_from_another_are_in_its_cache_key(tmp_path: Path) -> None:
    """The anchor runs the evals' suites: a policy that changes them must not get the old result."""
    borrowing = GateCheck("anchor", "1", ("parent",), False, lambda i: Measurement(name="a", version="1"),
                          options_from=("evals",))  # fmt: skip
    inputs = _inputs(tmp_path)
    keys = {
        cache_key(borrowing, replace(inputs, options={"evals": {"suites": suites}}))
        for suites in (["retention"], ["retention", "refusal"])
    }
    assert len(keys) == 2


def test_a_long_checks_steps_reach_the_gates_progress_a_line_per_quarter(tmp_path: Path) -> None:
    def measure(inputs: GateInputs) -> Measurement:
        for done in range(1, 101):
            inputs.advance(done, 100)
        return Measurement(name="m", version="1", numbers={"x": 1.0})

    lines: list[tuple[str, str]] = []
    run_check(
        _check("m", measure), _inputs(tmp_path), 10, None, lambda name, what: lines.append((name, what))
    )
    assert [what for _, what in lines][:-1] == ["running", "25%", "50%", "75%"]
    assert lines[-1][1].startswith("done in ")


def test_a_new_version_beneath_a_check_is_not_served_from_its_cache(tmp_path: Path) -> None:
    """A detector or eval version the check folds in keys its cache as its own version does."""
    inputs = _inputs(tmp_path)
    cache = CheckCache(tmp_path / "cache", generate_key(), EvidenceStore(tmp_path / "evidence"))

    def check(detector_version: str) -> GateCheck:
        made = Measurement(name="m", version="1", numbers={"x": float(detector_version)})
        return replace(_check("m", lambda i: made), beneath=lambda: {"detector": detector_version})

    assert not run_check(check("1"), inputs, 10, cache).cached
    assert run_check(check("1"), inputs, 10, cache).cached
    changed = run_check(check("2"), inputs, 10, cache)
    assert not changed.cached and changed.measurement.numbers == {"x": 2.0}
