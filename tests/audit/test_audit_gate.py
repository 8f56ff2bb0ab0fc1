"""The gate's life cycle through the CLI: verdicts, approvals, promotion, rollback, lineage, refusals."""

import json
import sqlite3
from pathlib import Path

import pytest

from clgate.audit.check_inputs import GateCheck, GateInputs
from clgate.audit.cli import main
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.journal import Journal
from clgate.measurement import Measurement

from .conftest import POLICY


def test_review_needs_two_approvals_then_promotes(world, tiny_model: Path, tmp_path: Path, capsys) -> None:
    assert world.gate("--candidate", str(tiny_model)) == 0
    base_id = next(iter(world.state().updates))
    assert world.run("promote", base_id, key="approver") == 0
    assert world.gate("--adapter", str(world.adapter("a1", 2.0))) == 10
    update_id = next(u for u in world.state().updates if u != base_id)
    capsys.readouterr()
    assert world.run("promote", update_id, key="approver") == 2
    assert "needs 2 approvals, has 0" in capsys.readouterr().err
    assert world.run("approve", update_id, key="auditor") == 0
    assert world.run("approve", update_id, key="auditor") == 2
    assert "already approved" in capsys.readouterr().err
    assert world.run("approve", update_id, key="approver2") == 0
    assert world.run("promote", update_id, key="pipeline") == 2  # a pipeline key may not promote
    assert "may not sign promotion.done" in capsys.readouterr().err
    assert world.run("promote", update_id, key="approver") == 0
    state = world.state()
    assert state.deployed() == {"base": base_id, "adapter": update_id}
    report = (tmp_path / "out" / "report.json").read_text()
    assert (
        '"decision": "review"' in report and "Score too high" in (tmp_path / "out" / "report.md").read_text()
    )


def test_block_is_never_promoted_or_approved(world, capsys) -> None:
    assert world.gate("--adapter", str(world.adapter("bad", 9.0)), "--format", "github") == 20
    out = capsys.readouterr().out
    assert "::error title=clgate score::Score too high: score = 9 is above 5" in out
    update = next(iter(world.state().updates.values()))
    assert update.decision == "block"
    assert world.run("approve", update.update_id, key="auditor") == 2
    assert world.run("promote", update.update_id, key="approver") == 2
    assert "blocked by its audit (Score too high" in capsys.readouterr().err
    kinds = [e.type for e in Journal.open(world.boot.ledger, None, world.boot.trust).ledger.entries()]
    assert kinds[-3:] == ["update.proposed", "audit.completed", "promotion.blocked"]


def test_rollback_restores_and_requires_a_new_proposal(world, tiny_model: Path, capsys) -> None:
    assert world.gate("--candidate", str(tiny_model)) == 0
    assert world.run("promote", next(iter(world.state().updates)), key="approver") == 0
    first, second = world.adapter("first", 0.0), world.adapter("second", 0.5)
    for path in (first, second):
        assert world.gate("--adapter", str(path)) == 0
    ids = list(world.state().updates)[1:]
    assert world.run("promote", ids[0], key="approver") == 0
    assert world.run("promote", ids[1], key="approver") == 0
    assert world.run("rollback", "--to", ids[0], "--reason", "regression in prod", key="approver") == 0
    state = world.state()
    assert state.deployed()["adapter"] == ids[0] and state.updates[ids[1]].rolled_back_index is not None
    capsys.readouterr()
    assert world.run("promote", ids[1], key="approver") == 2
    assert "rolled back at entry" in capsys.readouterr().err
    assert world.gate("--adapter", str(second)) == 0  # a new proposal and audit of the same artifact
    new_id = list(world.state().updates)[-1]
    assert world.run("promote", new_id, key="approver") == 0


def test_new_base_marks_adapters_for_reaudit(
    world, tiny_model: Path, tiny_model_other: Path, tmp_path, capsys
):
    assert world.gate("--candidate", str(tiny_model)) == 0
    assert world.gate("--adapter", str(world.adapter("a", 0.0))) == 0
    base_id, adapter_id = list(world.state().updates)
    assert world.run("promote", base_id, key="approver") == 0
    assert world.run("promote", adapter_id, key="approver") == 0
    assert world.gate("--candidate", str(tiny_model_other)) == 0
    new_base = list(world.state().updates)[-1]
    assert world.run("promote", new_base, key="approver") == 0
    assert [u.update_id for u in world.state().pending_reaudit()] == [adapter_id]
    assert main(["status", "--ledger", str(world.boot.ledger), "--trust", str(world.boot.trust)]) == 0
    assert f"needs re-audit: {adapter_id} (adapter)" in capsys.readouterr().out
    # auditing an adapter against the old base is a lineage failure
    assert world.gate("--adapter", str(world.adapter("b", 0.0))) == 20
    assert "is not the promoted base" in (tmp_path / "out" / "report.md").read_text()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["checks"] == [] and report["model_loads"] == 0  # blocked from the ledger alone, at once


