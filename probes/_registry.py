"""Probes register themselves by name, so the CLI, the gate and the dashboard list them without an if-chain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clgate.errors import InputError
from clgate.measurement import Measurement


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    version: str
    summary: str
    inputs: tuple[str, ...]  # what the probe compares, in argument order
    run: Callable[..., Measurement]


_REGISTRY: dict[str, ProbeSpec] = {}


def probe(
    name: str, version: str, summary: str, inputs: tuple[str, ...]
) -> Callable[[Callable[..., Measurement]], Callable[..., Measurement]]:
    """Register a probe function under `name`; it returns a `Measurement` with that name and version."""

    def register(fn: Callable[..., Measurement]) -> Callable[..., Measurement]:
        if name in _REGISTRY:
            raise ValueError(f"probe {name!r} registered twice")
        _REGISTRY[name] = ProbeSpec(name, version, summary, inputs, fn)
        return fn

    return register


def probes() -> list[ProbeSpec]:
    return sorted(_REGISTRY.values(), key=lambda spec: spec.name)


def get_probe(name: str) -> ProbeSpec:
    if name not in _REGISTRY:
        raise InputError(f"unknown probe {name!r} (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]
