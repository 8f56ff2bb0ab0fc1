"""What the probe's page and the gate report draw of a weight diff: change per module type and layer."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from clgate.measurement import Measurement
from clgate.probes import plots


@dataclass(frozen=True)
class ChangeGrid:
    """Largest ||ΔW||/||W|| per module type and layer: the heatmap the probe's page and the gate report draw."""

    layers: tuple[int, ...]
    module_types: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]  # values[i][j]: module_types[i] at layers[j]
    layer_change: tuple[float, ...]  # ||ΔW||/||W|| of each whole layer
    top_tensor: str | None  # the tensor that changed most, relative to its own norm
    top_change: float
    top_cell: tuple[int, int] | None  # its (module type, layer) indices in `values`, if in a layer


def change_grid(m: Measurement) -> ChangeGrid:
    """The grid of a `weights` or `weights.lora` measurement; attn_q and mlp_down rows are always
    there, so an update that left attention or the MLP alone shows it."""
    rows = [r for r in m.details if r["layer"] is not None]
    layers = tuple(r["layer"] for r in m.meta["per_layer"])
    types = tuple(sorted({r["module_type"] for r in rows} | {"attn_q", "mlp_down"}))
    cell: dict[tuple[str, int], float] = defaultdict(float)
    for r in rows:
        key = (r["module_type"], r["layer"])
        cell[key] = max(cell[key], r["relative_change"] or 0.0)
    top = max(m.details, key=lambda r: r["relative_change"] or 0.0, default=None)
    in_grid = top is not None and top["layer"] is not None
    return ChangeGrid(
        layers=layers,
        module_types=types,
        values=tuple(tuple(cell[(t, layer)] for layer in layers) for t in types),
        layer_change=tuple(r["relative_change"] for r in m.meta["per_layer"]),
        top_tensor=top["tensor"] if top else None,
        top_change=(top["relative_change"] or 0.0) if top else 0.0,
        top_cell=(types.index(top["module_type"]), layers.index(top["layer"])) if in_grid else None,
    )


def write_plots(path: Path, m: Measurement, title: str) -> list[str]:
    grid = change_grid(m)
    figures = [
        plots.layer_heatmap(
            grid.values,
            grid.layers,
            grid.module_types,
            "max ||ΔW||/||W|| per layer and module type",
            "relative change",
        ),
        plots.layer_bars(grid.layers, grid.layer_change, "relative change per layer", "||ΔW||/||W||"),
    ]
    return [str(p) for p in plots.write_page(path, f"{title}: {m.meta['candidate_path']}", figures)]
