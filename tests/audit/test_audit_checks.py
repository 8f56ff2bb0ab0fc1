"""A gate check's registration: what its measurements are called and versioned, and its cache key's version."""

from __future__ import annotations

from pathlib import Path

from clgate.artifacts import compute_manifest
from clgate.audit.check_inputs import GateCheck, GateInputs, gate_check
from clgate.audit.gate_checks import combine
from clgate.audit.runner import run_check
from clgate.measurement import Measurement
from clgate.registry import Registry


def _inputs(tmp_path: Path) -> GateInputs:
    parent = tmp_path / "parent.jsonl"
    parent.write_text('{"prompt": "a", "completion": "b"}\n')
    return GateInputs(parent=parent, cache_dir=tmp_path, manifests={"parent": compute_manifest(parent)})


def test_a_folded_measurement_carries_its_checks_version_not_a_stale_one(tmp_path: Path) -> None:
    """`poison.model` was registered as version 6 while its fold said 2."""
    checks: Registry[GateCheck] = Registry("gate check")

    @gate_check(checks, "poison.model", "6", needs=("parent",), forward_passes=False)
    def poison_model(inputs: GateInputs) -> Measurement:
        sweep = Measurement(name="poison.trigger_sweep", version="7", numbers={"triggers_found": 0.0})
        return combine([sweep], prefix="poison.")

    outcome = run_check(checks["poison.model"], _inputs(tmp_path), 10, None)
    assert outcome.error is None and outcome.measurement is not None
    assert (outcome.measurement.name, outcome.measurement.version) == ("poison.model", "6")
    assert outcome.measurement.numbers == {"trigger_sweep.triggers_found": 0.0}


def test_a_forwarded_probe_measurement_stays_the_probes_unless_its_version_outgrew_the_check(
    tmp_path: Path,
) -> None:
    """A probe of the check's own name at a newer version would be served from caches keyed by the old one:
    the check fails (and so blocks) until its version is bumped."""
    checks: Registry[GateCheck] = Registry("gate check")
    probe_version = "1"

    @gate_check(checks, "weights", "1", needs=("parent",), forward_passes=False)
    def weights(inputs: GateInputs) -> Measurement:
        return Measurement(name="weights", version=probe_version, numbers={"n": 1.0})

    @gate_check(checks, "lora", "1", needs=("parent",), forward_passes=False)
    def lora(inputs: GateInputs) -> Measurement:
        return Measurement(name="weights.lora", version="3", numbers={"n": 1.0})

    inputs = _inputs(tmp_path)
    assert run_check(checks["weights"], inputs, 10, None).measurement.version == "1"
    forwarded = run_check(checks["lora"], inputs, 10, None).measurement
    assert (forwarded.name, forwarded.version) == ("weights.lora", "3")
    probe_version = "2"
    outcome = run_check(checks["weights"], inputs, 10, None)
    assert (
        outcome.measurement is None
        and "registered with version '1' but its record says version '2'" in outcome.error
    )
