"""The anchor: every update is also compared with the deployment's first promoted base, so a chain of
updates that each pass against their parent is stopped once their drift adds up."""

import itertools
import shutil
from pathlib import Path

import pytest

from clgate.audit.check_inputs import GateCheck, GateInputs
from clgate.audit.cli import main
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.journal import Journal
from clgate.audit.policy import parse_policy
from clgate.demo import bootstrap_ledger
from clgate.measurement import Measurement

POLICY = """
name = "chain"
required_checks = ["step"]

[[rules]]
id = "step"
check = "step"
metric = "drift"
reason = "The update moved too far from its parent"
fail_above = 3

[[rules]]
id = "cumulative"
check = "anchor"
metric = "drift"
reason = "The deployment moved too far from its anchor"
fail_above = 5
"""


def _score(folder: Path) -> float:
    return float((Path(folder) / "score.txt").read_text())


def _step(inputs: GateInputs) -> Measurement:
    """A stand-in for the evals check: how far the candidate's score is from its parent's."""
    return Measurement(
        name="step", version="1", numbers={"drift": _score(inputs.candidate_model) - _score(inputs.parent)}
    )


def _drift_from_anchor(inputs: GateInputs) -> Measurement:
    """A stand-in for the anchor check: the same distance, from the anchor the gate handed over."""
    drift = _score(inputs.candidate_model) - _score(inputs.anchor)
    return Measurement(
        name="anchor", version="1", numbers={"drift": drift}, meta={"anchor": inputs.digest("anchor")}
    )


@pytest.fixture
def chain(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch):
    for name in list(GATE_CHECKS):
        monkeypatch.delitem(GATE_CHECKS, name)
    monkeypatch.setitem(
        GATE_CHECKS, "step", GateCheck("step", "1", ("parent",), False, _step, any_of=("candidate",))
    )
    monkeypatch.setitem(
        GATE_CHECKS,
        "anchor",
        GateCheck("anchor", "1", ("parent", "anchor"), False, _drift_from_anchor, any_of=("candidate",)),
    )
    boot = bootstrap_ledger(tmp_path / "ledger", policies=[parse_policy(POLICY)])
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)

    def model(name: str, score: float) -> Path:
        path = tmp_path / "models" / name
        shutil.copytree(tiny_model, path)
        (path / "score.txt").write_text(str(score))
        return path

    def run(*args: str, key: str) -> int:
        return main(
            [*args, "--ledger", str(boot.ledger), "--key", str(boot.keys[key]), "--trust", str(boot.trust)]
        )

    def gate(parent: Path, candidate: Path, *args: str, policy_file: Path = policy) -> int:
        return run(
            "gate", "--parent", str(parent), "--candidate", str(candidate), "--policy", str(policy_file),
            "--out", str(tmp_path / "out"), "--proposer-key", str(boot.keys["pipeline"]), *args, key="gate",
        )  # fmt: skip

    def promote_last() -> str:
        with Journal.open(boot.ledger, None, boot.trust) as journal:
            update_id = list(journal.state().updates)[-1]
        assert run("promote", update_id, key="approver") == 0
        return update_id

    return model, gate, promote_last, run, tmp_path


def _report(tmp_path: Path) -> str:
    return (tmp_path / "out" / "report.md").read_text()


def test_a_chain_of_passing_updates_is_blocked_once_its_drift_adds_up(chain) -> None:
    model, gate, promote_last, _, tmp_path = chain
    models = [model(f"m{i}", 2.0 * i) for i in range(4)]  # each update moves the score by 2
    assert gate(models[0], models[0]) == 0  # the first base: nothing to drift from yet
    promote_last()
    for parent, candidate in itertools.pairwise(models[:3]):
        assert gate(parent, candidate) == 0  # 2 from the parent, 2 and 4 from the anchor
        promote_last()
    assert gate(models[2], models[3]) == 20  # 2 from its parent, 6 from the anchor
    report = _report(tmp_path)
    assert "The deployment moved too far from its anchor: drift = 6 is above 5" in report


def test_the_anchor_files_are_found_where_proposed_or_given_and_must_be_its_bytes(chain, capsys) -> None:
    model, gate, promote_last, _, tmp_path = chain
    base, first, second = model("base", 0.0), model("first", 2.0), model("second", 4.0)
    assert gate(base, base) == 0
    promote_last()
    assert gate(base, first) == 0
    promote_last()
    moved = base.rename(tmp_path / "moved-base")
    capsys.readouterr()
    assert gate(first, second) == 2  # nothing written: the anchor cannot be compared with
    assert "cannot find the anchor of deployment 'default'" in capsys.readouterr().err
    assert gate(first, second, "--anchor", str(moved)) == 0
    impostor = model("impostor", 4.0)  # drift 0 from it: the anchor must be the promoted base's bytes
    assert gate(first, second, "--anchor", str(impostor)) == 20
    assert f"the anchor at {impostor} is not what update" in _report(tmp_path)


def test_a_policy_pins_another_promoted_base_as_anchor(chain, capsys) -> None:
    model, gate, promote_last, run, tmp_path = chain
    models = [model(f"m{i}", 2.0 * i) for i in range(4)]
    assert gate(models[0], models[0]) == 0
    promote_last()
    assert gate(models[0], models[1]) == 0
    pinned = promote_last()
    repinned = tmp_path / "pinned.toml"
    repinned.write_text(POLICY + f'\n[anchors]\ndefault = "{pinned}"\n')
    assert run("policy", "adopt", str(repinned), key="admin") == 0
    assert gate(models[1], models[2], policy_file=repinned) == 0
    promote_last()
    assert gate(models[2], models[3], policy_file=repinned) == 0  # 4 from the pinned m1, not 6 from m0
    scoped = tmp_path / "scoped.toml"  # pinning default's anchor, adopted for default only
    scoped.write_text(repinned.read_text().replace('name = "chain"', 'name = "scoped"'))
    assert run("policy", "adopt", str(scoped), "--deployment", "default", key="admin") == 0
    capsys.readouterr()
    assert gate(models[2], models[3], "--deployment", "other", policy_file=scoped) == 2  # nothing written
    err = capsys.readouterr().err
    assert "'scoped' was adopted for deployment(s) default only, not 'other'; an admin retires it" in err
    with Journal.open(tmp_path / "ledger" / "ledger.db", None, tmp_path / "ledger" / "trust.toml") as journal:
        assert "other" not in {u.deployment for u in journal.state().updates.values()}
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(POLICY + '\n[anchors]\ndefault = "upd-not-a-base"\n')
    assert run("policy", "adopt", str(wrong), key="admin") == 0
    capsys.readouterr()
    assert gate(models[2], models[3], policy_file=wrong) == 2
    assert (
        "anchors.default = 'upd-not-a-base' is no base deployment 'default' was promoted to"
        in capsys.readouterr().err
    )


def test_a_policy_without_pins_keeps_the_digest_it_had_before_pins_existed() -> None:
    policy = parse_policy(POLICY)
    assert '"anchors"' not in policy.canonical_text
    pinned = parse_policy(POLICY + '\n[anchors]\ndefault = "upd-x"\n')
    assert '"anchors":{"default":"upd-x"}' in pinned.canonical_text and pinned.digest != policy.digest
