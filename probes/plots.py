"""Per-layer figures of a probe's measurement, as one self-contained offline HTML page.

The page loads `plotly.min.js` from its own folder (written once beside it), so it opens with no
network and several pages in one folder share a single copy of the library.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clgate.atomic import write_text_atomic

PLOTLY_JS = "plotly.min.js"


def layer_heatmap(
    z: Sequence[Sequence[float]], x: Sequence[Any], y: Sequence[str], title: str, colorbar: str
) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Heatmap(
            z=z, x=[str(v) for v in x], y=list(y), zmin=0, colorscale="Reds", colorbar={"title": colorbar}
        )
    )
    fig.update_layout(title=title, xaxis_title="layer", height=120 + 28 * len(y))
    return fig


def layer_bars(x: Sequence[Any], values: Sequence[float], title: str, axis: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=[str(v) for v in x], y=list(values)))
    fig.update_layout(title=title, xaxis_title="layer", yaxis_title=axis, height=360)
    return fig


def layer_lines(x: Sequence[Any], series: dict[str, Sequence[float]], title: str, axis: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(
        [go.Scatter(x=list(x), y=list(v), mode="lines+markers", name=k) for k, v in series.items()]
    )
    fig.update_layout(title=title, xaxis_title="layer", yaxis_title=axis, height=360)
    fig.update_xaxes(tickmode="linear", dtick=1 if len(x) <= 40 else 4)
    return fig


def write_page(path: Path, title: str, figures: Sequence[Any]) -> list[Path]:
    """Write the figures as one HTML page (atomically) plus the shared plotly bundle; return both paths."""
    from plotly.offline import get_plotlyjs

    path = Path(path)
    bundle = path.parent / PLOTLY_JS
    if not bundle.is_file():
        write_text_atomic(bundle, get_plotlyjs())
    divs = "\n".join(fig.to_html(full_html=False, include_plotlyjs=False) for fig in figures)
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<script src="{PLOTLY_JS}"></script></head>\n<body><h1>{html.escape(title)}</h1>\n{divs}\n</body></html>\n'
    )
    write_text_atomic(path, page)
    return [path, bundle]
