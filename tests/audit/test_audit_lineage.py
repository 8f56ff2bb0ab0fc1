"""The lineage model on a real ledger: bases → deployments → slots, a stale adapter after a base upgrade
followed through its re-audit (todo, incomplete, audited, replaced), and `clgate status`'s tree of it."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from clgate.audit import BaseNode, DeploymentNode, Lineage, SlotNode, build_lineage
from clgate.audit.cli import main
from clgate.audit.gate_cli import lineage_tree


def tree_text(lineage: Lineage) -> list[str]:
    console = Console(record=True, width=200)
    console.print(lineage_tree(lineage))
    return console.export_text().splitlines()


def last(world) -> str:
    return list(world.state().updates)[-1]


def test_lineage_follows_a_stale_adapter_through_its_reaudit(
    world, tiny_model: Path, tiny_model_other: Path, capsys
) -> None:
    assert build_lineage(world.state()) == Lineage(())
    ids = {}
    for deployment, name in (("default", "a"), ("tenant-b", "b")):
        assert world.gate("--candidate", str(tiny_model), "--deployment", deployment) == 0
        ids[f"base-{deployment}"] = last(world)
        assert world.run("promote", last(world), key="approver") == 0
        assert world.gate("--adapter", str(world.adapter(name, 0.0)), "--deployment", deployment) == 0
        ids[name] = last(world)
        assert world.run("promote", last(world), key="approver") == 0
    assert world.gate("--candidate", str(tiny_model), "--deployment", "edge") == 0  # proposed, not promoted
    state = world.state()
    v1, a, b = state.current_base(), state.updates[ids["a"]], state.updates[ids["b"]]
    base_a, base_b = state.updates[ids["base-default"]], state.updates[ids["base-tenant-b"]]
    current = build_lineage(state)
    assert current == Lineage(
        (
            BaseNode(
                v1,
                (
                    DeploymentNode(
                        "default",
                        base_a.update_id,
                        base_a.promoted_index,
                        (SlotNode("adapter", a.update_id, a.promoted_index, v1),),
                    ),
                    DeploymentNode(
                        "tenant-b",
                        base_b.update_id,
                        base_b.promoted_index,
                        (SlotNode("adapter", b.update_id, b.promoted_index, v1),),
                    ),
                ),
            ),
            BaseNode(None, (DeploymentNode("edge", None, None, ()),)),
        )
    )
    assert not any(s.stale for base in current.bases for d in base.deployments for s in d.slots)

    assert world.gate("--candidate", str(tiny_model_other)) == 0
    assert world.run("promote", last(world), key="approver") == 0
    state = world.state()
    v2, base_v2 = state.current_base(), state.updates[last(world)]
    assert v2 != v1
    todo = build_lineage(state)
    assert [b.digest for b in todo.bases] == [v2, None, v1]  # deployments in name order, grouped by base
    [default] = todo.bases[0].deployments
    assert (default.name, default.base_update) == ("default", base_v2.update_id)
    assert default.slots == (SlotNode("adapter", a.update_id, a.promoted_index, v1, "todo"),)
    assert default.slots[0].stale
    assert todo.bases[2].deployments == current.bases[0].deployments[1:]  # tenant-b untouched
    assert tree_text(todo) == [
        "lineage (deployed)",
        f"├── base {v2[:19]}…",
        f"│   └── deployment default (base update {base_v2.update_id}, entry {base_v2.promoted_index})",
        f"│       └── adapter {a.update_id} (entry {a.promoted_index})  stale: built on {v1[:19]}…; re-audit todo",
        "├── no base deployed",
        "│   └── deployment edge",
        f"└── base {v1[:19]}…",
        f"    └── deployment tenant-b (base update {base_b.update_id}, entry {base_b.promoted_index})",
        f"        └── adapter {b.update_id} (entry {b.promoted_index})",
    ]
    assert main(["status", "--ledger", str(world.boot.ledger), "--trust", str(world.boot.trust)]) == 0
    out = capsys.readouterr().out
    assert "re-audit todo" in out and "no base deployed" in out and f"needs re-audit: {a.update_id}" in out

    adapter = Path(a.proposal.candidate.uri)
    assert world.run("propose", "--parent", str(tiny_model_other), "--adapter", str(adapter), "--supersedes",
                     a.update_id) == 0  # fmt: skip
    again = last(world)
    [slot] = build_lineage(world.state()).bases[0].deployments[0].slots
    assert (slot.update_id, slot.reaudit, slot.reaudit_update) == (a.update_id, "incomplete", again)
    assert tree_text(build_lineage(world.state()))[3].endswith(f"; re-audit incomplete ({again})")

    out_dir = str(world.policy.parent / "reaudit")
    assert world.run("gate", again, "--policy", str(world.policy), "--out", out_dir, key="gate") == 0
    [slot] = build_lineage(world.state()).bases[0].deployments[0].slots
    assert (slot.reaudit, slot.reaudit_update) == ("audited", again)

    assert world.run("promote", again, key="approver") == 0
    state = world.state()
    [slot] = build_lineage(state).bases[0].deployments[0].slots
    assert slot == SlotNode("adapter", again, state.updates[again].promoted_index, v2)
    assert not slot.stale
