"""The gate's checks: a registry of named adapters from gate inputs to probe and eval measurements.

A check declares which inputs it needs (so it is skipped when they are absent, and its cache key
covers exactly their digests) and whether it runs model forward passes (such checks share one
lane, so two of them never fight over the CPU cores).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clgate.artifacts import Manifest
from clgate.measurement import Measurement


@dataclass(frozen=True)
class GateInputs:
    """What one gate run audits. `parent` is the promoted model the update applies to.

    A scheduled audit of a deployed memory store alone has no parent model.
    """

    parent: Path | None = None
    candidate: Path | None = None
    adapter: Path | None = None
    data: Path | None = None
    memory_old: Path | None = None
    memory_new: Path | None = None
    target: Path | None = None
    cache_dir: Path = Path(".")
    seed: int = 0
    manifests: dict[str, Manifest] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def candidate_model(self) -> Path:
        """The model the candidate runs on: a new full model, or the parent under the adapter."""
        return self.candidate or self.parent

    def has(self, role: str) -> bool:
        return getattr(self, role) is not None

    def digest(self, role: str) -> str:
        return self.manifests[role].root

    def options_for(self, check: str) -> dict[str, Any]:
        return self.options.get(check, {})


@dataclass(frozen=True)
class GateCheck:
    name: str
    version: str
    needs: tuple[str, ...]
    forward_passes: bool
    run: Callable[[GateInputs], Measurement]
    any_of: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()  # optional inputs it uses when present (part of its cache key)

    def applies(self, inputs: GateInputs) -> bool:
        return all(inputs.has(r) for r in self.needs) and (
            not self.any_of or any(inputs.has(r) for r in self.any_of)
        )

    def roles(self, inputs: GateInputs) -> list[str]:
        return [r for r in (*self.needs, *self.any_of, *self.reads) if inputs.has(r)]


def gate_check(
    registry: dict[str, GateCheck],
    name: str,
    version: str,
    needs: tuple[str, ...],
    forward_passes: bool,
    any_of: tuple[str, ...] = (),
    reads: tuple[str, ...] = (),
) -> Callable[[Callable[[GateInputs], Measurement]], Callable[[GateInputs], Measurement]]:
    """Register a check function under `name` in `registry`."""

    def register(fn: Callable[[GateInputs], Measurement]) -> Callable[[GateInputs], Measurement]:
        registry[name] = GateCheck(name, version, needs, forward_passes, fn, any_of, reads)
        return fn

    return register
