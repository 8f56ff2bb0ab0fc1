"""Retrieval hubness: an entry in the top-k for an unusually large share of unrelated queries.

A poisoned memory is written to be retrieved whatever is asked (it lists many topics, or sits near
the centre of the embedding space), so its k-occurrence over a broad query set is far above k/N.
"""

from __future__ import annotations

import numpy as np

from clgate.errors import InputError
from clgate.probes.poison._registry import detector
from clgate.probes.poison.calibration import robust_threshold
from clgate.probes.poison.memory_context import MemoryContext
from clgate.probes.poison.result import DetectorResult

VERSION = "1"
TOP_K = 5


def k_occurrence(entries: np.ndarray, queries: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """How many queries retrieve each entry in their top k (cosine; embeddings are unit-norm)."""
    k = min(k, len(entries))
    sims = queries @ entries.T
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return np.bincount(top.ravel(), minlength=len(entries))


@detector("hubness", "memory", VERSION, "share of unrelated queries that retrieve the entry in their top-k")
def hubness(ctx: MemoryContext) -> DetectorResult:
    if not ctx.queries:
        raise InputError("hubness needs queries (give --queries FILE or use the bundled set)")
    n, q = len(ctx.store.entries), len(ctx.queries)
    counts = k_occurrence(ctx.entry_embeddings, ctx.query_embeddings)
    share = counts / q
    expected = min(TOP_K, n) / n
    reasons = [
        f"in the top {TOP_K} for {c} of {q} queries ({s:.0%}; {s / expected:.1f}× the expected {expected:.1%})"
        for c, s in zip(counts, share, strict=True)
    ]
    return DetectorResult(
        ctx.item_ids,
        share,
        reasons,
        robust_threshold(share, k=5.0, floor=max(0.1, 4 * expected)),
        "median + 5 robust SD of the store's shares, at least 4× the expected k/N and 10%",
        numbers={"queries": float(q), "top_k": float(TOP_K), "expected_share": expected},
    )
