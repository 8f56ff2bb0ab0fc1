"""Detectors register by name: a scan runs its family's, or those a `--detector` option or a policy names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from clgate.errors import InputError
from clgate.probes.poison.result import DetectorResult
from clgate.registry import Registry

Family = Literal["data", "model", "memory"]


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    family: Family
    version: str
    summary: str
    run: Callable[..., DetectorResult]
    needs_model: bool = False


DETECTORS: Registry[DetectorSpec] = Registry("poisoning detector")


def detector(
    name: str, family: Family, version: str, summary: str, needs_model: bool = False
) -> Callable[[Callable[[Any], DetectorResult]], Callable[[Any], DetectorResult]]:
    """Register a detector function under `name` (unique across families); `needs_model`: parent forwards.
    Each `DetectorResult` it returns carries the name, family and version."""
    return DETECTORS.decorator(
        lambda fn: DetectorSpec(name, family, version, summary, fn, needs_model),
        stamp=("name", "family", "version"),
    )


def detectors(family: Family | None = None) -> list[DetectorSpec]:
    return [spec for spec in DETECTORS.values() if family is None or spec.family == family]


def get_detector(name: str) -> DetectorSpec:
    return DETECTORS.lookup(name)


def select(family: Family, names: list[str] | None) -> list[DetectorSpec]:
    """The detectors of `family` named in `names` (all of them when `names` is empty)."""
    if not names:
        return detectors(family)
    specs = [get_detector(n) for n in names]
    wrong = [s.name for s in specs if s.family != family]
    if wrong:
        raise InputError(f"detector {wrong[0]!r} is not a {family} detector")
    return specs
