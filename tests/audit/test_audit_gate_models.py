"""The gate with its real model checks on tiny models: every check takes its models from one pool."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from inspect_ai.log import read_eval_log

from clgate.audit import GateRequest, GateResult, GateRun, Journal, Policy, promote, propose, run_gate
from clgate.audit.policy import parse_policy
from clgate.demo import Bootstrap, bootstrap_ledger, factories
from clgate.errors import InputError
from clgate.ledger import load_private_key
from clgate.probes.activations import layer_drift
from clgate.probes.weights import change_grid

SVG = "{http://www.w3.org/2000/svg}"
POLICY = """
name = "models"
required_checks = ["activations", "evals", "poison.model", "poison.data"]

[checks.evals]
options = { suites = ["retention", "refusal"], limit = 2 }
"""


@pytest.fixture
def setup(tiny_model: Path, tiny_lora: Path, tmp_path: Path) -> tuple[Policy, Bootstrap, GateRequest]:
    policy = parse_policy(POLICY)
    data = factories.make_dataset(tmp_path / "update.jsonl", n=8)
    request = GateRequest(parent=tiny_model, adapter=tiny_lora, data=data, target=data)
    return policy, bootstrap_ledger(tmp_path / "ledger", policies=[policy]), request


def _gate(setup, run: GateRun):
    policy, boot, request = setup
    with Journal.open(boot.ledger, load_private_key(boot.keys["gate"]), boot.trust) as journal:
        proposed = propose(request, journal.as_signer(load_private_key(boot.keys["pipeline"])), run)
        return run_gate(proposed.proposal.update_id, policy, journal, run, request, proposed.manifests)


def test_a_gate_loads_parent_and_candidate_once_for_every_model_check(setup, tmp_path) -> None:
    run = GateRun(out_dir=tmp_path / "out", device="cpu")
    result = _gate(setup, run)
    ran = {c.name: c for c in result.checks}
    assert {"activations", "evals", "poison.model", "poison.data"} <= set(ran)
    assert all(c.error is None for c in ran.values()), [c.error for c in ran.values()]
    assert result.model_loads == 2  # the parent, and the parent with the LoRA merged: nothing loaded twice
    assert_logs_in_report(result, tmp_path / "out")
    shutil.rmtree(tmp_path / "out" / "inspect-logs")  # a cache hit's logs come from the cache's own copies
    # the same artifacts proposed again, reported elsewhere: every check is served from the gate's signed cache
    again = _gate(setup, replace(run, out_dir=tmp_path / "again", cache_dir=run.cache))
    assert all(c.cached for c in again.checks), [(c.name, c.cached) for c in again.checks]
    assert again.model_loads == 0 and again.verdict == result.verdict
    assert_logs_in_report(again, tmp_path / "again")
    assert_charts_in_report(result, tmp_path / "out")
    for chart in (tmp_path / "out" / "charts").iterdir():  # drawn again from the cache: the same bytes
        assert chart.read_bytes() == (tmp_path / "again" / "charts" / chart.name).read_bytes()


def assert_logs_in_report(result: GateResult, out: Path) -> None:
    """Every suite the evals check ran has its inspect-ai log in OUT/inspect-logs, readable by inspect."""
    evals = result.measurements["evals"]
    logs = {Path(e) for e in evals.evidence}
    assert logs and all(p.parent == (out / "inspect-logs").resolve() and p.is_file() for p in logs), logs
    for role in ("parent", "candidate"):
        for suite, ran in evals.meta[role]["suites"].items():
            log = read_eval_log(ran["log"], header_only=True)
            assert Path(ran["log"]) in logs and log.status == "success"
            assert log.eval.task == suite and log.eval.metadata["dataset_digest"] == ran["dataset_digest"]
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(saved["measurements"]["evals"]["evidence"]) == {str(p) for p in logs}


def assert_charts_in_report(result: GateResult, out: Path) -> None:
    """The HTML report draws the weight diff and the activation diff inline, per layer, as the SVG files
    the Markdown links to."""
    titles = {
        "weight-change": "Weight change per layer and module type",
        "refusal-drift": "Refusal-direction drift per layer",
    }
    page = (out / "report.html").read_text(encoding="utf-8")
    svgs = [ET.fromstring(figure.split("</figure>")[0]) for figure in page.split("<figure>")[1:]]
    assert [svg.findtext(f"{SVG}title") for svg in svgs] == list(titles.values())
    assert [svg.get("aria-label") for svg in svgs] == list(titles.values())
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for name, title in titles.items():
        assert f"![{title}](charts/{name}.svg)" in markdown and (out / "charts" / f"{name}.svg").is_file()
    heatmap, drift = svgs
    grid = change_grid(result.measurements["weights"])  # the LoRA's q_proj and v_proj, in both layers
    assert grid.layers == (0, 1) and {"attn_q", "attn_v"} <= set(grid.module_types)
    cells = heatmap.findall(f".//{SVG}g[@id='weight-change-cells']/{SVG}path")
    assert len(cells) == len(grid.layers) * len(grid.module_types)
    assert heatmap.find(f".//{SVG}g[@id='weight-change-top']") is not None  # the top tensor is outlined
    assert grid.top_tensor in "".join(heatmap.itertext())
    layers = layer_drift(result.measurements["activations"]).layer
    for line in ("refusal-cosine", "residual-drift"):
        assert len(drift.findall(f".//{SVG}g[@id='refusal-drift-{line}']//{SVG}use")) == len(layers) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_asking_for_cuda_without_it_is_refused_before_anything_is_written(setup, tmp_path) -> None:
    policy, boot, request = setup
    with Journal.open(boot.ledger, load_private_key(boot.keys["pipeline"]), boot.trust) as journal:
        update = propose(request, journal).proposal.update_id
    with Journal.open(boot.ledger, load_private_key(boot.keys["gate"]), boot.trust) as journal:
        size = len(journal.ledger)
        with pytest.raises(InputError, match="device cuda asked for, but CUDA is not available"):
            run_gate(update, policy, journal, GateRun(out_dir=tmp_path / "o", device="cuda"), request)
        assert len(journal.ledger) == size


def test_every_model_update_is_also_compared_with_the_deployment_anchor(
    tiny_model: Path, tiny_model_other: Path, tmp_path: Path
) -> None:
    policy = parse_policy(POLICY.replace('"poison.model", "poison.data"', '"poison.model"'))
    boot = bootstrap_ledger(tmp_path / "ledger", policies=[policy])
    run = GateRun(out_dir=tmp_path / "out", device="cpu")
    keys = {name: load_private_key(boot.keys[name]) for name in ("gate", "pipeline", "approver")}

    def gate(request: GateRequest) -> GateResult:
        with Journal.open(boot.ledger, keys["gate"], boot.trust) as journal:
            proposed = propose(request, journal.as_signer(keys["pipeline"]), run)
            return run_gate(proposed.proposal.update_id, policy, journal, run, request, proposed.manifests)

    base = gate(GateRequest(parent=tiny_model, candidate=tiny_model))
    assert "anchor" not in {c.name for c in base.checks}  # the first base has nothing to drift from
    with Journal.open(boot.ledger, keys["approver"], boot.trust) as journal:
        promote(journal, base.update_id)
    # a new base with other weights, then an update back to the anchor's own weights: drift from the
    # parent, none from the anchor, measured by the same suites on real replies
    away = gate(GateRequest(parent=tiny_model, candidate=tiny_model_other))
    back = gate(GateRequest(parent=tiny_model_other, candidate=tiny_model))
    for result in (away, back):
        assert {c.name: c.error for c in result.checks}["anchor"] is None
    anchor, evals = back.measurements["anchor"], back.measurements["evals"]
    assert anchor.meta["anchor"] == base.proposal.candidate.digest
    assert anchor.numbers["retention.n"] == evals.numbers["retention.n"] > 0
    assert anchor.numbers["retention.delta"] == 0 and anchor.numbers["refusal.delta"] == 0
    assert any(d["change"] != "same" or d["parent_answer"] != d["candidate_answer"] for d in evals.details)
    # when the parent is the anchor, the anchor check is the evals check again, from the eval cache
    assert away.measurements["anchor"].numbers == away.measurements["evals"].numbers
