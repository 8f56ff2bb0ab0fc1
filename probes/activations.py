"""Activation diff: the parent and the candidate side by side on a fixed probe prompt set.

Both models run through the runtime's hook capture: a TransformerLens `TransformerBridge` over the
loaded weights on their device (raw HF weights, hooks named as TransformerLens names them), or
forward hooks on the decoder layers where the bridge cannot run. Per layer, at
`blocks.{l}.hook_resid_post`:

- drift: cosine distance and relative change of the residual stream, pooled over each prompt's own
  tokens (the chat template's shared prefix, e.g. a default system prompt, is left out);
- linear CKA between the two models' pooled representations;
- logit lens: KL(parent ‖ candidate) of the next-token distributions read from each layer through
  each model's own final norm and unembedding, at the last prompt token;
- refusal direction (Arditi et al., 2024): difference of mean residuals at the last prompt token
  (the post-instruction position) between harmful and harmless instructions, its cosine between
  parent and candidate, and how far harmful prompts project onto the parent's unit direction.

Residuals are cached per (model digest, adapter digest, prompt set, device kind and dtype); the
logit lens then only needs each model's final norm and unembedding, so a cached model still loads
but is not run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clgate.artifacts import Manifest, compute_manifest, default_cache_dir
from clgate.atomic import atomic_path
from clgate.errors import InputError
from clgate.measurement import Measurement
from clgate.probes import plots
from clgate.probes._registry import probe
from clgate.progress import Advance, Tally, no_progress
from clgate.runtime import ModelPool, ModelSpec, RuntimeModel, common_prefix, repeat_cache, resid_post

VERSION = "2"  # 2: the shared prompt prefix reaches the bridge as a KV cache (it was ignored)
HOOK = "hook_resid_post"
DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_TOKENS = 128
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbePrompts:
    """Harmful and harmless instructions (for the refusal direction) and general prompts (for drift)."""

    harmful: tuple[str, ...]
    harmless: tuple[str, ...]
    general: tuple[str, ...]

    @property
    def texts(self) -> tuple[str, ...]:
        return self.harmful + self.harmless + self.general

    def digest(self) -> str:
        text = "\x1e".join("\x1f".join(group) for group in (self.harmful, self.harmless, self.general))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_lines(name: str) -> tuple[str, ...]:
    text = (resources.files("clgate.probes") / "data" / name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def bundled_prompts() -> ProbePrompts:
    return ProbePrompts(_read_lines("harmful.txt"), _read_lines("harmless.txt"), _read_lines("general.txt"))


@dataclass
class Residuals:
    """One model's residual stream on the prompt set, pooled two ways, for every layer."""

    last: np.ndarray  # (prompts, layers, d_model): at the last prompt token
    mean: np.ndarray  # (prompts, layers, d_model): mean over the prompt's own tokens
    backend: str
    seconds: float = 0.0
    cached: bool = False

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, last=self.last, mean=self.mean, backend=self.backend, seconds=self.seconds)

    @classmethod
    def load(cls, path: Path) -> Residuals:
        with np.load(path) as z:
            return cls(z["last"], z["mean"], str(z["backend"]), float(z["seconds"]), cached=True)


