"""The memory probes' pages: a diff's entries by status and the most instruction-like, and spread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clgate.probes import plots


def diff_plots(path: Path, rows: list[dict[str, Any]], title: str) -> list[str]:
    import plotly.graph_objects as go

    statuses = ["added", "edited", "removed", "unchanged"]
    counts = go.Figure(go.Bar(x=statuses, y=[sum(r["status"] == s for r in rows) for s in statuses]))
    counts.update_layout(title="entries by status", height=320)
    scored = sorted((r for r in rows if r["status"] != "removed"), key=lambda r: -r["instruction_score"])[:30]
    scores = go.Figure(
        go.Bar(
            x=[r["instruction_score"] for r in scored],
            y=[f"{r['id']} ({r['status']})" for r in scored],
            orientation="h",
            hovertext=[r["text"] for r in scored],
        )
    )
    scores.update_layout(
        title="most instruction-like entries", xaxis_title="score", height=160 + 22 * len(scored)
    )
    return [str(p) for p in plots.write_page(path, title, [counts, scores])]


def spread_plot(path: Path, rows: list[dict[str, Any]], n: int) -> list[str]:
    import plotly.graph_objects as go

    top = rows[:30]
    fig = go.Figure(
        go.Bar(
            x=[r["instances"] for r in top],
            y=[r["content"][:60] for r in top],
            orientation="h",
            hovertext=[f"first in {r['first_instance']} at {r['first_seen']}" for r in top],
        )
    )
    fig.update_layout(
        title=f"content held by several of {n} instances", xaxis_title="instances", height=160 + 22 * len(top)
    )
    return [str(p) for p in plots.write_page(path, "memetic spread", [fig])]