def test_tampered_ledger_is_refused_before_any_write(world, tiny_model: Path, capsys) -> None:
    assert world.gate("--candidate", str(tiny_model)) == 0
    con = sqlite3.connect(world.boot.ledger)
    (size,) = con.execute("SELECT count(*) FROM ledger_entries").fetchone()
    con.execute(
        "UPDATE ledger_entries SET envelope = CAST(replace(CAST(envelope AS TEXT), 'a', 'b') AS BLOB) "
        "WHERE idx = ?",
        (size - 1,),
    )
    con.commit()
    con.close()
    capsys.readouterr()
    assert world.gate("--candidate", str(tiny_model)) == 1  # tampering, not bad input
    err = capsys.readouterr().err
    assert "fails verification" in err and "refusing to use it" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--adapter", "missing-dir"), "missing-dir"),
        (("--candidate", "x", "--adapter", "y"), "exactly one of --candidate, --adapter or --memory-new"),
        (("--memory-new", "x.jsonl"), "--memory-new needs --memory-old"),
        (
            ("--candidate", "x", "--deployment", "prod eu"),
            "--deployment 'prod eu': a name of letters, digits",
        ),
        (("--candidate", "x", "--deployment", ""), "--deployment '': a name of letters"),
        (("--candidate", "x", "--device", "tpu"), "unknown device 'tpu'"),
        (("--candidate", "x", "--dtype", "float8"), "unknown dtype 'float8'"),
        (
            ("--candidate", "x", "--device", "cpu", "--dtype", "float16"),
            "dtype float16 is not supported on the CPU",
        ),
    ],
)
def test_bad_gate_input_is_exit_2(world, args, message: str, capsys) -> None:
    before = len(Journal.open(world.boot.ledger, None, world.boot.trust).ledger)
    assert world.gate(*args) == 2
    assert message in capsys.readouterr().err
    assert len(Journal.open(world.boot.ledger, None, world.boot.trust).ledger) == before


