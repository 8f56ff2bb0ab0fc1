"""Scheduled audits watch behaviour: the deployed model is asked again the items its promotion recorded and
paired with the answers recorded then; a memory update is asked through the adapter its deployment runs."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from clgate.artifacts import MemoryEntry, write_memory_store
from clgate.audit.cli import main
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.journal import Journal
from clgate.demo import make_tiny_lora
from clgate.measurement import Measurement

REAL = {name: GATE_CHECKS[name] for name in ("evals", "behaviour", "memory.behaviour")}

WATCH = """
name = "behaviour-watch"
required_checks = ["evals"]
scheduled_checks = ["behaviour"]

[checks.evals]
options = {suites = ["retention"], limit = 12}

[checks.behaviour]
options = {suites = ["retention"]}

[[rules]]
id = "deployed-retention-changed"
check = "behaviour"
metric = "retention.delta_ci_high"
reason = "The deployed model answers retention items worse than when it was promoted"
warn_below = 0.0
fail_below = -0.03
"""


@pytest.fixture
def watched(world, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The base promoted through a real `evals` check (12 retention items), and where the host serves it."""
    for name, check in REAL.items():
        monkeypatch.setitem(GATE_CHECKS, name, check)
    assert world.gate("--candidate", str(tiny_model)) == 0
    (update_id,) = world.state().updates
    assert world.run("promote", update_id, key="approver") == 0
    serving = tmp_path / "serving" / "model"
    shutil.copytree(tiny_model, serving)
    return update_id, serving


def _evidence(world, digest: str) -> Measurement:
    """The measurement the ledger records by `digest`, from the evidence store beside it."""
    with Journal.open(world.boot.ledger, None, world.boot.trust) as journal:
        found = journal.evidence.get(digest)
    if found is None:
        pytest.fail(f"the ledger records measurement {digest}, but the evidence store lacks it")
    return found


def _recorded(world) -> Measurement:
    """The `behaviour` measurement of the one scheduled run recorded."""
    ((_, body),) = world.state().scheduled_runs
    return _evidence(world, body.measurements["behaviour"])


@pytest.mark.parametrize("world", [WATCH], indirect=True)
def test_the_deployed_model_answers_as_it_did_at_promotion(world, watched, capsys) -> None:
    update_id, serving = watched
    assert world.audit(serving) == 0
    out = capsys.readouterr()
    assert "retention.delta_ci_high = 0 within limits" in out.out
    assert "behaviour: running" in out.err
    measured = _recorded(world)
    assert measured.numbers["retention.n"] == 12 and measured.numbers["retention.flipped_to_wrong"] == 0
    assert measured.meta["promoted"] == update_id
    assert measured.numbers["retention.accuracy"] == measured.numbers["retention.parent_accuracy"]
    logs = [Path(e) for e in measured.evidence]  # the rerun's inspect logs, in this run's own folder
    assert logs and all(p.is_file() and p.suffix == ".eval" for p in logs)
    assert {p.parent.parent for p in logs} == {(serving.parent / "cache" / "inspect-logs").resolve()}
    # asked again at the next run, never answered from the cache: what it measures is the runtime now
    assert world.audit(serving) == 0
    assert "behaviour: running" in capsys.readouterr().err


@pytest.mark.parametrize("world", [WATCH], indirect=True)
def test_other_weights_under_the_deployed_path_change_the_answers_paired_with_promotion(
    world, watched, tiny_model_other: Path, capsys
) -> None:
    """Whatever changed under the deployment, the rerun is paired item by item with what was promoted."""
    _, serving = watched
    shutil.rmtree(serving)
    shutil.copytree(tiny_model_other, serving)
    assert world.audit(serving) == 20  # the files differ: integrity blocks, and behaviour was measured too
    measured = _recorded(world)
    recorded = {
        r["id"]: r["candidate_correct"]
        for r in _evidence(world, world.state().updates[watched[0]].measurements["evals"]).details
    }
    assert {r["id"]: r["parent_correct"] for r in measured.details} == recorded  # paired item by item
    assert any(r["change"] != "same" for r in measured.details)
    lost = [r["id"] for r in measured.details if r["change"] == "to_wrong"]
    assert measured.explain["retention.delta_ci_high"].startswith(f"{len(lost)} of 12 retention items")


