"""The gate's checks: a registry of named adapters from gate inputs to probe and eval measurements.

A check declares which inputs it needs (so it is skipped when they are absent, and its cache key
covers exactly their digests) and whether it runs model forward passes (such checks share one
lane, so two of them never fight over the CPU cores).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clgate.artifacts import Manifest
from clgate.measurement import Measurement


@dataclass(frozen=True)
class GateInputs:
    """What one gate run audits. `parent` is the promoted model the update applies to."""

    parent: Path
    candidate: Path | None = None
    adapter: Path | None = None
    data: Path | None = None
    memory_old: Path | None = None
    memory_new: Path | None = None
    target: Path | None = None
    cache_dir: Path = Path(".")
    seed: int = 0
    manifests: dict[str, Manifest] = field(default_factory=dict)

    @property
    def candidate_model(self) -> Path:
        """The model the candidate runs on: a new full model, or the parent under the adapter."""
        return self.candidate or self.parent

    def has(self, role: str) -> bool:
        return getattr(self, role) is not None

    def digest(self, role: str) -> str:
        return self.manifests[role].root


@dataclass(frozen=True)
class GateCheck:
    name: str
    version: str
    needs: tuple[str, ...]
    forward_passes: bool
    run: Callable[[GateInputs], Measurement]
    any_of: tuple[str, ...] = ()

    def applies(self, inputs: GateInputs) -> bool:
        return all(inputs.has(r) for r in self.needs) and (
            not self.any_of or any(inputs.has(r) for r in self.any_of)
        )

    def roles(self, inputs: GateInputs) -> list[str]:
        return [r for r in (*self.needs, *self.any_of) if inputs.has(r)]


def gate_check(
    registry: dict[str, GateCheck],
    name: str,
    version: str,
    needs: tuple[str, ...],
    forward_passes: bool,
    any_of: tuple[str, ...] = (),
) -> Callable[[Callable[[GateInputs], Measurement]], Callable[[GateInputs], Measurement]]:
    """Register a check function under `name` in `registry`."""

    def register(fn: Callable[[GateInputs], Measurement]) -> Callable[[GateInputs], Measurement]:
        registry[name] = GateCheck(name, version, needs, forward_passes, fn, any_of)
        return fn

    return register
