"""Static charts in a gate report: drawn from the measurements, byte-stable, absent when they cannot be.

The charts of a real model gate are checked in test_audit_gate_models.py, on that test's gate run.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from clgate.artifacts import MemoryEntry, write_memory_store
from clgate.audit.gate_report import write_gate_report
from clgate.audit.report_charts import gate_charts
from clgate.audit.result import GateResult
from clgate.probes.weights import change_grid, weight_diff

SVG = "{http://www.w3.org/2000/svg}"


def heatmap_cells(svg: str) -> int:
    return len(ET.fromstring(svg).findall(f".//{SVG}g[@id='weight-change-cells']/{SVG}path"))


@pytest.fixture
def memory_only(world, tmp_path: Path) -> GateResult:
    """The report of a memory update: no weights, no activations to draw."""
    old = write_memory_store([MemoryEntry(id="m0", text="The user likes tea.")], tmp_path / "v1.jsonl")
    new = write_memory_store(
        [
            MemoryEntry(id="m0", text="The user likes tea."),
            MemoryEntry(id="m1", text="Meetings are on Tuesdays."),
        ],
        tmp_path / "v2.jsonl",
    )
    code = world.gate("--memory-old", str(old), "--memory-new", str(new))
    assert code in (0, 10, 20)  # a verdict, no error
    return GateResult.model_validate_json((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))


def test_a_memory_update_has_no_chart_and_an_earlier_chart_is_not_left_behind(
    memory_only: GateResult, tiny_model: Path, tiny_model_other: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert "weights" not in memory_only.measurements and not (out / "charts").exists()
    assert "<svg" not in (out / "report.html").read_text(encoding="utf-8")
    assert "charts/" not in (out / "report.md").read_text(encoding="utf-8")

    weights = weight_diff(tiny_model, tiny_model_other)  # every tensor of every layer changed
    dense = memory_only.model_copy(update={"measurements": {"weights": weights}})
    write_gate_report(dense, out)
    svg = (out / "charts" / "weight-change.svg").read_text(encoding="utf-8")
    grid = change_grid(weights)
    assert len(grid.module_types) >= 7 and heatmap_cells(svg) == len(grid.layers) * len(grid.module_types)
    assert svg in (out / "report.html").read_text(encoding="utf-8")
    assert gate_charts(dense.measurements)[0].svg == svg  # drawn again: the same bytes

    write_gate_report(memory_only, out)  # the same folder, a report with nothing to draw
    assert list((out / "charts").iterdir()) == []


def test_without_matplotlib_there_is_no_chart_and_no_error(
    tiny_model: Path, tiny_model_other: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = weight_diff(tiny_model, tiny_model_other)
    assert gate_charts({"weights": weights})
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as in the core install: import fails
    assert gate_charts({"weights": weights}) == []


def test_a_tensor_name_with_mathtext_is_drawn_as_text(tiny_model: Path, tiny_model_other: Path) -> None:
    """Tensor names come from the update's author: `$…$` must neither break the chart nor the report."""
    weights = weight_diff(tiny_model, tiny_model_other)
    top = max(weights.details, key=lambda r: r["relative_change"] or 0.0)
    evil = "model.layers.0.$\\evil{$.weight"
    details = [{**r, "tensor": evil} if r is top else r for r in weights.details]
    charts = gate_charts({"weights": weights.model_copy(update={"details": details})})
    assert len(charts) == 1
    assert any(evil in text for text in ET.fromstring(charts[0].svg).itertext())
