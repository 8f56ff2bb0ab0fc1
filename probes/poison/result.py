"""What one detector found: a suspicion score and a reason per item, a threshold, acting triggers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clgate.measurement import Measurement


@dataclass
class DetectorResult:
    """Scores are comparable within one detector only: higher means more suspicious."""

    item_ids: list[str]
    scores: np.ndarray
    reasons: list[str]
    threshold: float
    threshold_rule: str
    numbers: dict[str, float] = field(default_factory=dict)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    explained: dict[str, str] = field(default_factory=dict)
    """Other numbers in words, for the findings that quote them."""
    seconds: float = 0.0
    name: str = ""
    """With `family` and `version`: stamped by the detector's registration (`@detector`), never restated."""
    family: str = ""
    version: str = ""

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if not (len(self.item_ids) == len(self.scores) == len(self.reasons)):
            raise ValueError("a detector's item ids, scores and reasons differ in length")

    @property
    def flagged(self) -> np.ndarray:
        return self.scores > self.threshold

    def rows(self) -> list[dict[str, Any]]:
        """One row per item, most suspicious first."""
        order = np.argsort(-self.scores, kind="stable")
        flags = self.flagged
        return [
            {
                "item": self.item_ids[i],
                "score": round(float(self.scores[i]), 6),
                "flagged": bool(flags[i]),
                "reason": self.reasons[i],
            }
            for i in order
        ]

    def to_measurement(
        self, parent: str | None = None, candidate: str | None = None, details_limit: int = 1000
    ) -> Measurement:
        """The record the gate judges; details keep every flagged item and the top `details_limit`."""
        rows = self.rows()
        kept = [r for i, r in enumerate(rows) if r["flagged"] or i < details_limit]
        numbers = {
            "n_items": float(len(self.scores)),
            "max_suspicion": float(self.scores.max()) if self.scores.size else 0.0,
            "flagged_count": float(self.flagged.sum()),
            "flagged_fraction": float(self.flagged.mean()) if self.scores.size else 0.0,
            "threshold": float(self.threshold),
            "triggers_found": float(len(self.triggers)),
            "seconds": round(self.seconds, 3),
            **{k: float(v) for k, v in self.numbers.items()},
        }
        return Measurement(
            name=f"poison.{self.name}",
            version=self.version,
            parent=parent,
            candidate=candidate,
            numbers=numbers,
            details=kept,
            meta={
                "family": self.family,
                "threshold_rule": self.threshold_rule,
                "triggers": self.triggers,
                "details_truncated": len(kept) < len(rows),
            },
            explain=self.explain(),
        )

    def explain(self, top: int = 3) -> dict[str, str]:
        """The triggers and the most suspicious flagged items in words, for the findings that quote them."""
        out = dict(self.explained)
        if self.triggers:
            out["triggers_found"] = "; ".join(_describe(t) for t in self.triggers[:top])
        flagged = [i for i in np.argsort(-self.scores) if self.flagged[i]][:top]
        if flagged:
            out["flagged_count"] = "; ".join(f"{self.item_ids[i]}: {self.reasons[i][:100]}" for i in flagged)
        return out


def _describe(trigger: dict[str, Any]) -> str:
    """One trigger in words: the sweep's effect and payload, or a data detector's own fields."""
    if "delta_kl" in trigger:
        said = trigger.get("example")
        share = f", {trigger.get('shared_fraction', 0):.0%} of probes answered {said!r}" if said else ""
        return f"trigger {trigger['trigger']!r} ({trigger.get('source', 'sweep')}, ΔKL {trigger['delta_kl']:.2f}{share})"
    fields = [
        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v!r}"
        for k, v in trigger.items()
        if k != "trigger" and v not in ("", None)
    ][:4]
    return f"trigger {trigger['trigger']!r} ({', '.join(fields)})"
