"""Paired statistics for parent vs candidate, and continual-learning metrics over a history.

Parent and candidate answer the same items, so differences are tested per item: the exact
McNemar test on the discordant pairs (items one model gets right and the other wrong) and a
paired bootstrap confidence interval of the accuracy difference. A gate can then block on
evidence (a CI that excludes zero, a small p), not on noise in a few items.

Over a sequence of updates, `R[i][j]` is the accuracy on task j after update i (tasks are the
updates' own target sets, in order). From it: average accuracy, backward transfer and
forgetting (Lopez-Paz & Ranzato 2017, GEM; Chaudhry et al. 2018, RWalk), forward transfer
(GEM; needs the accuracy b_j of the model before any update), plasticity as the accuracy on
each task right after learning it, and intransigence (Chaudhry et al. 2018; needs a reference
accuracy per task, e.g. a model trained on all tasks jointly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clgate.errors import InputError
from clgate.measurement import Measurement

COMPARE_VERSION = "1"
BOOTSTRAP_SAMPLES = 4000
BOOTSTRAP_SEED = 20260101


def mcnemar_exact(parent_only: int, candidate_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial(n, 1/2) test on the discordant pairs.

    `parent_only`: items the parent gets right and the candidate wrong; `candidate_only` the
    reverse. Exact integer arithmetic, so tiny p-values do not underflow to a wrong 0.
    """
    b, c = int(parent_only), int(candidate_only)
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, float(2 * tail / (1 << n)))


