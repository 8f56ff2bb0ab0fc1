"""Plotly figures for the measurement shapes clgate knows; anything else is shown as tables.

Each special chart returns None when the measurement lacks the keys it needs, so the update page
can try them all on any measurement.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from clgate.measurement import Measurement

DECISION_COLOURS = {"promote": "#1a7f37", "review": "#9a6700", "block": "#cf222e"}


def drift_timeline(frame: pd.DataFrame, title: str, lines: pd.DataFrame) -> go.Figure:
    """One metric across updates, coloured by decision, with CIs and, per update, the thresholds of the
    policy its audit judged by (`lines`: update_id, label, value)."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=frame["update_id"], y=frame["value"], mode="lines", line={"color": "#8c959f"}, showlegend=False
        )
    )
    for decision, part in frame.groupby("decision"):
        has_ci = part["ci_low"].notna().any()
        fig.add_trace(
            go.Scatter(
                x=part["update_id"],
                y=part["value"],
                mode="markers",
                name=str(decision),
                marker={"color": DECISION_COLOURS.get(str(decision), "#0969da"), "size": 10},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": (part["ci_high"] - part["value"]).tolist(),
                    "arrayminus": (part["value"] - part["ci_low"]).tolist(),
                }
                if has_ci
                else None,
                customdata=part[["entry", "kind"]],
                hovertemplate="update %{x}<br>value %{y:.4g}<br>entry %{customdata[0]} (%{customdata[1]})",
            )
        )
    for label, part in lines.groupby("label", sort=True):
        colour = "#cf222e" if str(label).split(": ")[-1].startswith("fail") else "#bf8700"
        fig.add_trace(
            go.Scatter(
                x=part["update_id"].tolist(),
                y=part["value"].tolist(),
                mode="lines",
                name=str(label),
                line={"dash": "dash", "color": colour, "shape": "hv"},
            )
        )
    fig.update_layout(title=title, xaxis_title="update (ledger order)", height=360, margin={"t": 48, "b": 32})
    return fig


def _layer_rows(m: Measurement, column: str) -> pd.DataFrame | None:
    frame = m.details_frame()
    if frame.empty or not {"layer", column} <= set(frame.columns):
        return None
    return frame


def weight_heatmap(m: Measurement) -> go.Figure | None:
    """Per-layer (and per-module, if given) relative weight change."""
    frame = _layer_rows(m, "relative_change")
    if frame is None:
        return None
    rows = frame["module"] if "module" in frame.columns else pd.Series(["all"] * len(frame))
    grid = frame.assign(module=rows).pivot_table(index="module", columns="layer", values="relative_change")
    fig = go.Figure(
        go.Heatmap(
            z=grid.values, x=grid.columns, y=grid.index, colorscale="Reds", colorbar={"title": "‖ΔW‖/‖W‖"}
        )
    )
    fig.update_layout(title=f"{m.name}: relative weight change per layer", xaxis_title="layer", height=300)
    return fig


def refusal_cosine(m: Measurement) -> go.Figure | None:
    """Cosine of the refusal direction between parent and candidate, per layer."""
    frame = _layer_rows(m, "refusal_cosine")
    if frame is None:
        return None
    fig = go.Figure(go.Scatter(x=frame["layer"], y=frame["refusal_cosine"], mode="lines+markers"))
    fig.update_layout(
        title=f"{m.name}: refusal-direction cosine per layer",
        xaxis_title="layer",
        yaxis_range=[-1, 1.05],
        height=300,
    )
    return fig


SPECIAL_CHARTS = (weight_heatmap, refusal_cosine)
