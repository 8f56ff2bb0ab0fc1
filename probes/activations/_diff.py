"""The probe `activations`: both models from the pool, their residuals, the comparison, the measurement."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from clgate.artifacts import Manifest, compute_manifest, default_cache_dir
from clgate.errors import InputError
from clgate.measurement import Measurement
from clgate.probes._registry import probe
from clgate.probes.activations._cache import Side, residuals_for
from clgate.probes.activations._capture import HOOK, VERSION
from clgate.probes.activations._metrics import logit_lens_kl, numbers, per_layer
from clgate.probes.activations._prompts import ProbePrompts, activation_prompts
from clgate.probes.activations._report import write_plots
from clgate.progress import Advance, Tally, no_progress
from clgate.runtime import ModelPool, ModelSpec

DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_TOKENS = 128


def _side(
    models: ModelPool, spec: ModelSpec, manifest: Manifest | None, adapter_manifest: Manifest | None
) -> Side:
    """The pool's model for `spec` (files, adapter and placement checked; nothing loaded) and its digests."""
    model = models.get(spec)
    config = json.loads((model.path / "config.json").read_text(encoding="utf-8"))
    arch = {k: config.get(k) for k in ("model_type", "num_hidden_layers", "hidden_size", "vocab_size")}
    model_digest = (manifest or compute_manifest(model.path)).root
    if spec.adapter is None:
        return Side(model, model_digest, model_digest, arch)
    adapter_digest = (adapter_manifest or compute_manifest(spec.adapter)).root
    return Side(model, adapter_digest, model_digest, arch)


@probe(
    "activations",
    VERSION,
    "per-layer residual drift, CKA, logit-lens KL and refusal direction on the bundled prompts",
    ("parent", "candidate"),
)
def activation_diff(
    parent: Path,
    candidate: Path,
    *,
    candidate_adapter: Path | None = None,
    parent_manifest: Manifest | None = None,
    candidate_manifest: Manifest | None = None,
    adapter_manifest: Manifest | None = None,
    prompts: ProbePrompts | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    use_cache: bool = True,
    cache_dir: Path | None = None,
    evidence: Path | None = None,
    device: str = "auto",
    dtype: str = "auto",
    pool: ModelPool | None = None,
    advance: Advance = no_progress,
) -> Measurement:
    """Compare the candidate (a model, or `parent` under `candidate_adapter`) with the parent.

    Both models come from `pool` (a gate's, shared with its other checks) or a private one.
    `advance` hears prompts run, the parent's then the candidate's (a cached side counts as done).
    """
    started = time.perf_counter()
    prompts = prompts or activation_prompts()
    if not prompts.harmful or not prompts.harmless:
        raise InputError("the probe prompt set needs harmful and harmless instructions")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    models = pool or ModelPool(cache)
    try:
        return _activation_diff(
            _side(models, ModelSpec(parent, None, device, dtype), parent_manifest, None),
            _side(
                models,
                ModelSpec(candidate, candidate_adapter, device, dtype),
                candidate_manifest,
                adapter_manifest,
            ),
            prompts,
            batch_size,
            max_tokens,
            cache if use_cache else None,
            evidence,
            started,
            advance,
        )
    finally:
        if pool is None:
            models.close()


def _activation_diff(
    p_side: Side,
    c_side: Side,
    prompts: ProbePrompts,
    batch_size: int,
    max_tokens: int,
    cache_dir: Path | None,
    evidence: Path | None,
    started: float,
    advance: Advance,
) -> Measurement:
    if p_side.architecture != c_side.architecture:
        raise InputError(
            f"different architectures: parent is {p_side.architecture}, candidate is {c_side.architecture}"
        )
    tally = Tally(advance)
    to_parent, to_candidate = tally.part(len(prompts.texts)), tally.part(len(prompts.texts))
    p_res = residuals_for(p_side, prompts, batch_size, max_tokens, cache_dir, to_parent)
    c_res = residuals_for(c_side, prompts, batch_size, max_tokens, cache_dir, to_candidate)
    kl = logit_lens_kl(p_side.model, c_side.model, p_res.last, c_res.last)
    candidate_adapter = c_side.adapter
    n_harm, n_safe = len(prompts.harmful), len(prompts.harmless)
    groups = {
        "harmful": np.arange(n_harm),
        "harmless": np.arange(n_harm, n_harm + n_safe),
        "general": np.arange(n_harm + n_safe, len(prompts.texts)),
    }
    rows = per_layer(p_res, c_res, groups["harmful"], groups["harmless"], kl)
    m = Measurement(
        parent=p_side.digest,
        candidate=c_side.digest,
        numbers=numbers(rows, groups, kl),
        details=rows,
        meta={
            "parent_path": str(p_side.model.spec.path),
            "candidate_path": str(c_side.model.spec.path),
            "candidate_adapter": str(candidate_adapter) if candidate_adapter else None,
            "backend": {"parent": p_res.backend, "candidate": c_res.backend},
            "hook": HOOK,
            "prompt_set": prompts.digest(),
            "prompts": {"harmful": n_harm, "harmless": n_safe, "general": len(prompts.general)},
            "cached": {"parent": p_res.cached, "candidate": c_res.cached},
            "placement": {"device": p_side.model.placement.device, "dtype": p_side.model.placement.dtype},
            "forward_seconds": {"parent": p_res.seconds, "candidate": c_res.seconds},
            "seconds": time.perf_counter() - started,
        },
    )
    if evidence is None:
        return m
    title = f"activation diff: {candidate_adapter or c_side.model.spec.path}"
    return m.model_copy(update={"evidence": write_plots(evidence, title, m)})
