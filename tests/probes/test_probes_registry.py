"""The probe registry: every probe is listed by name, and what `clgate.probes` exports is the stamped function."""

from __future__ import annotations

from clgate import probes


def test_each_probe_is_listed_as_the_function_clgate_probes_exports() -> None:
    assert {name: spec.run for name, spec in probes.PROBES.items()} == {
        "activations": probes.activation_diff,
        "memory": probes.memory_diff,
        "memory.spread": probes.memetic_spread,
        "serving": probes.serving_diff,
        "weights": probes.weight_diff,
        "weights.lora": probes.lora_diff,
    }
