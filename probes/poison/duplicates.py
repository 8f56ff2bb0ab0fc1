"""Near-duplicate flooding: many near-copies pushing one behaviour (MinHash LSH, datasketch).

Each item counts its near-duplicates (estimated Jaccard ≥ 0.8 over character 5-grams) among the
completions and among whole items; a flood is a completion or an item copied many times.
"""

from __future__ import annotations

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

from clgate.probes.poison._registry import detector
from clgate.probes.poison.calibration import robust_threshold
from clgate.probes.poison.context import DataContext
from clgate.probes.poison.result import DetectorResult
from clgate.probes.shingles import NUM_PERM, char_shingles, minhash

VERSION = "1"
THRESHOLD = 0.8
MIN_FLOOD = 5


def neighbour_counts(texts_stream, n: int, threshold: float = THRESHOLD) -> np.ndarray:
    """For each text, how many other texts are near-duplicates of it (LSH candidates, then verified)."""
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    hashes, scheme = [], None
    for i, text in texts_stream:
        m = minhash(char_shingles(text))
        lsh.insert(i, m, check_duplication=False)
        hashes.append(m.hashvalues)
        scheme = m.scheme
    sig = np.stack(hashes) if hashes else np.zeros((0, NUM_PERM), dtype=np.uint64)
    counts = np.zeros(n, dtype=np.int64)
    for i in range(n):
        cand = [j for j in lsh.query(LeanMinHash(seed=1, hashvalues=sig[i], scheme=scheme)) if j != i]
        if cand:
            counts[i] = int(((sig[cand] == sig[i]).mean(1) >= threshold).sum())
    return counts


@detector(
    "near_duplicates", "data", VERSION, "MinHash-LSH near-duplicate counts of completions and whole items"
)
def near_duplicates(ctx: DataContext) -> DetectorResult:
    n = ctx.data.n_items
    completion = neighbour_counts(((it.index, it.completion) for it in ctx.data), n)
    whole = neighbour_counts(((it.index, f"{it.prompt}\n{it.completion}") for it in ctx.data), n)
    scores = np.log2(1 + completion) + np.log2(1 + whole)
    reasons = [
        f"{completion[i]} near-duplicate completions, {whole[i]} near-duplicate items" for i in range(n)
    ]
    return DetectorResult(
        ctx.item_ids,
        scores,
        reasons,
        robust_threshold(scores, k=5.0, floor=float(np.log2(MIN_FLOOD))),
        f"median + 5 robust SD, at least {MIN_FLOOD - 1} near-copies",
        numbers={
            "max_completion_copies": float(completion.max(initial=0)),
            "max_item_copies": float(whole.max(initial=0)),
        },
    )