def capture_residuals(
    model: RuntimeModel,
    prompts: tuple[str, ...],
    batch_size: int,
    max_tokens: int,
    advance: Advance = no_progress,
) -> Residuals:
    """Pool each block's resid_post per prompt: length-sorted, right-padded batches after a shared prefix.

    The prefix every prompt starts with is run once and its KV cache reused, so only each prompt's
    own tokens are computed; causal attention makes the result equal to running each prompt whole.
    Prompts are left-truncated to `max_tokens`, so the post-instruction tokens survive.
    """
    started = time.perf_counter()
    hooks = model.hooked()
    names = [resid_post(layer) for layer in range(model.n_layers)]
    ids = [model.chat_ids([{"role": "user", "content": p}])[-max_tokens:] for p in prompts]
    head = common_prefix(ids, min(map(len, ids)) - 1)
    prefix = len(head)
    pad = model.tokenizer.pad_token_id or 0
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    last = mean = None
    with torch.inference_mode():
        state = hooks.head_cache(head) if head else None
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            own = [ids[i][prefix:] for i in batch]
            width = max(len(x) for x in own)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, x in enumerate(own):
                input_ids[row, : len(x)] = torch.tensor(x)
                mask[row, : len(x)] = 1
            full_mask = torch.cat([torch.ones((len(batch), prefix), dtype=torch.long), mask], dim=1)
            cache = repeat_cache(state, len(batch)) if state is not None else None
            resid = hooks.run(input_ids, full_mask, names, cache)
            pooled_last, pooled_mean = _pool([resid[n] for n in names], mask)
            if last is None:
                shape = (len(ids), len(names), pooled_last.shape[-1])
                last, mean = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
            last[batch] = pooled_last
            mean[batch] = pooled_mean
            advance(start + len(batch), len(ids))
    return Residuals(last, mean, hooks.backend, time.perf_counter() - started)


