"""Semantic drift of a store in MiniLM embedding space: centroid shift, and how far new entries sit
from everything the store held before."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clgate.artifacts import MemoryEntry, SentenceEmbedder


def _nearest_distance(queries: np.ndarray, corpus: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """1 − the highest cosine of each (unit-norm) query to the corpus, in blocks of queries."""
    out = np.empty(len(queries))
    for start in range(0, len(queries), 1024):
        sims = queries[start : start + 1024] @ corpus.T
        if exclude_self:
            idx = np.arange(start, min(start + 1024, len(queries)))
            sims[np.arange(len(idx)), idx] = -np.inf
        out[start : start + 1024] = 1.0 - sims.max(axis=1)
    return out


def drift(
    old: Sequence[MemoryEntry],
    new: Sequence[MemoryEntry],
    fresh: list[int],
    embedder: SentenceEmbedder | None,
) -> tuple[dict[str, float], dict[int, float]]:
    """Centroid shift of the store and nearest-neighbour distance of each new entry to the old store."""
    if not old or not new:
        return {}, {}
    embedder = embedder or SentenceEmbedder()
    texts = sorted({e.text for e in old} | {e.text for e in new})
    vectors = dict(zip(texts, embedder.encode(texts).astype(np.float64), strict=True))
    e_old = np.stack([vectors[e.text] for e in old])
    e_new = np.stack([vectors[e.text] for e in new])
    c_old, c_new = e_old.mean(0), e_new.mean(0)
    cos = float(c_old @ c_new / (np.linalg.norm(c_old) * np.linalg.norm(c_new)))
    numbers = {
        "memory.centroid_shift": max(0.0, 1.0 - cos),
        "memory.centroid_distance": float(np.linalg.norm(c_new - c_old)),
        "memory.old_nn_distance_mean": float(_nearest_distance(e_old, e_old, exclude_self=True).mean())
        if len(old) > 1
        else 0.0,
    }
    per_entry: dict[int, float] = {}
    if fresh:
        dist = _nearest_distance(e_new[fresh], e_old)
        per_entry = dict(zip(fresh, dist.tolist(), strict=True))
        numbers["memory.new_nn_distance_mean"] = float(dist.mean())
        numbers["memory.new_nn_distance_max"] = float(dist.max())
    return numbers, per_entry