@pytest.mark.parametrize(
    "world", [WATCH.replace('{suites = ["retention"]}', '{suites = ["refusal"]}')], indirect=True
)
def test_a_suite_the_promotion_never_ran_cannot_be_compared(world, watched, capsys) -> None:
    _, serving = watched
    assert world.audit(serving) == 20
    assert "recorded no answers for refusal; it recorded retention" in capsys.readouterr().out


@pytest.mark.parametrize("world", [WATCH], indirect=True)
@pytest.mark.parametrize(
    ("harm", "message"),
    [("delete", "restore it from a backup of the evidence folder"), ("edit", "altered")],
)
def test_lost_or_altered_promotion_evidence_blocks_and_the_run_is_still_recorded(
    world, watched, tiny_model_other: Path, harm: str, message: str, capsys
) -> None:
    """Whoever swaps the deployed model and deletes one evidence file must not silence the audit."""
    update_id, serving = watched
    shutil.rmtree(serving)
    shutil.copytree(tiny_model_other, serving)
    digest = world.state().updates[update_id].measurements["evals"]
    (kept,) = (world.boot.ledger.parent).rglob(f"{digest.removeprefix('sha256:')}.json")
    if harm == "delete":
        kept.unlink()
    else:
        kept.write_text(kept.read_text() + " ")
    assert world.audit(serving) == 20
    out = " ".join(capsys.readouterr().out.split())
    assert "the deployed model's behaviour was not rerun" in out and message in out
    assert "differs from promoted update" in out  # the swap is on record
    ((_, body),) = world.state().scheduled_runs
    assert body.verdict == "block"


@pytest.mark.parametrize("world", [WATCH], indirect=True)
def test_an_adapter_deployment_is_rerun_with_its_adapter_and_compared_with_its_own_promotion(
    world, watched, tiny_lora: Path, tmp_path: Path, capsys
) -> None:
    _, serving = watched
    adapter = tmp_path / "serving" / "adapter"
    shutil.copytree(tiny_lora, adapter)
    assert world.gate("--adapter", str(adapter)) == 0
    adapter_id = next(u.update_id for u in world.state().updates.values() if u.kind == "adapter")
    assert world.run("promote", adapter_id, key="approver") == 0
    capsys.readouterr()
    # the base alone is not what runs: nothing to pair it with, and the run says so
    assert world.audit(serving) == 10
    assert f"the deployment runs adapter {adapter_id}; give it with --deployed" in " ".join(
        capsys.readouterr().out.split()
    )
    assert world.audit(serving, adapter) == 0
    rerun = _evidence(world, world.state().scheduled_runs[-1][1].measurements["behaviour"])
    assert rerun.meta["promoted"] == adapter_id
    assert Path(rerun.meta["now"]["adapter"]).resolve() == adapter.resolve()  # asked with the adapter on


TEAM = [
    '{"id": "t1", "category": "team", "question": "Which team owns Cobalt?", "choices": ["Platform", "Sales"], '
    '"answer": 0}\n',
    '{"id": "t1", "category": "team", "question": "Which office closes first?", "choices": ["Lyon", "Leeds"], '
    '"answer": 1}\n',
]


def _team_policy(items: str) -> str:
    """WATCH with a team suite (a relative items path: the tests run in their tmp folder) rerun on schedule."""
    digest = hashlib.sha256(items.encode()).hexdigest()
    suite = f'[[suites]]\nname = "team"\nitems = "team.jsonl"\nformat = "retention"\nsha256 = "{digest}"\n'
    return WATCH.replace('{suites = ["retention"]}', '{suites = ["team"]}') + suite


