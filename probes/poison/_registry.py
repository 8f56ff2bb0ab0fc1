"""Detectors register themselves by name, so the CLI and the gate list them without an if-chain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from clgate.errors import InputError

Family = Literal["data", "model", "memory"]


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    family: Family
    version: str
    summary: str
    run: Callable[..., Any]
    needs_model: bool = False


_REGISTRY: dict[str, DetectorSpec] = {}


def detector(
    name: str, family: Family, version: str, summary: str, needs_model: bool = False
) -> Callable[[Callable], Callable]:
    """Register a detector function under `name` (unique across families); `needs_model`: parent forwards."""

    def register(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"detector {name!r} registered twice")
        _REGISTRY[name] = DetectorSpec(name, family, version, summary, fn, needs_model)
        return fn

    return register


def detectors(family: Family | None = None) -> list[DetectorSpec]:
    return [spec for spec in _REGISTRY.values() if family is None or spec.family == family]


def get_detector(name: str) -> DetectorSpec:
    if name not in _REGISTRY:
        raise InputError(f"unknown poisoning detector {name!r} (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def select(family: Family, names: list[str] | None) -> list[DetectorSpec]:
    """The detectors of `family` named in `names` (all of them when `names` is empty)."""
    if not names:
        return detectors(family)
    specs = [get_detector(n) for n in names]
    wrong = [s.name for s in specs if s.family != family]
    if wrong:
        raise InputError(f"detector {wrong[0]!r} is not a {family} detector")
    return specs
