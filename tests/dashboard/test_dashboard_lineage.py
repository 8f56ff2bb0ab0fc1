"""The overview's drawn lineage tree: DOT built from the lineage model of a real ledger, stale updates
marked after a base upgrade, ledger text escaped, and the chart on the page."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from clgate.audit import build_lineage
from clgate.audit.cli import main
from clgate.dashboard.data import read_view
from clgate.dashboard.lineage_graph import STALE, dot_text, lineage_dot

from .conftest import use_stand_ins
from .test_dashboard_pages import open_app

NODE = re.compile(r'^  (n\d+) \[label="((?:[^"\\]|\\.)*)", tooltip="(?:[^"\\]|\\.)*"(.*)\];$')
EDGE = re.compile(r"^  (n\d+) -> (n\d+);$")


def parse(dot: str) -> tuple[dict[str, tuple[list[str], str]], set[tuple[str, str]]]:
    """Node id -> (label lines, the attributes after the label), and the edges, of DOT as lineage_dot writes it."""
    nodes, edges = {}, set()
    for line in dot.splitlines()[2:-1]:
        if m := NODE.match(line):
            nodes[m[1]] = (unquote(m[2]).split("\n"), m[3])
        else:
            m = EDGE.match(line)
            assert m, f"not a node or an edge: {line!r}"
            edges.add((m[1], m[2]))
    return nodes, edges


def unquote(text: str) -> str:
    r"""The text of a quoted DOT label: `\n` is a line break, `\x` is `x`."""
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], text)


def by_first_line(nodes: dict[str, tuple[list[str], str]]) -> dict[str, str]:
    return {lines[0]: node for node, (lines, _) in nodes.items()}


def upgrade_base(w, tiny_model: Path, tiny_model_other: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Gate (stand-in checks) and promote a new base for the deployment: its adapter goes stale."""
    use_stand_ins(monkeypatch)
    ledger = ["--ledger", str(w.ledger), "--trust", str(w.trust)]
    assert main(["gate", "--parent", str(tiny_model), "--candidate", str(tiny_model_other), "--policy",
                 str(w.policy), "--out", str(w.root / "out"), "--proposer-key", str(w.keys["pipeline"]),
                 "--key", str(w.keys["gate"]), *ledger]) == 0  # fmt: skip
    new_base = list(read_view(str(w.ledger), w.trust).state.updates)[-1]
    assert main(["promote", new_base, "--key", str(w.keys["approver"]), *ledger]) == 0
    return new_base


def test_one_node_per_base_deployment_and_slot_with_edges_down_the_tree(dash_world) -> None:
    state = read_view(str(dash_world.ledger), dash_world.trust).state
    base, a1 = state.updates[dash_world.ids["base"]], state.updates[dash_world.ids["a1"]]
    nodes, edges = parse(lineage_dot(build_lineage(state)))
    named = by_first_line(nodes)
    b_label, a_label = f"base {base.candidate_digest[:19]}…", f"adapter {a1.update_id}"
    assert set(named) == {b_label, "deployment default", a_label}  # a2 was rolled back: not drawn
    b, d, a = named[b_label], named["deployment default"], named[a_label]
    assert edges == {(b, d), (d, a)}
    assert nodes[d][0][1] == f"base update {base.update_id} (entry {base.promoted_index})"
    assert nodes[a][0] == [f"adapter {a1.update_id}", f"entry {a1.promoted_index}"]  # current: no stale line
    assert STALE["fillcolor"] not in nodes[a][1]


def test_a_stale_adapter_after_a_base_upgrade_is_drawn_stale(
    dash_world, tiny_model: Path, tiny_model_other: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_base = upgrade_base(dash_world, tiny_model, tiny_model_other, monkeypatch)
    state = read_view(str(dash_world.ledger), dash_world.trust).state
    a1 = state.updates[dash_world.ids["a1"]]
    nodes, edges = parse(lineage_dot(build_lineage(state)))
    named = by_first_line(nodes)
    b_label, a_label = f"base {state.updates[new_base].candidate_digest[:19]}…", f"adapter {a1.update_id}"
    assert set(named) == {b_label, "deployment default", a_label}
    b, d, adapter = named[b_label], named["deployment default"], named[a_label]
    assert edges == {(b, d), (d, adapter)}
    assert a1.base != state.updates[new_base].candidate_digest
    assert nodes[adapter][0][2:] == ["stale: re-audit todo", f"built on {a1.base[:19]}…"]
    assert f'fillcolor="{STALE["fillcolor"]}"' in nodes[adapter][1]

    at = open_app(monkeypatch, "--ledger", dash_world.ledger, "--trust", dash_world.trust)
    assert not at.exception
    [chart] = at.get("graphviz_chart")
    assert chart.proto.spec == lineage_dot(build_lineage(state))
    deployed = at.dataframe[0].value.set_index("slot")
    assert deployed.loc["adapter", "lineage"] == "stale: re-audit todo"


def test_the_overview_page_draws_the_lineage_chart(dash_world, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_app(monkeypatch, "--ledger", dash_world.ledger, "--trust", dash_world.trust)
    assert not at.exception
    [chart] = at.get("graphviz_chart")
    nodes, edges = parse(chart.proto.spec)
    assert "deployment default" in by_first_line(nodes) and len(edges) == 2
    assert f"adapter {dash_world.ids['a1']}" in by_first_line(nodes)
    assert any("stale" in c.value for c in at.caption)  # the legend says what yellow means


@pytest.mark.parametrize(
    "name", ['evil"];n0->n0;}', 'x" ]; }\n digraph y { "', 'a\\"}', "tail\\", "sub\\N\\G\\n{[<b>]}"]
)
def test_ledger_text_cannot_leave_its_dot_label(dash_world, name: str) -> None:
    """A name with quotes, braces, backslashes or DOT escapes stays one label (the ledger's name pattern
    refuses such names; this is the second line)."""
    lineage = build_lineage(read_view(str(dash_world.ledger), dash_world.trust).state)
    [base] = lineage.bases
    [deployment] = base.deployments
    evil = dataclasses.replace(deployment, name=name)
    forged = dataclasses.replace(lineage, bases=(dataclasses.replace(base, deployments=(evil,)),))
    dot = lineage_dot(forged)
    nodes, edges = parse(dot)  # every line is still one node or one edge
    assert len(nodes) == 3 and len(edges) == 2
    shown = name.replace("\n", " ")  # a control character would end the line: it becomes a space
    assert [lines[0] for lines, _ in nodes.values()] == [
        f"base {base.digest[:19]}…",
        f"deployment {shown}",
        f"adapter {deployment.slots[0].update_id}",
    ]
    assert f'"deployment {dot_text(name)}\\n' in dot
    outside = re.sub(r'"(?:[^"\\]|\\.)*"', '""', dot)  # what is left when every quoted string is taken out
    assert outside.count("{") == 1 and outside.count("}") == 1 and outside.rstrip().endswith("}")
    assert "digraph" not in outside.replace("digraph lineage {", "", 1)


def test_dot_text_escapes_quotes_backslashes_and_controls() -> None:
    assert dot_text('a"b') == 'a\\"b'
    assert dot_text("a\\b") == "a\\\\b"
    assert dot_text("a\\nb") == "a\\\\nb"  # not a line break
    assert dot_text("a\nb\tc\x7f") == "a b c "
    assert dot_text("{}<>[];") == "{}<>[];"  # harmless inside quotes