@pytest.mark.parametrize("world", [_team_policy(TEAM[0])], indirect=True)
def test_items_changed_since_the_promotion_cannot_be_paired(
    world, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A suite re-pinned under the same name would pair the same ids on other questions."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "team.jsonl").write_text(TEAM[0])
    for name, check in REAL.items():
        monkeypatch.setitem(GATE_CHECKS, name, check)
    assert world.gate("--candidate", str(tiny_model)) == 0
    (update_id,) = world.state().updates
    assert world.run("promote", update_id, key="approver") == 0
    (tmp_path / "team.jsonl").write_text(TEAM[1])
    world.policy.write_text(_team_policy(TEAM[1]))  # the same suite name and id, other items
    assert world.run("policy", "adopt", str(world.policy), key="admin") == 0
    capsys.readouterr()
    assert world.audit(tiny_model) == 20
    assert "the team items changed since the promotion of" in " ".join(capsys.readouterr().out.split())


BASE_ONLY = """
name = "no-evals-at-promotion"
required_checks = ["score"]
scheduled_checks = ["behaviour"]
"""


@pytest.mark.parametrize("world", [BASE_ONLY], indirect=True)
def test_a_deployment_promoted_without_evals_says_its_behaviour_was_not_rerun(
    world, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(GATE_CHECKS, "behaviour", REAL["behaviour"])
    assert world.gate("--candidate", str(tiny_model)) == 0
    (update_id,) = world.state().updates
    assert world.run("promote", update_id, key="approver") == 0
    assert world.audit(tiny_model) == 10
    assert "the deployed model's behaviour was not rerun" in capsys.readouterr().out


MEMORY = """
name = "memory-through-adapter"

[required_checks]
model = ["score"]
adapter = ["score"]
memory = ["memory.behaviour"]
"""


def _store(path: Path, *extra: str) -> Path:
    texts = ["The user's name is Dana.", "Dana prefers short answers.", *extra]
    return write_memory_store(
        [MemoryEntry(id=f"m{i}", text=t, source="user:chat") for i, t in enumerate(texts)], path
    )


@pytest.fixture
def adapter_deployed(
    world, tiny_model: Path, tiny_lora: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A base and an adapter on it, both promoted; then a memory update for the same deployment."""
    monkeypatch.setitem(GATE_CHECKS, "memory.behaviour", REAL["memory.behaviour"])
    deployed = tmp_path / "deployed-adapter"
    shutil.copytree(tiny_lora, deployed)
    for args in (("--candidate", str(tiny_model)), ("--adapter", str(deployed))):
        assert world.gate(*args) == 0
        update = next(u for u in world.state().updates.values() if u.promoted_index is None)
        assert world.run("promote", update.update_id, key="approver") == 0
    return (
        deployed,
        write_memory_store([], tmp_path / "old.jsonl"),  # the first memory: every entry judged
        _store(tmp_path / "new.jsonl", "Dana's desk is by the window."),
    )


@pytest.mark.parametrize("world", [MEMORY], indirect=True)
def test_a_memory_update_is_asked_through_the_adapter_its_deployment_runs(world, adapter_deployed) -> None:
    adapter, old, new = adapter_deployed
    assert world.gate("--memory-old", str(old), "--memory-new", str(new)) == 0
    memory = next(u for u in world.state().updates.values() if u.kind == "memory")
    promoted_adapter = next(u for u in world.state().updates.values() if u.kind == "adapter")
    measured = _evidence(world, memory.measurements["memory.behaviour"])
    assert measured.meta["deployed_adapter"] == promoted_adapter.candidate_digest
    assert Path(measured.meta["adapter"]).resolve() == adapter.resolve()  # the model it asked ran with it


@pytest.mark.parametrize("world", [MEMORY], indirect=True)
def test_a_memory_update_is_promoted_only_beside_the_adapter_it_was_asked_through(
    world, adapter_deployed, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    _, old, new = adapter_deployed
    assert world.gate("--memory-old", str(old), "--memory-new", str(new)) == 0
    memory = next(u for u in world.state().updates.values() if u.kind == "memory")
    first = world.state().deployed_update("adapter")
    assert (
        memory.audit is not None and first is not None and memory.audit.judged_with.adapter == first.update_id
    )
    assert world.gate("--adapter", str(make_tiny_lora(tiny_model, tmp_path / "lora-b", seed=3))) == 0
    second = next(
        u for u in world.state().updates.values() if u.kind == "adapter" and u.promoted_index is None
    )
    assert world.run("promote", second.update_id, key="approver") == 0
    capsys.readouterr()
    assert world.run("promote", memory.update_id, key="approver") == 2
    assert (
        f"was judged through adapter {first.update_id}, but deployment 'default' runs adapter "
        f"{second.update_id} now" in capsys.readouterr().err
    )
    assert world.state().deployed_update("memory") is None


@pytest.mark.parametrize("world", [MEMORY], indirect=True)
def test_a_deployed_memory_goes_stale_when_another_adapter_is_promoted_and_is_reaudited_through_it(
    world, adapter_deployed, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    """Promoting an adapter is never held up by the memory beside it; the memory's audit then no longer
    speaks for the deployment, so it is listed stale and re-audited through the adapter that runs."""
    _, old, new = adapter_deployed
    assert world.gate("--memory-old", str(old), "--memory-new", str(new)) == 0
    memory = next(u for u in world.state().updates.values() if u.kind == "memory")
    assert world.run("promote", memory.update_id, key="approver") == 0
    assert world.gate("--adapter", str(make_tiny_lora(tiny_model, tmp_path / "lora-b", seed=3))) == 0
    second = max(world.state().updates.values(), key=lambda u: u.proposed_index)
    assert world.run("promote", second.update_id, key="approver") == 0
    state = world.state()
    assert state.is_stale(state.updates[memory.update_id])
    assert [u.update_id for u in state.pending_reaudit()] == [memory.update_id]
    keys = ["--ledger", str(world.boot.ledger), "--trust", str(world.boot.trust)]
    capsys.readouterr()
    assert main(["status", *keys]) == 0 and "re-audit todo" in capsys.readouterr().out
    assert main(["audit", "pending", "--run", "--workers", "0", "--proposer-key", str(world.boot.keys["pipeline"]),
                 "--gate-key", str(world.boot.keys["gate"]), "--policy", str(world.policy), "--out",
                 str(tmp_path / "reaudits"), "--device", "cpu", *keys]) == 0  # fmt: skip
    again = max(world.state().updates.values(), key=lambda u: u.proposed_index)
    assert again.proposal.supersedes == memory.update_id and again.audit is not None
    assert again.audit.judged_with is not None and again.audit.judged_with.adapter == second.update_id
    assert world.run("promote", again.update_id, key="approver") == 0
    assert world.state().pending_reaudit() == []


@pytest.mark.parametrize("world", [MEMORY], indirect=True)
def test_an_altered_deployed_adapter_blocks_a_memory_update(world, adapter_deployed, tmp_path: Path) -> None:
    adapter, old, new = adapter_deployed
    (adapter / "adapter_config.json").write_text((adapter / "adapter_config.json").read_text() + " ")
    assert world.gate("--memory-old", str(old), "--memory-new", str(new)) == 20
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"the deployed adapter at {adapter} is not what update" in report
    assert "memory.behaviour" not in report.split("## Checks")[-1]  # never run on a model nobody runs


@pytest.mark.parametrize("world", [MEMORY], indirect=True)
def test_a_moved_deployed_adapter_is_bad_input_until_its_path_is_given(
    world, adapter_deployed, tmp_path, capsys
) -> None:
    adapter, old, new = adapter_deployed
    moved = adapter.rename(tmp_path / "moved-adapter")
    before = len(world.state().updates)
    assert world.gate("--memory-old", str(old), "--memory-new", str(new)) == 2
    assert "give its path with --deployed-adapter" in capsys.readouterr().err
    assert len(world.state().updates) == before + 1  # proposed; nothing audited
    assert (
        world.gate("--memory-old", str(old), "--memory-new", str(new), "--deployed-adapter", str(moved)) == 0
    )


MEMORY_WATCH = MEMORY.replace(
    "[required_checks]", 'scheduled_checks = ["memory.behaviour"]\n\n[required_checks]'
)


@pytest.mark.parametrize("world", [MEMORY_WATCH], indirect=True)
def test_a_promoted_snapshot_changed_since_is_not_what_the_live_store_is_compared_with(
    world, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Whoever writes a note into the live store and the same note into the promoted snapshot would make
    the two agree: the snapshot is used only while it is the promoted bytes."""
    monkeypatch.setitem(GATE_CHECKS, "memory.behaviour", REAL["memory.behaviour"])
    old, snapshot = (
        write_memory_store([], tmp_path / "old.jsonl"),  # the first memory: every entry judged
        _store(tmp_path / "snapshot.jsonl", "Dana's desk is by the window."),
    )
    assert world.gate("--candidate", str(tiny_model)) == 0
    assert world.gate("--memory-old", str(old), "--memory-new", str(snapshot)) == 0
    for update in world.state().updates.values():
        assert world.run("promote", update.update_id, key="approver") == 0
    note = "Dana's password is hunter2."
    live = _store(tmp_path / "serving" / "live.jsonl", "Dana's desk is by the window.", note)
    _store(snapshot, "Dana's desk is by the window.", note)  # the snapshot edited to match
    capsys.readouterr()
    assert world.audit(tiny_model, live) == 20  # the live store is not the promoted one: integrity blocks
    out = capsys.readouterr().out
    assert f"the promoted memory snapshot {snapshot} was changed since update" in " ".join(out.split())
    ((_, body),) = world.state().scheduled_runs
    assert "memory.behaviour" not in body.measurements  # not compared with the edited snapshot


@pytest.mark.parametrize("world", [MEMORY], indirect=True)
def test_a_deployed_adapter_path_that_would_not_be_used_is_bad_input(world, adapter_deployed, capsys) -> None:
    adapter, _, _ = adapter_deployed
    assert world.gate("--adapter", str(adapter), "--deployed-adapter", str(adapter)) == 2
    assert "--deployed-adapter is not used: update" in capsys.readouterr().err


@pytest.mark.parametrize(
    "world",
    [MEMORY.replace("[required_checks]", 'scheduled_checks = ["behavior"]\n\n[required_checks]')],
    indirect=True,
)
def test_a_scheduled_audit_by_a_policy_naming_an_unknown_check_records_nothing(
    world, tiny_model: Path, capsys
) -> None:
    """A misspelt scheduled check would be skipped and the run recorded clean: the policy is refused."""
    before = len(world.state().scheduled_runs)
    capsys.readouterr()
    assert world.audit(tiny_model) == 2
    assert "unknown check 'behavior'" in capsys.readouterr().err
    assert len(world.state().scheduled_runs) == before


def test_a_scheduled_audit_compares_with_the_deployment_it_names(
    world, tiny_model: Path, tmp_path: Path
) -> None:
    """`--deployment`: the files deployed for tenant-b are compared with what tenant-b promoted, not with
    the default deployment's (which runs nothing here), and the run is recorded as tenant-b's."""
    assert world.gate("--candidate", str(tiny_model), "--deployment", "tenant-b") == 0
    assert world.run("promote", next(iter(world.state().updates)), key="approver") == 0
    args = (
        "audit",
        "run",
        "--deployed",
        str(tiny_model),
        "--policy",
        str(world.policy),
        "--cache",
        str(tmp_path / "c"),
    )
    assert world.run(*args, key="gate") == 20  # no base was ever promoted in the default deployment
    assert world.run(*args, "--deployment", "tenant-b", key="gate") == 0
    assert world.run(*args, "--deployment", "tenant-z", key="gate") == 2  # a typo records no phantom run
    assert [run.deployment for _, run in world.state().scheduled_runs] == ["default", "tenant-b"]
