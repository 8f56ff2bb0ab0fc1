"""Writes a gate run's report: JSON for machines, Markdown for CI logs, HTML for people."""

from __future__ import annotations

from pathlib import Path

import jinja2

from clgate.atomic import write_text_atomic
from clgate.audit.report_charts import gate_charts
from clgate.audit.result import GateResult

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("clgate.audit", "templates"),
    autoescape=jinja2.select_autoescape(["html.j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def write_gate_report(result: GateResult, out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    paths = {
        "json": out_dir / "report.json",
        "markdown": out_dir / "report.md",
        "html": out_dir / "report.html",
    }
    write_text_atomic(paths["json"], result.model_dump_json(indent=2))
    charts = gate_charts(result.measurements)
    folder = out_dir / "charts"
    for chart in charts:
        paths[f"chart:{chart.name}"] = write_text_atomic(folder / f"{chart.name}.svg", chart.svg)
    for stale in folder.glob("*.svg"):  # a chart an earlier report in this folder drew, this one does not
        if stale not in paths.values():
            stale.unlink()
    for kind, template in (("markdown", "gate_report.md.j2"), ("html", "gate_report.html.j2")):
        write_text_atomic(paths[kind], _TEMPLATES.get_template(template).render(r=result, charts=charts))
    return paths
