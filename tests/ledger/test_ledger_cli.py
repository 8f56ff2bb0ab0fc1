"""`clgate ledger ...` and `clgate keys ...` end to end through a throwaway top-level app."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from clgate.errors import ClgateError
from clgate.ledger.cli import keys_app, ledger_app

DIGEST = "sha256:" + "cd" * 32


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Mount the sub-apps as the lead's CLI does; a ClgateError becomes `error: ...` and its exit code."""
    app = typer.Typer()
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(keys_app, name="keys")
    result = CliRunner().invoke(app, list(args), env=env)
    if isinstance(result.exception, ClgateError):
        return result.exception.exit_code, result.output + f"error: {result.exception}"
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLGATE_LEDGER", str(tmp_path / "ledger.db"))
    for name in ("admin", "pipeline", "auditor", "approver"):
        assert run("keys", "new", name)[0] == 0
    assert run("ledger", "init", "--key", "admin.key", "--trust", "trust.toml")[0] == 0
    for role in ("pipeline", "auditor", "approver"):
        code, out = run(
            "keys", "add", f"{role}.pub", "--role", role, "--key", "admin.key", "--trust", "trust.toml"
        )
        assert code == 0, out
    return tmp_path


def test_full_flow(workdir: Path) -> None:
    code, out = run("ledger", "append", "--key", "pipeline.key", "--type", "update.proposed", "--subject", DIGEST,
                    "--body", '{"kind": "lora"}')  # fmt: skip
    assert (code, out.split()[:3]) == (0, ["appended", "entry", "4"])
    body = workdir / "audit.json"
    body.write_text(json.dumps({"verdict": "promote", "findings": []}))
    code, out = run("ledger", "append", "--key", "auditor.key", "--type", "audit.completed", "--subject", DIGEST,
                    "--body-file", str(body))  # fmt: skip
    assert code == 0, out
    assert run("ledger", "checkpoint", "--key", "admin.key", "--out", "cp.json")[1].startswith(
        "checkpoint cp.json: size 6"
    )
    code, out = run("ledger", "show")
    assert code == 0 and len(out.splitlines()) == 6 and "audit.completed" in out.splitlines()[5]
    code, out = run("ledger", "show", "--index", "5", "--proof")
    shown = json.loads(out)
    assert (
        shown["body"]["verdict"] == "promote"
        and shown["tree_size"] == 6
        and len(shown["inclusion_proof"]) == 2
    )
    code, out = run("ledger", "verify", "--trust", "trust.toml", "--since", "cp.json")
    assert (
        code == 0 and out.startswith("ok: 6 entries, root ") and "consistent with checkpoint at size 6" in out
    )
    code, out = run(
        "ledger", "export", "--out", "bundle.json", "--attestations", "att", "--key", "auditor.key"
    )
    assert code == 0 and "wrote 1 in-toto attestations" in out
    code, out = run(
        "ledger", "verify", "--bundle", "bundle.json", "--trust", "trust.toml", "--since", "cp.json"
    )
    assert code == 0 and out.startswith("ok: 6 entries") and "consistent with checkpoint at size 6" in out
    code, out = run("keys", "list")
    assert code == 0 and len(out.splitlines()) == 4 and "active" in out


def test_verify_prints_one_line_per_problem_and_exits_1(workdir: Path) -> None:
    for i in range(3):
        run(
            "ledger",
            "append",
            "--key",
            "pipeline.key",
            "--type",
            "note",
            "--body",
            json.dumps({"text": str(i)}),
        )
    with sqlite3.connect(workdir / "ledger.db") as db:
        db.execute("DELETE FROM ledger_entries WHERE idx = 5")
    code, out = run("ledger", "verify", "--trust", "trust.toml")
    assert code == 1
    lines = out.splitlines()
    assert lines[:2] == [
        "entry 5: entries 5..5 are missing",
        "entry 6: previous-entry hash does not match (an earlier entry was changed, removed or reordered)",
    ]
    assert lines[2].startswith("log: stored tree head (size 7, root ")
    assert "does not match the entries (size 6, root " in lines[2]
    assert lines[3:] == [
        "log: 3 stored Merkle node(s) wrong, first at level 0, index 5",
    ]


