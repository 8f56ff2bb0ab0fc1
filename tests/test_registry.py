"""The one registry behind probes, detectors, suites, gate checks and entry types, and its stamp."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from clgate.errors import InputError
from clgate.measurement import Measurement
from clgate.registry import Registry, stamped


@dataclass(frozen=True)
class Spec:
    name: str
    version: str
    run: Callable[..., object]
    family: str = ""


@dataclass
class Found:
    """A record like a detector's result: a dataclass whose identity its registration stamps."""

    score: float
    name: str = ""
    family: str = ""
    version: str = ""


def test_a_name_registers_once_and_an_unknown_one_is_bad_input_naming_the_known() -> None:
    probes: Registry[str] = Registry("probe")
    probes.register("weights", "w")
    probes.register("activations", "a")
    with pytest.raises(ValueError, match="probe 'weights' registered twice"):
        probes.register("weights", "other")
    assert probes.lookup("weights") == "w"
    with pytest.raises(InputError, match=r"^unknown probe 'memory' \(known: activations, weights\)$"):
        probes.lookup("memory")
    probes["weights"] = "stand-in"  # what a test's monkeypatch does
    assert probes.lookup("weights") == "stand-in"


def test_a_decorated_function_and_its_spec_stamp_what_the_body_leaves_out() -> None:
    checks: Registry[Spec] = Registry("check")

    @checks.decorator(lambda fn: Spec("poison.model", "6", fn))
    def fold(x: float) -> Measurement:
        return Measurement(numbers={"x": x})

    direct, registered = fold(1.0), checks.lookup("poison.model").run(2.0)
    assert (direct.name, direct.version, direct.numbers) == ("poison.model", "6", {"x": 1.0})
    assert (registered.name, registered.version) == ("poison.model", "6")
    assert fold.__name__ == "fold"


def test_a_dataclass_record_is_stamped_with_every_field_its_registration_names() -> None:
    detectors: Registry[Spec] = Registry("detector")
    find = detectors.decorator(
        lambda fn: Spec("spread", "2", fn, "memory"), stamp=("name", "family", "version")
    )(lambda: Found(0.5))
    assert find() == Found(0.5, "spread", "memory", "2")


def test_a_record_another_registration_named_is_passed_on_as_it_is() -> None:
    """A gate check that forwards a probe's measurement (`weights` forwarding `weights.lora`) keeps it the probe's."""
    lora = Measurement(name="weights.lora", version="1", numbers={"n": 1.0})
    assert stamped(lambda: lora, name="weights", version="2")() is lora


def test_a_body_may_restate_its_registration_but_not_contradict_it() -> None:
    same = Measurement(name="activations", version="2")
    assert stamped(lambda: same, name="activations", version="2")() is same
    drifted = stamped(lambda: Measurement(name="poison.model", version="2"), name="poison.model", version="6")
    with pytest.raises(
        ValueError, match=r"^poison\.model is registered with version '6' but its record says version '2'$"
    ):
        drifted()


def test_every_registration_versions_with_a_string() -> None:
    from clgate.audit.check_inputs import CHECK_PACKAGES
    from clgate.audit.gate_checks import GATE_CHECKS
    from clgate.evals.suites import SUITE_VERSION
    from clgate.probes import PROBES
    from clgate.probes.poison._registry import DETECTORS

    for package in CHECK_PACKAGES:
        importlib.import_module(package)
    specs = [*PROBES.values(), *DETECTORS.values(), *GATE_CHECKS.values()]
    assert len(specs) > 20
    assert [s.name for s in specs if not (isinstance(s.version, str) and s.version)] == []
    assert isinstance(SUITE_VERSION, str)


def test_a_stored_measurement_without_its_stamp_is_refused() -> None:
    """Bodies may leave the name out for the stamp to fill; a stored one without it was never stamped."""
    stamped_json = stamped(lambda: Measurement(numbers={"x": 1.0}), name="m", version="1")().to_json()
    assert Measurement.from_json(stamped_json).name == "m"
    with pytest.raises(InputError, match="names no probe or check"):
        Measurement.from_json(Measurement(numbers={"x": 1.0}).to_json())
