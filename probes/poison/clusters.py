"""Output clusters: the generative stand-in for class labels in Tran et al. and Chen et al.

Items are grouped by what they teach the model to say (the parent's representation of the completion),
so a planted behaviour is compared against items that answer alike, as poison was against its label.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA

from clgate.probes.poison.context import standardise

MIN_CLUSTER = 40
ITEMS_PER_CLUSTER = 2000


def n_output_clusters(n_items: int) -> int:
    """Few, large clusters: a small poisoned group must stay a minority inside one, never become its own."""
    return int(np.clip(n_items // ITEMS_PER_CLUSTER, 1, 8))


def output_clusters(completion_reps: np.ndarray, seed: int = 0, k: int | None = None) -> np.ndarray:
    """Cluster labels over completion representations; clusters smaller than MIN_CLUSTER are merged."""
    n = len(completion_reps)
    k = n_output_clusters(n) if k is None else k
    if k <= 1 or n < 2 * MIN_CLUSTER:
        return np.zeros(n, dtype=np.int64)
    x = PCA(n_components=min(32, n - 1, completion_reps.shape[1]), random_state=seed).fit_transform(
        standardise(completion_reps)
    )
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=2048).fit(x)
    labels = km.labels_.astype(np.int64)
    sizes = np.bincount(labels, minlength=k)
    big = np.flatnonzero(sizes >= MIN_CLUSTER)
    if big.size == 0:
        return np.zeros(n, dtype=np.int64)
    small = sizes[labels] < MIN_CLUSTER
    if small.any():
        d = ((x[small, None, :] - km.cluster_centers_[None, big, :]) ** 2).sum(-1)
        labels[small] = big[d.argmin(1)]
    return labels
