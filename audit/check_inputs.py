"""The gate's checks: a registry of named adapters from gate inputs to probe and eval measurements.

A check declares which inputs it needs (so it is skipped when they are absent, and its cache key
covers exactly their digests) and whether it runs model forward passes (such checks share one
lane, so two of them never fight over the CPU cores).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clgate.artifacts import Manifest
from clgate.audit.baseline import PromotedAnswers
from clgate.audit.policy import PolicySuite
from clgate.audit.regression import RegressionSet, RegressionTask, tasks_digest
from clgate.ledger.canonical import canonical_json
from clgate.measurement import Measurement
from clgate.progress import Advance, no_progress
from clgate.registry import Registry
from clgate.runtime import ModelPool, resolve_placement

CHECK_PACKAGES = ("clgate.probes", "clgate.probes.poison", "clgate.probes.privacy", "clgate.evals")
"""What the checks import when they first run (lazily, so commands that run none start fast). `run_checks`
imports them in its own thread before its two lanes start: two threads importing one package at once can
be handed it half initialised (`clgate.probes` and its modules import each other), which a fresh worker
process, its first gate in its first seconds, ran into."""
LAZY_MODEL_CLASSES = ("AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoTokenizer")
"""transformers' names the checks import, resolved by `run_checks` before its lanes start for the same
reason: transformers resolves them on first access, and two threads resolving them at once get
"cannot import name 'AutoModelForCausalLM'" (a memory update's first gate in a fresh Ray worker did)."""
PROPOSED_ROLES = ("parent", "candidate", "adapter", "data", "memory_old", "memory_new", "target")
INPUT_ROLES = (
    *PROPOSED_ROLES,
    "anchor",
    "regression",
    "regression_tasks",
    "suites",
    "deployed_adapter",
    "promoted",
)
"""`anchor`, `regression` (and its `regression_tasks`), `deployed_adapter` and `promoted` are not proposed: the gate takes them from the
ledger (the deployment's first promoted base; the target sets of the updates it promoted; the adapter a
memory update will run under; the answers recorded when what is deployed was promoted); `suites` from the
policy."""


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
    anchor: Path | None = None
    regression: RegressionSet | None = None
    regression_tasks: tuple[RegressionTask, ...] | None = None
    """The regression set's tasks without its accuracy history: what a check that only asks their prompts
    reads, so a new audit's numbers do not change its cache key. Taken from `regression` when not given."""
    suites: tuple[PolicySuite, ...] | None = None
    """The policy's own suites, run with the eval suites (each pinned by its items' SHA-256)."""
    deployed_adapter: Path | None = None
    """The adapter the deployment runs on the parent: a memory update is asked through it, as served."""
    promoted: PromotedAnswers | None = None
    """What the deployed model answered when it was promoted (scheduled audits)."""
    cache_dir: Path = Path(".")
    seed: int = 0
    manifests: dict[str, Manifest] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: ModelPool | None = field(default=None, compare=False, repr=False)
    """The gate's model pool: every check that runs a model takes it from here, so each loads once."""
    device: str = "auto"
    dtype: str = "auto"
    served: tuple[str, ...] = ()
    """The served models' identities (`model@revision`), when output-only checks run on a server."""
    log_dir: Path | None = None
    """Where eval checks write their inspect-ai logs (the report's `inspect-logs`); not part of a cache key."""
    advance: Advance = field(default=no_progress, compare=False, repr=False)
    """Hears a long check's steps (the runner gives each check its own); not part of a cache key."""

    def __post_init__(self) -> None:
        if self.regression_tasks is None and self.regression is not None:  # a part of what it holds
            object.__setattr__(self, "regression_tasks", self.regression.tasks)

    @property
    def candidate_model(self) -> Path:
        """The model the candidate runs on: a new full model, or the parent under the adapter."""
        return self.candidate or self.parent

    def has(self, role: str) -> bool:
        return getattr(self, role) is not None

    def only(self, roles: list[str]) -> GateInputs:
        """These inputs with every role but `roles` removed: a check reads nothing it did not declare."""
        cleared = {r: None for r in INPUT_ROLES if r not in roles}
        return replace(self, **cleared, manifests={r: m for r, m in self.manifests.items() if r in roles})

    def digest(self, role: str) -> str:
        """The content digest of an input: its manifest's root; the regression set's (or its tasks') own digest."""
        if role == "regression" and self.regression is not None:
            return self.regression.digest
        if role == "regression_tasks" and self.regression_tasks is not None:
            return tasks_digest(self.regression_tasks)
        if role == "promoted" and self.promoted is not None:
            return self.promoted.digest
        if role == "suites" and self.suites is not None:
            listing = [s.model_dump(mode="json") for s in self.suites]
            return "sha256:" + hashlib.sha256(canonical_json(listing)).hexdigest()
        return self.manifests[role].root

    def options_for(self, check: str) -> dict[str, Any]:
        return self.options.get(check, {})

    def placement(self, check: str) -> dict[str, str]:
        """`device` and `dtype` for `check`: its policy options', else the gate's."""
        opts = self.options_for(check)
        return {"device": opts.get("device", self.device), "dtype": opts.get("dtype", self.dtype)}

    def numerics(self, check: str) -> str:
        """What a model check's numbers depend on besides the inputs' bytes (`cpu-float32`, `cuda-bfloat16`):
        part of its cache key."""
        return resolve_placement(**self.placement(check)).tag


@dataclass(frozen=True)
class GateCheck:
    name: str
    version: str
    needs: tuple[str, ...]
    forward_passes: bool
    run: Callable[[GateInputs], Measurement]
    any_of: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()  # optional inputs it uses when present (part of its cache key)
    needs_weights: bool = False
    """Runs the model in this process (activations, representations): a server cannot do it for it."""
    options_from: tuple[str, ...] = ()
    """Other checks whose policy options it also reads (the anchor runs the evals' suites): part of its cache key."""
    beneath: Callable[[], dict[str, str]] = dict
    """The versions of what it runs (detectors, probes, the eval stack) whose measurements it folds or
    passes on under another name: part of its cache key, so none of them can change behind its results."""
    cacheable: bool = True
    """False for a check that measures the runtime itself (a scheduled rerun): never answered from a cache."""
    read_later: bool = False
    """Later gates read its recorded measurements (the regression history, the answers a scheduled audit
    compares with): a policy may not skip it, or one fast-lane audit would leave a hole every later one
    is measured against."""

    def applies(self, inputs: GateInputs) -> bool:
        return all(inputs.has(r) for r in self.needs) and (
            not self.any_of or any(inputs.has(r) for r in self.any_of)
        )

    def roles(self, inputs: GateInputs) -> list[str]:
        return [r for r in (*self.needs, *self.any_of, *self.reads) if inputs.has(r)]


def gate_check(
    registry: Registry[GateCheck],
    name: str,
    version: str,
    needs: tuple[str, ...],
    forward_passes: bool,
    any_of: tuple[str, ...] = (),
    reads: tuple[str, ...] = (),
    needs_weights: bool = False,
    options_from: tuple[str, ...] = (),
    beneath: Callable[[], dict[str, str]] = dict,
    cacheable: bool = True,
    read_later: bool = False,
) -> Callable[[Callable[[GateInputs], Measurement]], Callable[[GateInputs], Measurement]]:
    """Register a check function under `name` in `registry`.

    `version` keys the check's cached results: bump it whenever the check itself changes what it returns.
    A measurement the check builds carries the check's name and version; one it passes on from a probe
    keeps the probe's, and where the probe has the check's name its version must be the check's. The
    versions of everything else it runs (`beneath`) are in its cache key too, so no detector's, probe's or
    eval's new version can hide behind the check's cached results.
    """
    return registry.decorator(
        lambda fn: GateCheck(
            name,
            version,
            needs,
            forward_passes,
            fn,
            any_of=any_of,
            reads=reads,
            needs_weights=needs_weights,
            options_from=options_from,
            beneath=beneath,
            cacheable=cacheable,
            read_later=read_later,
        )
    )