def bootstrap_ci(
    differences: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of paired per-item differences (items resampled)."""
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 4_000_000 // d.size)
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        means[start:stop] = d[rng.integers(0, d.size, size=(stop - start, d.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedResult:
    """Parent vs candidate on the same n items."""

    n: int
    parent_accuracy: float
    candidate_accuracy: float
    delta: float
    delta_ci_low: float
    delta_ci_high: float
    parent_only: int
    """Items the parent gets right and the candidate gets wrong (flipped to wrong)."""
    candidate_only: int
    """Items the candidate gets right and the parent gets wrong (flipped to right)."""
    mcnemar_p: float

    def numbers(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}.accuracy": self.candidate_accuracy,
            f"{prefix}.parent_accuracy": self.parent_accuracy,
            f"{prefix}.delta": self.delta,
            f"{prefix}.delta_ci_low": self.delta_ci_low,
            f"{prefix}.delta_ci_high": self.delta_ci_high,
            f"{prefix}.mcnemar_p": self.mcnemar_p,
            f"{prefix}.flipped_to_wrong": float(self.parent_only),
            f"{prefix}.flipped_to_right": float(self.candidate_only),
            f"{prefix}.n": float(self.n),
        }


def paired_accuracy(
    parent: Sequence[bool], candidate: Sequence[bool], seed: int = BOOTSTRAP_SEED
) -> PairedResult:
    """Accuracy of each, the difference (candidate − parent) with its CI, and McNemar's p."""
    p = np.asarray(parent, dtype=bool)
    c = np.asarray(candidate, dtype=bool)
    if p.shape != c.shape:
        raise ValueError("parent and candidate must score the same items")
    n = int(p.size)
    parent_only = int((p & ~c).sum())
    candidate_only = int((~p & c).sum())
    low, high = bootstrap_ci(c.astype(float) - p.astype(float), seed=seed)
    return PairedResult(
        n=n,
        parent_accuracy=float(p.mean()) if n else 0.0,
        candidate_accuracy=float(c.mean()) if n else 0.0,
        delta=float(c.mean() - p.mean()) if n else 0.0,
        delta_ci_low=low,
        delta_ci_high=high,
        parent_only=parent_only,
        candidate_only=candidate_only,
        mcnemar_p=mcnemar_exact(parent_only, candidate_only),
    )


def paired_mean(
    parent: Sequence[float], candidate: Sequence[float], seed: int = BOOTSTRAP_SEED
) -> tuple[float, float, float, float, float]:
    """(parent mean, candidate mean, delta, CI low, CI high) of a per-item number."""
    p = np.asarray(parent, dtype=float)
    c = np.asarray(candidate, dtype=float)
    low, high = bootstrap_ci(c - p, seed=seed)
    return float(p.mean()), float(c.mean()), float(c.mean() - p.mean()), low, high


# --- continual-learning metrics over an accuracy matrix ------------------------------------


def _matrix(r: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """R as an array; NaN marks an entry never measured (a task before it was learnt), skipped below."""
    m = np.asarray(r, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise InputError(f"accuracy matrix must be square T×T with T ≥ 1, got shape {m.shape}")
    return m


def average_accuracy(r: Sequence[Sequence[float]] | np.ndarray) -> float:
    """ACC = (1/T) Σ_j R[T−1][j]: accuracy on every task after the last update (GEM)."""
    m = _matrix(r)
    return float(np.nanmean(m[-1]))


def backward_transfer(r: Sequence[Sequence[float]] | np.ndarray) -> float:
    """BWT = 1/(T−1) Σ_{j<T−1} (R[T−1][j] − R[j][j]); negative means forgetting (GEM)."""
    m = _matrix(r)
    t = m.shape[0]
    if t < 2:
        return 0.0
    return float(np.nanmean([m[-1, j] - m[j, j] for j in range(t - 1)]))


def forward_transfer(r: Sequence[Sequence[float]] | np.ndarray, baseline: Sequence[float]) -> float:
    """FWT = 1/(T−1) Σ_{j≥1} (R[j−1][j] − b_j): what earlier updates gave a task before it was learnt."""
    m = _matrix(r)
    b = np.asarray(baseline, dtype=float)
    t = m.shape[0]
    if b.shape != (t,):
        raise InputError(f"baseline needs one accuracy per task ({t}), got {b.size}")
    if t < 2:
        return 0.0
    return float(np.mean([m[j - 1, j] - b[j] for j in range(1, t)]))


def forgetting(r: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Average forgetting after the last update (Chaudhry et al. 2018):
    f_j = max_{l<T−1} R[l][j] − R[T−1][j] over tasks j < T−1 (l over every earlier update, as defined)."""
    m = _matrix(r)
    t = m.shape[0]
    if t < 2:
        return 0.0
    return float(np.nanmean([np.nanmax(m[: t - 1, j]) - m[-1, j] for j in range(t - 1)]))


def plasticity(r: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Mean of R[j][j]: how well each task is learnt when it is the update's own task."""
    m = _matrix(r)
    return float(np.nanmean(np.diag(m)))


def intransigence(r: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]) -> float:
    """Mean of a*_j − R[j][j] (Chaudhry et al. 2018): how far short of a reference each task is learnt."""
    m = _matrix(r)
    a = np.asarray(reference, dtype=float)
    if a.shape != (m.shape[0],):
        raise InputError(f"reference needs one accuracy per task ({m.shape[0]}), got {a.size}")
    return float(np.mean(a - np.diag(m)))


def continual_metrics(
    r: Sequence[Sequence[float]] | np.ndarray,
    baseline: Sequence[float] | None = None,
    reference: Sequence[float] | None = None,
) -> dict[str, float]:
    """Every metric the inputs allow, keyed as the policy refers to them."""
    out = {
        "continual.average_accuracy": average_accuracy(r),
        "continual.backward_transfer": backward_transfer(r),
        "continual.forgetting": forgetting(r),
        "continual.plasticity": plasticity(r),
    }
    if baseline is not None:
        out["continual.forward_transfer"] = forward_transfer(r, baseline)
    if reference is not None:
        out["continual.intransigence"] = intransigence(r, reference)
    return out


# --- measurements ---------------------------------------------------------------------------


def _paired_rows(
    parent: Measurement, candidate: Measurement
) -> dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    theirs = {(r["suite"], r["id"]): r for r in candidate.details}
    pairs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for row in parent.details:
        other = theirs.get((row["suite"], row["id"]))
        if other is not None:
            pairs.setdefault(row["suite"], []).append((row, other))
    return pairs


def _change(p: bool, c: bool) -> str:
    return "same" if p == c else ("to_right" if c else "to_wrong")


def compare_measurements(
    parent: Measurement, candidate: Measurement, seed: int = BOOTSTRAP_SEED
) -> Measurement:
    """Pair two single-model eval measurements item by item (same suite, same item id).

    Numbers per suite: `accuracy` (the candidate's), `parent_accuracy`, `delta`,
    `delta_ci_low`/`high` (paired bootstrap 95%), `mcnemar_p`, `flipped_to_wrong`/`right`, `n`;
    and for every other per-item number `S.KEY` (candidate mean), `S.KEY.parent`, `S.KEY.delta`
    with its CI, plus `S.KEY.mcnemar_p` for yes/no numbers. Details: one row per paired item.
    """
    numbers: dict[str, float] = {}
    details: list[dict[str, Any]] = []
    flipped: dict[str, dict[str, list[str]]] = {}
    for suite, pairs in _paired_rows(parent, candidate).items():
        result = paired_accuracy([p["correct"] for p, _ in pairs], [c["correct"] for _, c in pairs], seed)
        numbers.update(result.numbers(suite))
        extra = [
            k
            for k, v in pairs[0][0].items()
            if k not in ("correct",) and isinstance(v, int | float | bool)
            if all(
                isinstance(p.get(k), int | float | bool) and isinstance(c.get(k), int | float | bool)
                for p, c in pairs
            )
        ]
        for key in extra:
            pm, cm, delta, low, high = paired_mean(
                [float(p[key]) for p, _ in pairs], [float(c[key]) for _, c in pairs], seed
            )
            numbers.update(
                {
                    f"{suite}.{key}": cm,
                    f"{suite}.{key}.parent": pm,
                    f"{suite}.{key}.delta": delta,
                    f"{suite}.{key}.delta_ci_low": low,
                    f"{suite}.{key}.delta_ci_high": high,
                }
            )
            if isinstance(pairs[0][0][key], bool):
                b = sum(bool(p[key]) and not bool(c[key]) for p, c in pairs)
                c_only = sum(bool(c[key]) and not bool(p[key]) for p, c in pairs)
                numbers[f"{suite}.{key}.mcnemar_p"] = mcnemar_exact(b, c_only)
        flips: dict[str, list[str]] = {"to_wrong": [], "to_right": []}
        for p, c in pairs:
            change = _change(p["correct"], c["correct"])
            if change != "same":
                flips[change].append(p["id"])
            details.append(
                {
                    "suite": suite,
                    "id": p["id"],
                    "category": p.get("category", ""),
                    "parent_correct": p["correct"],
                    "candidate_correct": c["correct"],
                    "change": change,
                    "parent_answer": p.get("answer", ""),
                    "candidate_answer": c.get("answer", ""),
                }
            )
        flipped[suite] = flips
    return Measurement(
        name="evals.compare",
        version=COMPARE_VERSION,
        parent=parent.candidate,
        candidate=candidate.candidate,
        numbers=numbers,
        details=details,
        evidence=[*parent.evidence, *candidate.evidence],
        meta={"flipped": flipped, "parent": parent.meta, "candidate": candidate.meta, "bootstrap_seed": seed},
    )


def continual_measurement(
    r: Sequence[Sequence[float]] | np.ndarray,
    tasks: Sequence[str],
    baseline: Sequence[float] | None = None,
    reference: Sequence[float] | None = None,
) -> Measurement:
    """The continual-learning metrics of an accuracy matrix as a `Measurement` (matrix in details)."""
    m = _matrix(r)
    if len(tasks) != m.shape[0]:
        raise InputError(f"need one task name per row of the matrix ({m.shape[0]}), got {len(tasks)}")
    return Measurement(
        name="evals.continual",
        version=COMPARE_VERSION,
        numbers=continual_metrics(m, baseline, reference),
        details=[
            {"after_update": tasks[i], **{f"on:{tasks[j]}": float(m[i, j]) for j in range(len(tasks))}}
            for i in range(len(tasks))
        ],
    )


def trigger_change_rates(measurement: Measurement) -> dict[str, dict[str, float]]:
    """Per trigger of a `triggers` suite run: how often inserting it changed the reply.

    On a single-model measurement: `change_rate`. On a comparison: the parent's and the
    candidate's rates and the exact McNemar p over that trigger's probes, so a trigger the
    candidate reacts to and the parent does not stands out (a backdoor's signature).
    """
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in measurement.details:
        if row["suite"] == "triggers":
            rows.setdefault(row["id"].split("|", 1)[1], []).append(row)
    out: dict[str, dict[str, float]] = {}
    for trigger, items in rows.items():
        if "correct" in items[0]:
            out[trigger] = {
                "change_rate": 1 - float(np.mean([r["correct"] for r in items])),
                "n": float(len(items)),
            }
            continue
        parent = [not r["parent_correct"] for r in items]
        candidate = [not r["candidate_correct"] for r in items]
        out[trigger] = {
            "parent_change_rate": float(np.mean(parent)),
            "candidate_change_rate": float(np.mean(candidate)),
            "mcnemar_p": mcnemar_exact(
                sum(p and not c for p, c in zip(parent, candidate, strict=True)),
                sum(c and not p for p, c in zip(parent, candidate, strict=True)),
            ),
            "n": float(len(items)),
        }
    return out
