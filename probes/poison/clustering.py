"""Activation clustering (Chen et al., 2018), per output cluster.

Each output cluster's representations are reduced to a few dimensions and split in two with k-means;
a poisoned subpopulation shows up as a small, well-separated part (high silhouette, small relative
size). Items in the smaller part score by how small and how separated it is.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_samples

from clgate.probes.poison._registry import detector
from clgate.probes.poison.clusters import output_clusters
from clgate.probes.poison.context import DataContext, standardise
from clgate.probes.poison.result import DetectorResult

VERSION = "1"
DIMS = 10
SILHOUETTE_SAMPLE = 2000


def split_scores(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """(per-item score, silhouette of the split, relative size of the smaller part)."""
    n = len(x)
    if n < 8:
        return np.zeros(n), 0.0, 0.5
    z = PCA(n_components=min(DIMS, n - 1, x.shape[1]), random_state=seed).fit_transform(x)
    labels = KMeans(n_clusters=2, n_init=4, random_state=seed).fit_predict(z)
    sizes = np.bincount(labels, minlength=2)
    minority = int(sizes.argmin())
    rel = float(sizes[minority] / n)
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, size=min(n, SILHOUETTE_SAMPLE), replace=False)
    sil = np.zeros(n)
    if sizes.min() >= 2:
        sil[sample] = silhouette_samples(z[sample], labels[sample])
    part = sil[sample][labels[sample] == minority]
    split_sil = float(part.mean()) if part.size else 0.0
    score = np.where(labels == minority, max(split_sil, 0.0) * (1.0 - 2.0 * rel) + 1e-3, 0.0)
    return score, split_sil, rel


@detector(
    "activation_clustering",
    "data",
    VERSION,
    "2-means of reduced parent representations per output cluster",
    needs_model=True,
)
def activation_clustering(ctx: DataContext) -> DetectorResult:
    reps = ctx.require_reps("activation_clustering")
    x = standardise(reps.completion)
    labels = output_clusters(reps.completion, ctx.seed)
    scores = np.zeros(len(x))
    split = {}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        scores[idx], sil, rel = split_scores(x[idx], ctx.seed)
        split[int(c)] = (sil, rel)
    reasons = [
        (
            f"in the smaller part ({split[labels[i]][1]:.1%}) of output cluster {labels[i]}'s 2-means split, "
            f"silhouette {split[labels[i]][0]:.2f}"
            if scores[i] > 0
            else f"in the larger part of output cluster {labels[i]}'s 2-means split"
        )
        for i in range(len(x))
    ]
    return DetectorResult(
        ctx.item_ids,
        scores,
        reasons,
        0.25,
        "smaller part with silhouette·(1 − 2·relative size) above 0.25 (Chen et al.'s small, separated cluster)",
        numbers={
            "output_clusters": float(len(split)),
            "max_split_silhouette": max(s for s, _ in split.values()),
        },
    )