@pytest.mark.parametrize(
    ("role", "write", "message"),
    [
        ("--candidate", lambda p: (p.mkdir(), (p / "readme.txt").write_text("hi")), "not a model directory (no config.json)"),
        ("--memory-new", lambda p: p.write_bytes(b"\xff\xfe"), "x:1: not valid JSON"),
        ("--data", lambda p: p.write_bytes(b'{"messages": "caf\xe9"}\n'), "x:1: not valid JSON"),
        ("--target", lambda p: p.write_text(""), "x: dataset is empty"),
    ],
)  # fmt: skip
def test_a_proposal_of_artifacts_no_gate_could_read_records_nothing(
    world, tiny_model: Path, tmp_path: Path, capsys, role: str, write, message: str
) -> None:
    """A folder with no model in it, a store or a dataset that does not parse: recorded as proposed, each
    made every gate of the update break. Refused before the proposal is signed."""
    junk = tmp_path / "x"
    write(junk)
    args = {
        "--candidate": [role, str(junk)],
        "--memory-new": [role, str(junk), "--memory-old", str(junk)],
    }.get(role, ["--candidate", str(tiny_model), role, str(junk)])
    before = len(Journal.open(world.boot.ledger, None, world.boot.trust).ledger)
    capsys.readouterr()
    assert world.run("propose", "--parent", str(tiny_model), *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert len(Journal.open(world.boot.ledger, None, world.boot.trust).ledger) == before


def test_a_proposal_naming_no_update_id_is_refused_before_hashing(world, tiny_model: Path, capsys) -> None:
    before = len(Journal.open(world.boot.ledger, None, world.boot.trust).ledger)
    args = ("propose", "--parent", str(tiny_model), "--candidate", str(tiny_model), "--supersedes", "nothex")
    assert world.run(*args) == 2
    assert "--supersedes 'nothex': not an update id (16 hex digits)" in capsys.readouterr().err
    assert len(Journal.open(world.boot.ledger, None, world.boot.trust).ledger) == before


def test_adapter_for_another_base_is_refused(world, tmp_path: Path, capsys) -> None:
    from clgate.demo import make_tiny_lora, make_tiny_model

    other = make_tiny_model(tmp_path / "wide", hidden_size=96)
    foreign = make_tiny_lora(other, tmp_path / "foreign")
    assert world.gate("--adapter", str(foreign)) == 2
    assert "adapter does not fit base" in capsys.readouterr().err
    assert world.state().updates == {}


def test_a_racing_second_gate_is_refused(world, tiny_model: Path, capsys) -> None:
    path = world.adapter("race", 0.0)
    assert world.run("propose", "--parent", str(tiny_model), "--adapter", str(path)) == 0
    update_id = capsys.readouterr().out.strip()
    with (
        Journal.open(world.boot.ledger, None, world.boot.trust) as journal,
        journal.exclusive(f"gate {update_id}"),
    ):
        assert world.run("gate", update_id, "--policy", str(world.policy), key="gate") == 2
    assert "is held by another process on this ledger" in capsys.readouterr().err
    assert world.state().updates[update_id].audit is None


def test_measurements_are_kept_as_evidence_pinned_by_the_ledger(world, tiny_model: Path) -> None:
    from clgate.audit.evidence import EvidenceStore
    from clgate.errors import IntegrityError

    assert world.gate("--adapter", str(world.adapter("ev", 2.0))) == 10
    update = next(iter(world.state().updates.values()))
    digest = update.measurements["score"]
    store = EvidenceStore(world.boot.ledger.parent / "evidence")
    assert store.get(digest).numbers == {"score": 2.0}
    path = store.folder / f"{digest.removeprefix('sha256:')}.json"
    path.write_text(path.read_text().replace("2.0", "0.0"))
    with pytest.raises(IntegrityError, match="does not match its digest"):
        store.get(digest)


def test_a_policy_naming_an_unknown_check_is_refused_before_anything_is_written(
    world, tmp_path: Path, capsys
) -> None:
    policy = tmp_path / "typo.toml"
    policy.write_text('name = "typo"\nrequired_checks = ["score", "scroe"]\n')
    before = len(Journal.open(world.boot.ledger, None, world.boot.trust).ledger)
    code = world.run(
        "gate", "--parent", str(world.adapter("p", 0.0)), "--adapter", str(world.adapter("a", 0.0)),
        "--policy", str(policy), "--out", str(tmp_path / "o"), "--proposer-key", str(world.boot.keys["pipeline"]),
        key="gate",
    )  # fmt: skip
    assert code == 2
    assert "unknown check 'scroe' (known: score)" in capsys.readouterr().err
    assert world.run("policy", "adopt", str(policy), key="admin") == 2  # nor adopted, to block every gate
    assert "unknown check 'scroe' (known: score)" in capsys.readouterr().err
    assert len(Journal.open(world.boot.ledger, None, world.boot.trust).ledger) == before


SKIPPING = POLICY.replace(
    'required_checks = ["score"]', 'required_checks = ["score"]\nskipped_checks = ["cost"]'
)


@pytest.mark.parametrize("world", [SKIPPING], indirect=True)
def test_a_check_the_policy_skips_does_not_run_and_the_report_says_so(
    world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    def cost(inputs: GateInputs) -> Measurement:
        ran.append("cost")
        return Measurement(name="cost", version="1")

    monkeypatch.setitem(
        GATE_CHECKS, "cost", GateCheck("cost", "1", ("parent",), False, cost, any_of=("adapter",))
    )
    assert world.gate("--adapter", str(world.adapter("a", 0.0))) == 0
    assert ran == []
    findings = json.loads((tmp_path / "out" / "report.json").read_text())["verdict"]["findings"]
    [skipped] = [f for f in findings if f["check"] == "cost"]
    assert skipped["rule"] == "not-applicable" and "'test' skips it (skipped_checks)" in skipped["reason"]


def test_progress_lines_print_role_names_as_written(capsys) -> None:
    """Rich would render "manifest:anchor:" as an anchor emoji; a progress line prints as written."""
    from clgate.audit.gate_cli import progress

    progress("manifest:anchor", "hashing [1/2]")
    assert "manifest:anchor: hashing [1/2]" in capsys.readouterr().err


def test_an_argument_that_is_not_utf8_is_refused_by_every_command(world, capsys) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates and would fail wherever first encoded (a
    record's field, a file name): one line, exit 2, for any command."""
    before = len(Journal.open(world.boot.ledger, None, world.boot.trust).ledger)
    for args in (("erase", "request", "--subject", "dana\udcff"), ("propose", "--deployment", "x\udcfe")):
        capsys.readouterr()
        assert world.run(*args, key="auditor") == 2
        err = capsys.readouterr().err
        assert "is not valid UTF-8 text" in err and len(err.strip().splitlines()) == 1, err
    assert len(Journal.open(world.boot.ledger, None, world.boot.trust).ledger) == before
