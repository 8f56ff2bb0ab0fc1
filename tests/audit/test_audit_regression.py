"""A regression set that grows: promoted updates' target sets are rerun by every later gate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from clgate.audit import GateRequest, GateResult, GateRun, Journal, promote, propose, run_gate
from clgate.audit.check_inputs import GateInputs
from clgate.audit.cli import main
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.judge import CheckOutcome, judge
from clgate.audit.policy import load_policy, parse_policy
from clgate.audit.regression import RegressionSet, RegressionTask, accuracy_history
from clgate.demo import bootstrap_ledger, factories
from clgate.errors import InputError, IntegrityError
from clgate.ledger import load_private_key
from clgate.runtime import ModelPool

POLICY = """
name = "regression"
required_checks = ["evals"]

[checks.evals]
options = { suites = ["retention"], limit = 2 }
"""


@pytest.fixture
def deployment(tmp_path: Path, tiny_model: Path):
    policy = parse_policy(POLICY)
    boot = bootstrap_ledger(tmp_path / "ledger", policies=[policy])
    keys = {name: load_private_key(boot.keys[name]) for name in ("gate", "pipeline", "approver")}
    run = GateRun(out_dir=tmp_path / "out", device="cpu")

    def gate(request: GateRequest, promoted: bool = True) -> GateResult:
        with Journal.open(boot.ledger, keys["gate"], boot.trust) as journal:
            proposed = propose(request, journal.as_signer(keys["pipeline"]), run)
            result = run_gate(proposed.proposal.update_id, policy, journal, run, request, proposed.manifests)
        if promoted:
            with Journal.open(boot.ledger, keys["approver"], boot.trust) as journal:
                promote(journal, result.update_id)
        return result

    gate(GateRequest(parent=tiny_model, candidate=tiny_model))  # the base
    return boot, gate


def test_promoted_target_sets_are_rerun_by_every_later_gate(
    deployment, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    boot, gate = deployment
    lora_b = factories.make_tiny_lora(tiny_model, tmp_path / "lora-b", seed=1)
    sets = [factories.make_dataset(tmp_path / f"task-{name}.jsonl", n=4) for name in "ab"]
    first = gate(GateRequest(parent=tiny_model, candidate=tiny_model, target=sets[0]))
    assert "regression" not in first.measurements  # nothing promoted with a target set before it
    sets[0].unlink()  # gone from where it was proposed: the copy kept with the evidence is used
    second = gate(GateRequest(parent=tiny_model, adapter=lora_b, target=sets[1]))
    regression = second.measurements["regression"]
    task = first.update_id
    assert regression.meta["tasks"] == [task] and regression.numbers["tasks"] == 1
    assert {row["task"] for row in regression.details} == {task} and len(
        regression.details
    ) == 2  # evals limit
    learned = first.measurements["evals"].numbers["target.accuracy"]
    now, parent_now = regression.numbers[f"{task}.accuracy"], regression.numbers[f"{task}.parent_accuracy"]
    assert regression.numbers[f"{task}.forgetting"] == pytest.approx(max(learned, parent_now) - now)
    assert regression.meta["matrix"][0][0] == learned and regression.meta["matrix"][1][0] == now
    capsys.readouterr()
    args = ["--ledger", str(boot.ledger), "--trust", str(boot.trust), "--json", str(tmp_path / "h.json")]
    assert main(["eval", "history", *args]) == 0
    assert "accuracy matrix of deployment 'default'" in capsys.readouterr().out
    matrix = json.loads((tmp_path / "h.json").read_text())
    assert matrix["tasks"] == [task, second.update_id]
    assert matrix["matrix"] == [
        [learned, None],
        [now, second.measurements["evals"].numbers["target.accuracy"]],
    ]


def test_a_kept_target_set_that_was_altered_is_refused_before_anything_is_written(
    deployment, tiny_model: Path, tmp_path: Path
) -> None:
    boot, gate = deployment
    target = factories.make_dataset(tmp_path / "task.jsonl", n=4)
    gate(GateRequest(parent=tiny_model, candidate=tiny_model, target=target))
    target.unlink()
    kept = next((boot.ledger.parent / "evidence" / "files").iterdir())
    kept.write_text(kept.read_text().replace("a", "b"))
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        size = len(journal.ledger)
    with pytest.raises(IntegrityError, match="kept file does not match its digest"):
        gate(GateRequest(parent=tiny_model, candidate=tiny_model), promoted=False)
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        assert len(journal.ledger) == size + 1  # the proposal only: no audit of an unrerunnable set


def test_a_kept_set_is_scored_from_a_private_copy_of_the_bytes_checked(tmp_path: Path) -> None:
    """The evidence folder's writer swapped a kept target set for easier items after its digest was checked
    and before the rerun scored it, minutes later: the run scores its own copy of the bytes it checked."""
    from clgate.audit.evidence import EvidenceStore

    store = EvidenceStore(tmp_path / "evidence")
    target = factories.make_dataset(tmp_path / "task.jsonl", n=4)
    sha256 = store.put_file(target)
    copy = store.copy_of(sha256, tmp_path / "run", ".jsonl")
    kept = store.file(sha256)
    assert copy is not None and kept is not None and copy != kept
    kept.write_text('{"id": "easy", "prompt": "1+1?", "reference": "2"}\n')  # swapped after the check
    assert copy.read_bytes() == target.read_bytes()
    with pytest.raises(IntegrityError, match="kept file does not match its digest"):
        store.copy_of(sha256, tmp_path / "run", ".jsonl")


def test_the_accuracy_a_task_reached_is_signed_in_its_audit_so_deleted_evidence_cannot_lower_it(
    deployment, tiny_model: Path, tmp_path: Path
) -> None:
    """Deleting the evidence of the accuracy a task reached (or listing it in an erasure) would leave the next
    gate measuring forgetting against the parent alone. The audit entry itself records the row, signed by
    the gate: the next gate's history still holds it with the evidence gone."""
    boot, gate = deployment
    target = factories.make_dataset(tmp_path / "t.jsonl", n=4)
    first = gate(GateRequest(parent=tiny_model, candidate=tiny_model, target=target))
    learned = first.measurements["evals"].numbers["target.accuracy"]
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        assert journal.state().updates[first.update_id].audit.accuracy == {first.update_id: learned}
    digest = first.measurements["evals"].digest
    (boot.ledger.parent / "evidence" / f"{digest.removeprefix('sha256:')}.json").unlink()
    lora = factories.make_tiny_lora(tiny_model, tmp_path / "b", seed=1)
    second = gate(GateRequest(parent=tiny_model, adapter=lora), promoted=False)
    assert second.measurements["regression"].meta["matrix"][0][0] == learned