def test_revoke_then_append_is_refused(workdir: Path) -> None:
    assert run("keys", "revoke", "pipeline.pub", "--key", "admin.key", "--reason", "rotated")[0] == 0
    code, out = run("ledger", "append", "--key", "pipeline.key", "--type", "note", "--body", '{"text": "x"}')
    assert code == 2 and "error: refused: signed by key pipeline" in out and "revoked at entry 4" in out
    assert "revoked at entry 4" in run("keys", "list")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ledger", "append", "--key", "auditor.key", "--type", "promotion.done", "--subject", DIGEST],
         "error: refused: key auditor"),
        (["ledger", "append", "--key", "nope.key", "--type", "note"], "error: private key file not found: nope.key"),
        (["ledger", "append", "--key", "pipeline.key", "--type", "note", "--body", "{"], "error: --body: not JSON"),
        (["ledger", "append", "--key", "pipeline.key", "--type", "note", "--body", "[1]"], "must be a JSON object"),
        (["ledger", "append", "--key", "pipeline.key", "--type", "merge"], "error: invalid entry: unknown entry type 'merge' (known: audit.completed"),
        (["ledger", "verify", "--db", "missing.db"], "error: no ledger at"),
        (["ledger", "verify", "--trust", "bad.toml"], "error: bad.toml: not valid TOML"),
        (["ledger", "verify", "--trust", "absent.toml"], "error: trust file not found: absent.toml"),
        (["ledger", "verify", "--since", "absent.json"], "error: checkpoint file not found"),
        (["ledger", "verify", "--bundle", "x.json"], "error: --bundle needs --trust"),
        (["ledger", "verify", "--bundle", "absent.json", "--trust", "trust.toml"], "error: bundle file not found"),
        (["ledger", "checkpoint", "--key", "pipeline.key", "--out", "cp.json"], "without the admin role"),
        (["ledger", "init", "--key", "admin.key"], "already holds a ledger"),
        (["ledger", "show", "--index", "99"], "error: no entry 99 (ledger has 4)"),
        (["keys", "new", "admin"], "error: admin.key exists; refusing to overwrite a key"),
        (["keys", "add", "pipeline.pub", "--role", "root", "--key", "admin.key"], "error: unknown role 'root'"),
        (["keys", "add", "pipeline.pub", "--role", "auditor", "--key", "pipeline.key"], "may not sign key.added"),
        (["ledger", "verify", "--db", "postgresql://u@127.0.0.1:9/x"], "error: cannot reach database"),
        (["keys", "revoke", "not-a-key-id", "--key", "admin.key"], "error: invalid entry: key.revoked: body.key_id: String should match pattern"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(workdir: Path, args: list[str], message: str) -> None:
    (workdir / "bad.toml").write_text("keys = [")
    size_before = (
        sqlite3.connect(workdir / "ledger.db").execute("SELECT count(*) FROM ledger_entries").fetchone()
    )
    code, out = run(*args)
    assert code == 2 and message in out, out
    assert "Traceback" not in out
    assert (
        sqlite3.connect(workdir / "ledger.db").execute("SELECT count(*) FROM ledger_entries").fetchone()
        == size_before
    )


def test_passphrase_protected_keys(workdir: Path) -> None:
    env = {"PASS": "correct horse"}
    assert run("keys", "new", "locked", "--passphrase-env", "PASS", env=env)[0] == 0
    assert (workdir / "locked.key").stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED" in (workdir / "locked.key").read_bytes()
    assert run("keys", "add", "locked.pub", "--role", "pipeline", "--key", "admin.key")[0] == 0
    note = ["ledger", "append", "--key", "locked.key", "--type", "note", "--body", '{"text": "x"}']
    assert run(*note, "--passphrase-env", "PASS", env={"PASS": "wrong"})[1].endswith(
        "error: locked.key: wrong passphrase"
    )
    assert "key is encrypted; give its passphrase" in run(*note)[1]
    assert (
        "environment variable NOPE (the passphrase) is not set" in run(*note, "--passphrase-env", "NOPE")[1]
    )
    assert run(*note, "--passphrase-env", "PASS", env=env)[0] == 0
