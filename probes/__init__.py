"""Measurements of what an update changed, with no judgement attached: weights, activations, memory.

Each probe registers itself by name (`probes()`, `get_probe`) and returns a `clgate.measurement.Measurement`.
Poisoning detectors live in `clgate.probes.poison`.
"""

from clgate.probes._registry import ProbeSpec, get_probe, probe, probes
from clgate.probes.activations import ProbePrompts, activation_diff, bundled_prompts, linear_cka
from clgate.probes.memory import (
    INSTRUCTION_RULES,
    InstructionRule,
    instruction_score,
    instruction_scores,
    memetic_spread,
    memory_diff,
)
from clgate.probes.weights import layer_index, lora_diff, module_type, weight_diff

__all__ = [
    "INSTRUCTION_RULES",
    "InstructionRule",
    "ProbePrompts",
    "ProbeSpec",
    "activation_diff",
    "bundled_prompts",
    "get_probe",
    "instruction_score",
    "instruction_scores",
    "layer_index",
    "linear_cka",
    "lora_diff",
    "memetic_spread",
    "memory_diff",
    "module_type",
    "probe",
    "probes",
    "weight_diff",
]