def _pool(layers: list[torch.Tensor], mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(rows, layers, d_model) at the last prompt token and averaged over the prompt's own tokens,
    pooled layer by layer where the states are (a GPU's memory holds one layer's batch at a time)."""
    device = layers[0].device
    mask = mask.to(device)
    weights = (mask / mask.sum(1, keepdim=True))[:, :, None]
    at_last = torch.arange(len(mask), device=device), mask.sum(1) - 1
    last = torch.stack([states.float()[at_last] for states in layers], dim=1)
    mean = torch.stack([(states.float() * weights).sum(1) for states in layers], dim=1)
    return last.cpu().numpy(), mean.cpu().numpy()


@dataclass
class _Side:
    """One side of the comparison: the model as the pool holds it, and the digests its results are cached by."""

    model: RuntimeModel
    digest: str  # manifest digest of what is audited: the model, or the adapter on it
    model_digest: str
    architecture: dict[str, Any]

    @property
    def adapter(self) -> Path | None:
        return self.model.adapter


def _cache_key(side: _Side, prompts: ProbePrompts, max_tokens: int) -> str:
    adapter = side.digest if side.adapter else ""
    numerics = side.model.placement.tag
    text = f"{VERSION}|{side.model_digest}|{adapter}|{prompts.digest()}|{max_tokens}|{numerics}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _residuals_for(
    side: _Side,
    prompts: ProbePrompts,
    batch_size: int,
    max_tokens: int,
    cache_dir: Path | None,
    advance: Advance,
) -> Residuals:
    path = cache_dir / "activations" / f"{_cache_key(side, prompts, max_tokens)}.npz" if cache_dir else None
    if path is not None and path.is_file():
        try:
            cached = Residuals.load(path)
            advance(len(prompts.texts), len(prompts.texts))
            return cached
        except (OSError, ValueError, KeyError):
            log.warning("unreadable activation cache %s; recomputing", path)
    result = capture_residuals(side.model, prompts.texts, batch_size, max_tokens, advance)
    if path is not None:
        result.save(path)
    return result


def _logit_lens_kl(
    parent: RuntimeModel, candidate: RuntimeModel, p_last: np.ndarray, c_last: np.ndarray
) -> np.ndarray:
    """KL(parent ‖ candidate) of the lens distributions at the last prompt token, (prompts, layers)."""
    kl = np.zeros(p_last.shape[:2])
    p_lens, c_lens = parent.hooked().lens, candidate.hooked().lens
    with torch.inference_mode():
        for layer in range(p_last.shape[1]):
            logp = p_lens(torch.from_numpy(p_last[:, layer]))
            logq = c_lens(torch.from_numpy(c_last[:, layer])).to(logp.device)
            kl[:, layer] = (logp.exp() * (logp - logq)).sum(-1).clamp(min=0).cpu().numpy()
    return kl


def _cosine_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise cosine over the last axis, in float64."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    den = np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1)
    return np.divide((x * y).sum(-1), den, out=np.ones_like(den), where=den > 0)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al., 2019) between two (samples, features) representations."""
    x = x.astype(np.float64) - x.mean(0, dtype=np.float64)
    y = y.astype(np.float64) - y.mean(0, dtype=np.float64)
    k, m = x @ x.T, y @ y.T
    den = np.linalg.norm(k) * np.linalg.norm(m)
    return float((k * m).sum() / den) if den > 0 else 1.0


def _per_layer(
    p: Residuals, c: Residuals, harmful: np.ndarray, harmless: np.ndarray, kl: np.ndarray
) -> list[dict[str, Any]]:
    rows = []
    for layer in range(p.last.shape[1]):
        pm, cm = p.mean[:, layer].astype(np.float64), c.mean[:, layer].astype(np.float64)
        pl, cl = p.last[:, layer].astype(np.float64), c.last[:, layer].astype(np.float64)
        p_norm = np.linalg.norm(pm, axis=1)
        r_p = pl[harmful].mean(0) - pl[harmless].mean(0)
        r_c = cl[harmful].mean(0) - cl[harmless].mean(0)
        sep_p = float(np.linalg.norm(r_p))
        unit = r_p / sep_p if sep_p > 0 else r_p
        rms = math.sqrt(float((pl**2).sum(1).mean()))
        rows.append(
            {
                "layer": layer,
                "hook": f"blocks.{layer}.{HOOK}",
                "cosine_distance": float(np.clip(1 - _cosine_rows(pm, cm), 0, 2).mean()),
                "cosine_distance_last": float(np.clip(1 - _cosine_rows(pl, cl), 0, 2).mean()),
                "relative_delta": float((np.linalg.norm(cm - pm, axis=1) / np.maximum(p_norm, 1e-12)).mean()),
                "norm_change": float((np.linalg.norm(cm, axis=1) / np.maximum(p_norm, 1e-12)).mean() - 1),
                "cka": linear_cka(pm, cm),
                "logit_lens_kl": float(kl[:, layer].mean()),
                "refusal_cosine": float(_cosine_rows(r_p, r_c)),
                "refusal_norm_parent": sep_p,
                "refusal_norm_candidate": float(np.linalg.norm(r_c)),
                "refusal_signal": sep_p / rms if rms > 0 else 0.0,
                "harmful_projection_parent": float((pl[harmful] @ unit).mean()),
                "harmful_projection_candidate": float((cl[harmful] @ unit).mean()),
                "separation_parent": sep_p,
                "separation_candidate": float((cl[harmful].mean(0) - cl[harmless].mean(0)) @ unit),
            }
        )
    return rows


def _numbers(rows: list[dict[str, Any]], groups: dict[str, np.ndarray], kl: np.ndarray) -> dict[str, float]:
    def col(name: str) -> np.ndarray:
        return np.array([r[name] for r in rows])

    ratio = col("separation_candidate") / np.maximum(col("separation_parent"), 1e-12)
    # the layer where the parent separates the two sets most, among the first 80% of layers: as in
    # Arditi et al., the last layers' difference of means is mostly the unembedding of the answer
    candidates = max(1, round(0.8 * len(rows)))
    best = int(np.argmax(col("refusal_signal")[:candidates]))
    at = rows[best]
    return {
        "activations.prompts": float(len(kl)),
        "activations.layers": float(len(rows)),
        "activations.max_cosine_distance": float(col("cosine_distance").max()),
        "activations.mean_cosine_distance": float(col("cosine_distance").mean()),
        "activations.max_cosine_distance_last": float(col("cosine_distance_last").max()),
        "activations.max_relative_delta": float(col("relative_delta").max()),
        "activations.max_abs_norm_change": float(np.abs(col("norm_change")).max()),
        "activations.min_cka": float(col("cka").min()),
        "activations.mean_cka": float(col("cka").mean()),
        "activations.max_logit_lens_kl": float(col("logit_lens_kl").max()),
        "activations.output_kl": float(kl[:, -1].mean()),
        **{f"activations.output_kl.{g}": float(kl[idx, -1].mean()) for g, idx in groups.items() if len(idx)},
        "activations.refusal.layer": float(best),
        "activations.refusal.cosine": at["refusal_cosine"],
        "activations.refusal.min_cosine": float(col("refusal_cosine").min()),
        "activations.refusal.projection_parent": at["harmful_projection_parent"],
        "activations.refusal.projection_candidate": at["harmful_projection_candidate"],
        "activations.refusal.separation_parent": at["separation_parent"],
        "activations.refusal.separation_candidate": at["separation_candidate"],
        "activations.refusal.separation_ratio": float(ratio[best]),
        "activations.refusal.min_separation_ratio": float(ratio.min()),
    }


@dataclass(frozen=True)
class LayerDrift:
    """The per-layer columns of an activation diff that the probe's page and the gate report draw."""

    layer: tuple[int, ...]
    cosine_distance: tuple[float, ...]  # residual drift, mean over each prompt's tokens
    cosine_distance_last: tuple[float, ...]  # at the last prompt token
    cka: tuple[float, ...]
    logit_lens_kl: tuple[float, ...]
    separation_parent: tuple[float, ...]
    separation_candidate: tuple[float, ...]
    refusal_cosine: tuple[float, ...]  # refusal direction, parent against candidate


def layer_drift(m: Measurement) -> LayerDrift:
    return LayerDrift(**{f.name: tuple(r[f.name] for r in m.details) for f in fields(LayerDrift)})


def _plots(path: Path, title: str, m: Measurement) -> list[str]:
    d = layer_drift(m)
    figures = [
        plots.layer_lines(
            d.layer,
            {"token mean": d.cosine_distance, "last token": d.cosine_distance_last},
            "residual drift (cosine distance, parent vs candidate)",
            "1 − cos",
        ),
        plots.layer_lines(d.layer, {"linear CKA": d.cka}, "representation similarity", "CKA"),
        plots.layer_bars(d.layer, d.logit_lens_kl, "logit-lens KL(parent ‖ candidate)", "nats"),
        plots.layer_lines(
            d.layer,
            {"parent": d.separation_parent, "candidate": d.separation_candidate},
            "harmful − harmless separation along the parent's refusal direction",
            "projection",
        ),
        plots.layer_lines(
            d.layer,
            {"cos(parent, candidate)": d.refusal_cosine},
            "refusal direction agreement",
            "cosine",
        ),
    ]
    return [str(p) for p in plots.write_page(path, title, figures)]


def _side(
    models: ModelPool, spec: ModelSpec, manifest: Manifest | None, adapter_manifest: Manifest | None
) -> _Side:
    """The pool's model for `spec` (files, adapter and placement checked; nothing loaded) and its digests."""
    model = models.get(spec)
    config = json.loads((model.path / "config.json").read_text(encoding="utf-8"))
    arch = {k: config.get(k) for k in ("model_type", "num_hidden_layers", "hidden_size", "vocab_size")}
    model_digest = (manifest or compute_manifest(model.path)).root
    if spec.adapter is None:
        return _Side(model, model_digest, model_digest, arch)
    adapter_digest = (adapter_manifest or compute_manifest(spec.adapter)).root
    return _Side(model, adapter_digest, model_digest, arch)


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
    prompts = prompts or bundled_prompts()
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
    p_side: _Side,
    c_side: _Side,
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
    p_res = _residuals_for(p_side, prompts, batch_size, max_tokens, cache_dir, to_parent)
    c_res = _residuals_for(c_side, prompts, batch_size, max_tokens, cache_dir, to_candidate)
    kl = _logit_lens_kl(p_side.model, c_side.model, p_res.last, c_res.last)
    candidate_adapter = c_side.adapter
    n_harm, n_safe = len(prompts.harmful), len(prompts.harmless)
    groups = {
        "harmful": np.arange(n_harm),
        "harmless": np.arange(n_harm, n_harm + n_safe),
        "general": np.arange(n_harm + n_safe, len(prompts.texts)),
    }
    rows = _per_layer(p_res, c_res, groups["harmful"], groups["harmless"], kl)
    m = Measurement(
        name="activations",
        version=VERSION,
        parent=p_side.digest,
        candidate=c_side.digest,
        numbers=_numbers(rows, groups, kl),
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
    return m.model_copy(update={"evidence": _plots(evidence, title, m)})
