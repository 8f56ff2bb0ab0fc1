"""Probes register by name: a name is one probe's, and stamps its name and version on its measurements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec

from clgate.measurement import Measurement
from clgate.registry import Registry

P = ParamSpec("P")


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    version: str
    summary: str
    inputs: tuple[str, ...]  # what the probe compares, in argument order
    run: Callable[..., Measurement]


PROBES: Registry[ProbeSpec] = Registry("probe")


def probe(
    name: str, version: str, summary: str, inputs: tuple[str, ...]
) -> Callable[[Callable[P, Measurement]], Callable[P, Measurement]]:
    """Register a probe function under `name`; each `Measurement` it returns carries that name and version."""
    return PROBES.decorator(lambda fn: ProbeSpec(name, version, summary, inputs, fn))
