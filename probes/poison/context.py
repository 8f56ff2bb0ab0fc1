"""What a data detector gets: the update's items (re-streamable) and the parent's representations."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clgate.probes.poison.items import UpdateData
from clgate.probes.poison.representations import Representations


@dataclass
class DataContext:
    data: UpdateData
    reps: Representations | None = None
    seed: int = 0
    _ids: list[str] | None = field(default=None, repr=False)

    @property
    def item_ids(self) -> list[str]:
        if self._ids is None:
            self._ids = [item.id for item in self.data]
        return self._ids

    def require_reps(self, detector: str) -> Representations:
        if self.reps is None:
            raise ValueError(f"detector {detector!r} needs the parent model's representations")
        return self.reps


def standardise(x: np.ndarray) -> np.ndarray:
    """Centre and scale each feature (float32), so no single hidden unit dominates distances."""
    x = np.asarray(x, dtype=np.float32)
    return (x - x.mean(0)) / (x.std(0) + 1e-6)
