"""Static SVG charts for a gate report: the weight-change heatmap and the refusal-direction drift.

The report must open offline with no script and hash the same every time it is written, so the
charts are plain SVG with text left as text, fixed ids and no date. matplotlib comes with the model
checks (the `models` extra); without it, or without the measurement a chart draws, there is no chart.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clgate.measurement import Measurement

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_WIDTH_IN = 9.0
_RC: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text: small, searchable, read by screen readers
    "text.parse_math": False,  # tensor names come from the update's author: `$…$` is text, not mathtext
    "font.sans-serif": ["DejaVu Sans"],  # laid out in matplotlib's own font, shown in it or a sans-serif
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_ID = re.compile(r'(\bid="|url\(#|href="#)')


@dataclass(frozen=True)
class Chart:
    """One chart of a report: `svg` goes inline in the HTML and to `charts/{name}.svg` for the Markdown."""

    name: str
    title: str
    svg: str


def _svg(fig: Figure, name: str, title: str) -> str:
    """The figure as SVG that is byte-identical for the same data and can sit inline beside others:
    ids are prefixed with the chart's name (clip paths and markers are referenced by id)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Title": title})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # no XML declaration or DOCTYPE inside HTML
    label = html.escape(title, quote=True)
    text = text.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
    return _ID.sub(lambda m: f"{m.group(1)}{name}-", text)


def _figure(height_in: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(_WIDTH_IN, height_in), layout="constrained")


def _ticks(n: int) -> int:
    return 1 if n <= 32 else 4


def _finite(*values: float) -> list[float]:
    """The values an axis can be scaled to: a corrupt checkpoint's NaN or inf must not break the report."""
    return [v for v in values if math.isfinite(v)]


def weight_change(m: Measurement) -> Chart | None:
    """Largest ||ΔW||/||W|| per layer and module type; the tensor that changed most is outlined."""
    if not m.details:
        return None  # nothing changed: a blank grid says less than the report's numbers
    from matplotlib.patches import Rectangle

    from clgate.probes.weights import change_grid  # torch: the `models` extra, like matplotlib

    grid = change_grid(m)
    title = "Weight change per layer and module type"
    name = "weight-change"
    fig = _figure(1.9 + 0.3 * len(grid.module_types))
    ax = fig.add_subplot()
    top = max(_finite(*(v for row in grid.values for v in row)), default=0.0)
    mesh = ax.pcolormesh(
        grid.values, cmap="Reds", vmin=0.0, vmax=top or 1.0, edgecolors="white", linewidth=0.5
    )
    mesh.set_gid("cells")
    fig.colorbar(mesh, ax=ax, label="max ||ΔW|| / ||W||", pad=0.01, aspect=12)
    step = _ticks(len(grid.layers))
    ax.set_xticks([i + 0.5 for i in range(0, len(grid.layers), step)], [str(v) for v in grid.layers[::step]])
    ax.set_yticks([i + 0.5 for i in range(len(grid.module_types))], grid.module_types)
    ax.invert_yaxis()
    where = "outlined" if grid.top_cell is not None else "outside the layers"
    ax.set_xlabel(f"layer\nlargest change ({where}): {grid.top_tensor}, {grid.top_change:.3g}")
    ax.set_title(title, loc="left", fontsize=11)
    if grid.top_cell is not None:
        i, j = grid.top_cell
        ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor="black", linewidth=1.5, gid="top"))
    return Chart(name, title, _svg(fig, name, title))


def refusal_drift(m: Measurement) -> Chart | None:
    """Per layer: how far the refusal direction turned and how far the residual stream moved."""
    if not m.details:
        return None
    from clgate.probes.activations import layer_drift

    drift = layer_drift(m)
    title = "Refusal-direction drift per layer"
    name = "refusal-drift"
    fig = _figure(3.2)
    ax = fig.add_subplot()
    lines = (
        (
            "refusal-cosine",
            drift.refusal_cosine,
            "o-",
            "#cf222e",
            "refusal direction: cos(parent, candidate)",
        ),
        ("residual-drift", drift.cosine_distance, "s-", "#0969da", "residual drift: 1 − cos (token mean)"),
    )
    for gid, values, style, colour, label in lines:
        ax.plot(drift.layer, values, style, color=colour, gid=gid, label=label)
    judged = m.numbers.get("activations.refusal.layer")
    if judged is not None and math.isfinite(judged):
        ax.axvline(judged, color="#57606a", linestyle="--", linewidth=1, label="layer the gate judges")
    shown = _finite(*drift.refusal_cosine, *drift.cosine_distance)
    ax.set_ylim(min(0.0, *shown) - 0.05, max(1.0, *shown) + 0.05)
    ax.set_xticks(drift.layer[:: _ticks(len(drift.layer))])
    ax.set_xlabel("layer")
    ax.grid(True, axis="y", color="#d0d7de", linewidth=0.5)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncol=3, fontsize=8, frameon=False)
    ax.set_title(title, loc="left", fontsize=11, pad=20)
    return Chart(name, title, _svg(fig, name, title))


# the check whose measurement each chart draws, in report order
CHARTS: tuple[tuple[str, Callable[[Measurement], Chart | None]], ...] = (
    ("weights", weight_change),
    ("activations", refusal_drift),
)


def gate_charts(measurements: Mapping[str, Measurement]) -> list[Chart]:
    """The charts these measurements allow; none where matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return []
    charts = []
    for check, draw in CHARTS:
        m = measurements.get(check)
        if m is None:
            continue
        try:
            with matplotlib.rc_context({**_RC, "svg.hashsalt": f"clgate-{check}"}):
                chart = draw(m)
        except Exception:  # a chart that cannot be drawn must not cost the report (the audit is recorded)
            chart = None
        if chart is not None:
            charts.append(chart)
    return charts
