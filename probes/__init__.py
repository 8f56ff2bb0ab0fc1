"""Measurements of what an update changed, with no judgement attached: weights, activations, memory, and
the files a server applies besides the weights.

Each probe registers itself by name in `PROBES` and returns a `clgate.measurement.Measurement`.
Poisoning detectors live in `clgate.probes.poison`.
"""

from clgate.probes._registry import PROBES, ProbeSpec, probe
from clgate.probes.activations import ProbePrompts, activation_diff, activation_prompts, linear_cka
from clgate.probes.instructions import (
    INSTRUCTION_RULES,
    InstructionRule,
    instruction_score,
    instruction_scores,
)
from clgate.probes.memory import memetic_spread, memory_diff
from clgate.probes.serving import serving_diff
from clgate.probes.weights import layer_index, lora_diff, module_type, weight_diff

__all__ = [
    "INSTRUCTION_RULES",
    "PROBES",
    "InstructionRule",
    "ProbePrompts",
    "ProbeSpec",
    "activation_diff",
    "activation_prompts",
    "instruction_score",
    "instruction_scores",
    "layer_index",
    "linear_cka",
    "lora_diff",
    "memetic_spread",
    "memory_diff",
    "module_type",
    "probe",
    "serving_diff",
    "weight_diff",
]
