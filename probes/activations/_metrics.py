"""Per-layer comparison of two models' residuals: drift, CKA, logit-lens KL, refusal direction."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from clgate.probes.activations._capture import HOOK, Residuals
from clgate.runtime import RuntimeModel


def logit_lens_kl(
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


def per_layer(
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


def numbers(rows: list[dict[str, Any]], groups: dict[str, np.ndarray], kl: np.ndarray) -> dict[str, float]:
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
