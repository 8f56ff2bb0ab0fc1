"""Thresholds for the summary flag, set from the scores of (mostly clean) items, never from labels."""

from __future__ import annotations

import numpy as np

MAD_TO_SIGMA = 1.4826


def robust_z(scores: np.ndarray) -> np.ndarray:
    """(x − median) / (1.4826 · MAD); when MAD is 0 the mean absolute deviation stands in."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    med = np.median(scores)
    spread = MAD_TO_SIGMA * np.median(np.abs(scores - med))
    if spread <= 1e-12:
        spread = 1.2533 * np.mean(np.abs(scores - med))
    if spread <= 1e-12:
        return np.zeros_like(scores)
    return (scores - med) / spread


def robust_threshold(scores: np.ndarray, k: float = 3.5, floor: float | None = None) -> float:
    """median + k robust standard deviations: the scan calibrates on its own bulk, assumed clean."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return float("inf")
    med = float(np.median(scores))
    spread = MAD_TO_SIGMA * float(np.median(np.abs(scores - med)))
    if spread <= 1e-12:
        spread = 1.2533 * float(np.mean(np.abs(scores - med)))
    threshold = med + k * spread if spread > 1e-12 else med + 1e-9
    return max(threshold, floor) if floor is not None else threshold


def reference_threshold(clean_scores: np.ndarray, fpr: float = 0.01) -> float:
    """The (1 − fpr) quantile of scores on data known to be clean (e.g. the bundled clean set)."""
    clean_scores = np.asarray(clean_scores, dtype=np.float64)
    if clean_scores.size == 0:
        return float("inf")
    return float(np.quantile(clean_scores, 1.0 - fpr))
