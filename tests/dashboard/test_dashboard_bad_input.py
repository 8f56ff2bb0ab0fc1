"""No ledger, an empty one, a tampered one, a broken users file: messages, never tracebacks."""

import socket
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from clgate.audit.cli import main
from clgate.dashboard.cli import dashboard_app_path
from clgate.ledger.store import Store

from .conftest import flip_decision


def run_app(monkeypatch: pytest.MonkeyPatch, *args: str | Path, page: str | None = None) -> AppTest:
    monkeypatch.setattr(sys, "argv", ["app.py", *map(str, args)])
    at = AppTest.from_file(str(dashboard_app_path()), default_timeout=60)
    if page:
        at.query_params["page"] = page
    return at.run()


def test_no_ledger(tmp_path: Path, monkeypatch, trust_file: Path) -> None:
    at = run_app(monkeypatch, "--ledger", tmp_path / "missing.db", "--trust", trust_file)
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"no ledger at {tmp_path / 'missing.db'} (create one with `clgate ledger init`)"
    ]


def test_a_file_that_is_not_a_ledger(tmp_path: Path, monkeypatch, trust_file: Path) -> None:
    (tmp_path / "empty.db").write_bytes(b"")
    at = run_app(monkeypatch, "--ledger", tmp_path / "empty.db", "--trust", trust_file)
    assert not at.exception
    assert "holds no clgate ledger" in at.error[0].value


def test_empty_ledger_on_every_page(tmp_path: Path, monkeypatch, trust_file: Path) -> None:
    Store.open(tmp_path / "ledger.db", create=True).close()
    at = run_app(monkeypatch, "--ledger", tmp_path / "ledger.db", "--trust", trust_file)
    headers = {
        "Overview": "Overview",
        "Drift": "Drift across updates",
        "Update detail": "Update detail",
        "Ledger": "Ledger",
        "Approvals": "Approvals",
        "Reports": "Compliance report",
    }
    assert at.sidebar.radio(key="page").options == list(headers)
    for page, header in headers.items():
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception and not at.error, page
        assert at.header[0].value == header
        assert at.warning[0].value.startswith("The ledger is empty"), page


def test_missing_arguments_are_a_message(monkeypatch, tmp_path: Path) -> None:
    at = run_app(monkeypatch)
    assert not at.exception
    assert at.error[0].value == "dashboard arguments: the following arguments are required: --ledger"
    at = run_app(monkeypatch, "--ledger", tmp_path / "x.db")
    assert (
        at.error[0].value
        == "the dashboard needs --trust: without it a forged ledger would be shown as verified"
    )


def test_a_database_password_never_reaches_the_page(monkeypatch, trust_file: Path) -> None:
    at = run_app(monkeypatch, "--ledger", "postgresql://clgate:hunter2@127.0.0.1:9/x", "--trust", trust_file)
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "cannot reach database" in shown and "hunter2" not in shown


def test_tampered_ledger_shows_a_red_banner_and_disables_approvals(dash_world, monkeypatch) -> None:
    index = flip_decision(dash_world.ledger, dash_world.ids["block"])
    args = ("--ledger", dash_world.ledger, "--trust", dash_world.trust, "--users", dash_world.users)
    at = run_app(monkeypatch, *args, page="Approvals")
    at.text_input(key="login_user").input("alice")
    at.text_input(key="login_password").input("alice-pw")
    next(b for b in at.button if b.label == "Log in").click()
    at.run()
    assert not at.exception
    assert "The ledger FAILS verification" in at.error[0].value and f"entry {index}" in at.error[0].value
    assert at.button(key="approve").disabled and at.button(key="promote").disabled
    assert (
        at.button(key="approve").proto.help == "the ledger fails verification; no action can be signed on it"
    )
    at = run_app(monkeypatch, *args[:4], page="Ledger")
    assert any(f"entry {index}" in m.value for m in at.markdown)  # the problems are listed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[users.bob]\nname = 'Bob'\npassword = 'x'\nrole = 'boss'\n", "users.bob.role: Input should be"),
        ("[users.bob]\nname = 'Bob'\npassword = 'x'\nrole = 'approver'\n", "role approver needs a key"),
        ("not toml [", "not valid TOML"),
        ("", "no [users.NAME] tables"),
    ],
)
def test_broken_users_file(dash_world, tmp_path: Path, monkeypatch, content: str, message: str) -> None:
    (tmp_path / "bad-users.toml").write_text(content)
    at = run_app(
        monkeypatch,
        "--ledger",
        dash_world.ledger,
        "--trust",
        dash_world.trust,
        "--users",
        tmp_path / "bad-users.toml",
    )
    assert not at.exception
    assert message in at.error[0].value


