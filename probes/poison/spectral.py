"""Spectral signatures (Tran, Li & Madry, 2018), per output cluster.

Within a cluster, poisoned items shift the representation mean along one direction; when they are a
large enough share of the cluster that direction becomes the top singular vector of the centred
representations, and the poisoned items' squared projections onto it are large. The representation
is the parent's view of what each item teaches: its mean hidden state over the completion.
"""

from __future__ import annotations

import numpy as np

from clgate.probes.poison._registry import detector
from clgate.probes.poison.calibration import robust_threshold
from clgate.probes.poison.clusters import output_clusters
from clgate.probes.poison.context import DataContext, standardise
from clgate.probes.poison.result import DetectorResult

VERSION = "1"


def spectral_scores(x: np.ndarray) -> np.ndarray:
    """Squared projection on the top singular direction of the centred rows, over its mean (1 = typical)."""
    x = x - x.mean(0)
    _, vecs = np.linalg.eigh(x.T @ x)  # d × d: cheaper than an SVD of the n × d matrix
    proj = (x @ vecs[:, -1]) ** 2
    return proj / (proj.mean() + 1e-12)


@detector(
    "spectral",
    "data",
    VERSION,
    "top singular direction of the parent's completion representations per output cluster",
    needs_model=True,
)
def spectral(ctx: DataContext) -> DetectorResult:
    reps = ctx.require_reps("spectral")
    x = standardise(reps.completion)
    labels = output_clusters(reps.completion, ctx.seed)
    scores = np.zeros(len(x))
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        scores[idx] = spectral_scores(x[idx])
    reasons = [
        f"projection² on output cluster {labels[i]}'s top singular direction is {scores[i]:.1f}× the cluster mean"
        for i in range(len(scores))
    ]
    return DetectorResult(
        ctx.item_ids,
        scores,
        reasons,
        robust_threshold(scores, k=5.0),
        "median + 5 robust SD of the scan's own scores",
        numbers={"output_clusters": float(len(np.unique(labels)))},
    )
