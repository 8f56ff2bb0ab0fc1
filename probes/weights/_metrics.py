"""The diff's numbers: totals per layer and per module type, and over every changed tensor."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from clgate.probes.weights._names import layer_index, module_type


def group(rows: Iterable[dict[str, Any]], names: Iterable[str], key: str) -> list[dict[str, Any]]:
    """Per-layer or per-module-type totals over the changed tensors, with a row for every group."""
    total: dict[Any, int] = defaultdict(int)
    for name in names:
        g = layer_index(name) if key == "layer" else module_type(name)
        if g is not None:
            total[g] += 1
    acc: dict[Any, dict[str, float]] = {
        g: {"changed": 0, "d2": 0.0, "b2": 0.0, "max_rel": 0.0, "max_abs": 0.0} for g in total
    }
    for row in rows:
        if row[key] is None:
            continue
        a = acc[row[key]]
        a["changed"] += 1
        a["d2"] += row["delta_norm"] ** 2
        a["b2"] += row["base_norm"] ** 2
        a["max_rel"] = max(a["max_rel"], row["relative_change"] or 0.0)
        a["max_abs"] = max(a["max_abs"], row["max_abs_delta"])
    return [
        {
            key: g,
            "tensors": total[g],
            "tensors_changed": int(a["changed"]),
            "delta_norm": math.sqrt(a["d2"]),
            "relative_change": math.sqrt(a["d2"] / a["b2"]) if a["b2"] > 0 else 0.0,
            "max_relative_change": a["max_rel"],
            "max_abs_delta": a["max_abs"],
        }
        for g, a in sorted(acc.items())
    ]


def numbers(rows: list[dict[str, Any]], names: list[str], per_type: list[dict[str, Any]]) -> dict[str, float]:
    d2 = sum(r["delta_norm"] ** 2 for r in rows)
    b2 = sum(r["base_norm"] ** 2 for r in rows)
    changed_params = sum(math.prod(r["shape"]) for r in rows)
    exact_ranks = [r["effective_rank"] for r in rows if r["effective_rank"] is not None]
    out = {
        "weights.tensors": float(len(names)),
        "weights.tensors_changed": float(len(rows)),
        "weights.fraction_changed": len(rows) / len(names) if names else 0.0,
        "weights.parameters_changed": float(changed_params),
        "weights.modules_changed": float(len({r["module"] for r in rows})),
        "weights.layers_changed": float(len({r["layer"] for r in rows if r["layer"] is not None})),
        "weights.delta_norm": math.sqrt(d2),
        "weights.relative_change": math.sqrt(d2 / b2) if b2 > 0 else 0.0,
        "weights.max_relative_change": max((r["relative_change"] or 0.0 for r in rows), default=0.0),
        "weights.max_abs_delta": max((r["max_abs_delta"] for r in rows), default=0.0),
        "weights.min_cosine": min((r["cosine"] for r in rows), default=1.0),
        "weights.max_stable_rank": max((r["stable_rank"] or 0.0 for r in rows), default=0.0),
        "weights.max_effective_rank": max(exact_ranks, default=0.0),
    }
    for t in per_type:
        out[f"weights.max_relative_change.{t['module_type']}"] = t["max_relative_change"]
        out[f"weights.relative_change.{t['module_type']}"] = t["relative_change"]
    return out