def test_dashboard_cli_refuses_a_missing_ledger_or_users_file(dash_world, tmp_path: Path, capsys) -> None:
    trust = ("--trust", str(dash_world.trust))
    assert main(["dashboard", "--ledger", str(tmp_path / "none.db"), *trust]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {tmp_path / 'none.db'}: no such ledger (create one with `clgate ledger init` or `clgate demo`)"
    )
    assert (
        main(["dashboard", "--ledger", str(dash_world.ledger), "--users", str(tmp_path / "u.toml"), *trust])
        == 2
    )
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'u.toml'}: no such users file"


def test_altered_evidence_is_shown_as_such(dash_world, monkeypatch) -> None:
    evidence = sorted((dash_world.ledger.parent / "evidence").glob("*.json"))
    for path in evidence:
        path.write_text(path.read_text().replace('"version": "1"', '"version": "2"'))
    at = run_app(
        monkeypatch, "--ledger", dash_world.ledger, "--trust", dash_world.trust, page="Update detail"
    )
    assert not at.exception
    assert any(
        "evidence does not match its digest (altered after it was recorded)" in e.value for e in at.error
    )


def test_a_users_key_must_be_locked_by_its_owners_passphrase(dash_world, tmp_path: Path, monkeypatch) -> None:
    users = tmp_path / "users.toml"
    users.write_text(
        f"[users.bob]\nname = 'Bob'\npassword = 'x'\nrole = 'approver'\nkey = '{dash_world.keys['approver']}'\n"
    )
    at = run_app(monkeypatch, "--ledger", dash_world.ledger, "--trust", dash_world.trust, "--users", users)
    assert "is not encrypted; it must be protected by its owner's passphrase" in at.error[0].value


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (["--port", "99999"], None, "Invalid value for '--port'"),
        (["--address", "999.1.1.1"], None, "the dashboard cannot listen on 999.1.1.1:8501"),
        (["--address", "x..y"], None, "the dashboard cannot listen on x..y:8501"),
        (["--port", "{busy}"], None, "the dashboard cannot listen on 127.0.0.1:{busy}"),
        (["--users", "{users}"], "users = 5\n", "users must be a table of [users.LOGIN] tables"),
        (["--users", "{users}"], "[users]\nbob = 5\n", "users.bob must be a table"),
        (["--users", "{users}"], "x = " + "[" * 100_000 + "]" * 100_000, "not valid TOML"),
    ],
)
def test_dashboard_cli_checks_its_address_and_users_before_the_server_starts(
    dash_world, tmp_path: Path, capsys, args: list[str], content: str | None, message: str
) -> None:
    """Each was a traceback from inside Streamlit (or on the server's first page), after it had started."""
    users = tmp_path / "users.toml"
    if content is not None:
        users.write_text(content)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        filled = [a.format(busy=busy, users=users) for a in args]
        capsys.readouterr()
        code = main(
            ["dashboard", "--ledger", str(dash_world.ledger), "--trust", str(dash_world.trust), *filled]
        )
    assert code == 2
    err = capsys.readouterr().err
    assert message.format(busy=busy) in err and "Traceback" not in err