def test_an_audit_recorded_before_audits_carried_accuracies_is_read_from_its_evidence(
    deployment, tiny_model: Path, tmp_path: Path
) -> None:
    """Such an audit's row comes from its evidence: a deleted measurement is refused, not read as never
    measured (as NaN it would leave the next gate measuring forgetting against the parent alone)."""
    boot, gate = deployment
    target = factories.make_dataset(tmp_path / "t.jsonl", n=4)
    first = gate(GateRequest(parent=tiny_model, candidate=tiny_model, target=target))
    learned = first.measurements["evals"].numbers["target.accuracy"]
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        state = journal.state()
        owner = state.updates[first.update_id]
        owner.audit = owner.audit.model_copy(update={"accuracy": {}})  # as recorded by an earlier clgate
        assert accuracy_history(state, journal.evidence, [owner]) == [[learned]]
        digest = first.measurements["evals"].digest
        (boot.ledger.parent / "evidence" / f"{digest.removeprefix('sha256:')}.json").unlink()
        missing = (
            f"the evals measurement {digest[:19]}… that update {first.update_id}'s audit recorded is missing"
        )
        with pytest.raises(InputError, match=missing):
            accuracy_history(state, journal.evidence, [owner])


def test_forgetting_is_measured_from_the_best_the_deployment_reached(
    tiny_model: Path, tmp_path: Path
) -> None:
    """The check itself on real replies: a task its audits recorded at accuracy 1.0 that the tiny
    model now misses is forgotten by 1.0, and the default policy blocks it naming the task."""
    target = factories.make_dataset(tmp_path / "t.jsonl", n=4)
    sets = RegressionSet((RegressionTask("upd-earlier", target, "0" * 64),), ((1.0,),))
    with ModelPool(tmp_path / "cache") as pool:
        inputs = GateInputs(
            parent=tiny_model,
            candidate=tiny_model,
            regression=sets,
            cache_dir=tmp_path / "cache",
            models=pool,
        )
        measured = GATE_CHECKS["regression"].run(inputs.only(["parent", "candidate", "regression"]))
    assert measured.numbers["upd-earlier.accuracy"] == 0.0  # a random tiny model reproduces no reference
    assert measured.numbers["upd-earlier.forgetting"] == 1.0 == measured.numbers["max_forgetting"]
    assert measured.numbers["continual.backward_transfer"] == -1.0 and math.isnan(
        measured.meta["matrix"][1][1]
    )
    verdict = judge(load_policy(None), {"regression": CheckOutcome("regression", measured)}, "model")
    [finding] = [f for f in verdict.findings if f.rule == "regression-forgetting"]
    assert (
        finding.status.value == "fail"
        and "promoted update upd-earlier, accuracy 0.00 now, 1.00 at best" in finding.reason
    )


def test_a_new_audits_numbers_change_the_regression_checks_key_but_not_memory_behaviours(
    tmp_path: Path,
) -> None:
    """`memory.behaviour` asks the earlier tasks' prompts and reads no accuracy history: an audit that adds a
    row to the matrix must not make it measure the same memory update again; `regression` must."""
    from clgate.artifacts import compute_manifest
    from clgate.audit.runner import cache_material

    task = RegressionTask("upd-earlier", factories.make_dataset(tmp_path / "t.jsonl", n=4), "0" * 64)
    memory = tmp_path / "m.jsonl"
    memory.write_text("")

    def material(check: str, history: tuple[tuple[float, ...], ...]) -> dict:
        sets = RegressionSet((task,), history)
        roles = {
            "parent": tmp_path / "t.jsonl",
            "candidate": memory,
            "memory_old": memory,
            "memory_new": memory,
        }
        inputs = GateInputs(  # its tasks taken from it, as a caller that sets only `regression` gets
            **roles, regression=sets, manifests={r: compute_manifest(p) for r, p in roles.items()},
        )  # fmt: skip
        return cache_material(GATE_CHECKS[check], inputs)

    earlier, later = ((1.0,),), ((1.0,), (0.5,))
    assert material("memory.behaviour", earlier) == material("memory.behaviour", later)
    assert material("regression", earlier) != material("regression", later)
    assert material("memory.behaviour", earlier)["regression_tasks"].startswith("sha256:")
