"""`clgate ledger ...` and `clgate keys ...` end to end through a throwaway top-level app."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from clgate.errors import ClgateError
from clgate.ledger import (
    Ledger,
    Proposal,
    ProposalContent,
    key_id,
    load_private_key,
    load_public_key,
    load_trust,
    policy_text_digest,
    sign_envelope,
)
from clgate.ledger.canonical import canonical_json
from clgate.ledger.cli import keys_app, ledger_app
from clgate.ledger.dsse import INTOTO_PAYLOAD_TYPE

from .conftest import truncate

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
    monkeypatch.setenv("CLGATE_TRUST", str(tmp_path / "trust.toml"))
    for name in ("admin", "pipeline", "gate", "auditor", "approver"):
        assert run("keys", "new", name)[0] == 0
    code, out = run("ledger", "init", "--key", "admin.key")
    assert code == 0 and "bound to this log, fingerprint sha256:" in out, out
    for role in ("pipeline", "gate", "auditor", "approver"):
        code, out = run("keys", "add", f"{role}.pub", "--role", role, "--key", "admin.key")
        assert code == 0 and "in effect" in out, out
    return tmp_path


def _policy(workdir: Path) -> str:
    """An adopted policy (any canonical text will do at this layer)."""
    text = canonical_json({"name": "p"}).decode()
    digest = policy_text_digest(text)
    body = workdir / "policy.json"
    body.write_text(json.dumps({"name": "p", "digest": digest, "text": text}))
    code, out = run("ledger", "append", "--key", "admin.key", "--type", "policy.adopted", "--subject", digest,
                    "--body-file", str(body))  # fmt: skip
    assert code == 0, out
    return digest


def _candidate(workdir: Path) -> tuple[Path, dict[str, str]]:
    """A candidate's files on disk and their digests, as a proposal lists them."""
    folder = workdir / "candidate"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    (folder / "config.json").write_text('{"layers": 2}')
    return folder, {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_full_flow(workdir: Path) -> None:
    policy = _policy(workdir)
    folder, files = _candidate(workdir)
    content = {"kind": "model", "base": DIGEST, "nonce": "ab" * 8,
               "artifacts": {"parent": {"kind": "model", "uri": "/p", "digest": "sha256:" + "ee" * 32},
                             "candidate": {"kind": "model", "uri": str(folder), "digest": DIGEST, "files": files}}}  # fmt: skip
    proposal = Proposal.of(ProposalContent.model_validate(content))
    code, out = run("ledger", "append", "--key", "pipeline.key", "--type", "update.proposed", "--subject", DIGEST,
                    "--body", proposal.model_dump_json(exclude_none=True))  # fmt: skip
    assert (code, out.split()[:3]) == (0, ["appended", "entry", "6"]), out
    body = workdir / "audit.json"
    body.write_text(json.dumps({"update_id": proposal.update_id, "verdict": "promote", "findings": [],
                                "policy": {"name": "p", "digest": policy}}))  # fmt: skip
    code, out = run("ledger", "append", "--key", "pipeline.key", "--type", "audit.completed", "--subject", DIGEST,
                    "--body-file", str(body))  # fmt: skip
    assert code == 2 and "may not sign audit.completed (needs gate)" in out
    code, out = run("ledger", "append", "--key", "gate.key", "--type", "audit.completed", "--subject", DIGEST,
                    "--body-file", str(body))  # fmt: skip
    assert code == 0, out
    assert run("ledger", "checkpoint", "--key", "gate.key", "--out", "cp.note")[1].startswith(
        "checkpoint cp.note: size 8"
    )
    code, out = run("ledger", "show")
    assert code == 0 and len(out.splitlines()) == 8 and "audit.completed" in out.splitlines()[7]
    code, out = run("ledger", "show", "--index", "7", "--proof")
    shown = json.loads(out)
    assert (
        shown["body"]["verdict"] == "promote"
        and shown["tree_size"] == 8
        and len(shown["inclusion_proof"]) == 3
    )
    code, out = run("ledger", "verify", "--since", "cp.note", "--state", "heads")
    assert (
        code == 0 and out.startswith("ok: 8 entries, root ") and "consistent with checkpoint at size 8" in out
    )
    assert f"fingerprint {load_trust(workdir / 'trust.toml').fingerprint}" in out
    code, out = run(
        "ledger", "export", "--out", "bundle.json", "--attestations", "att", "--key", "auditor.key"
    )
    assert code == 0 and "wrote 0 in-toto attestations" in out  # only the key that made the audit attests it
    assert "skipped the audit at entry 7: another key signed it" in out
    code, out = run("ledger", "export", "--out", "bundle.json", "--attestations", "att", "--key", "gate.key")
    assert code == 0 and "wrote 2 in-toto attestations" in out
    code, out = run(
        "ledger", "verify-attestation", "att", "--public-key", "gate.pub", "--artifact", str(folder)
    )
    assert code == 0, out
    assert [line.split(": ", 2)[2] for line in out.splitlines()] == [
        "test-result PASSED, 2 subjects, 2 files match " + str(folder),
        "vsa PASSED, 2 subjects, 2 files match " + str(folder),
    ]
    code, out = run("ledger", "verify", "--bundle", "bundle.json", "--since", "cp.note", "--state", "heads")
    assert code == 0 and out.startswith("ok: 8 entries") and "consistent with checkpoint at size 8" in out
    code, out = run("keys", "list")
    assert code == 0 and len(out.splitlines()) == 5 and "active" in out


def _witness(name: str) -> None:
    """A new key added as witness `witness.example/NAME`."""
    assert run("keys", "new", name)[0] == 0
    args = ("keys", "add", f"{name}.pub", "--role", "witness", "--name", f"witness.example/{name}")
    assert run(*args, "--key", "admin.key")[0] == 0


def test_witness_cosigns_only_a_log_that_grew(workdir: Path) -> None:
    _witness("w1")
    code, out = run("ledger", "witness", "--key", "w1.key", "--state", "w1-heads")
    assert code == 2 and "no checkpoint to cosign" in out
    assert run("ledger", "checkpoint", "--key", "gate.key", "--out", "cp.note")[0] == 0
    code, out = run("ledger", "witness", "--key", "w1.key", "--state", "w1-heads", "--out", "cosigned.note")
    assert code == 0 and "as witness.example/w1" in out, out
    assert "\u2014 witness.example/w1 " in (workdir / "cosigned.note").read_text()
    code, out = run("ledger", "witness", "--key", "gate.key", "--state", "w1-heads")
    assert code == 2 and "is not a named witness key of this ledger" in out
    assert (
        run("keys", "revoke", "w1.pub", "--key", "admin.key")[0] == 0
    )  # a rotation leaves a true cosignature
    code, out = run("ledger", "verify")
    assert code == 0, out
    _witness("w2")
    assert run("ledger", "checkpoint", "--key", "gate.key", "--out", "cp2.note")[0] == 0
    assert run("ledger", "witness", "--key", "w2.key", "--state", "w2-heads")[0] == 0
    with sqlite3.connect(workdir / "ledger.db") as db:
        db.execute("DELETE FROM ledger_entries WHERE idx = 3")
    code, out = run("ledger", "witness", "--key", "w2.key", "--state", "w2-heads")
    assert code == 1 and "refusing to cosign" in out


def _notes(n: int) -> None:
    """`n` notes appended by the pipeline key."""
    for i in range(n):
        args = (
            "ledger",
            "append",
            "--key",
            "pipeline.key",
            "--type",
            "note",
            "--body",
            json.dumps({"text": str(i)}),
        )
        assert run(*args)[0] == 0


@pytest.mark.parametrize(
    "command", [["export", "--out", "cut.json"], ["checkpoint", "--key", "gate.key", "--out", "cut.note"]]
)
def test_a_log_cut_since_this_machine_verified_it_is_neither_exported_nor_checkpointed(
    workdir: Path, command: list[str]
) -> None:
    """A database writer who cuts the tail and rebuilds the head gets no bundle or signed checkpoint that
    would vouch for the cut log from a machine that saw more."""
    _notes(3)
    assert run("ledger", "export", "--out", "full.json")[0] == 0  # verified: this machine remembers the head
    trust = load_trust(workdir / "trust.toml")
    with Ledger.open(workdir / "ledger.db", trust) as ledger:
        size = len(ledger)
        truncate(ledger, size - 2)
        assert ledger.verify(trust) == []  # consistent on its own
    code, out = run("ledger", *command)
    assert code == 1 and f"log shrank from {size} to {size - 2} entries" in out, out
    assert not (workdir / command[command.index("--out") + 1]).exists()


def test_verify_prints_one_line_per_problem_and_exits_1(workdir: Path) -> None:
    _notes(3)
    assert run("ledger", "verify", "--state", "heads")[0] == 0
    with sqlite3.connect(workdir / "ledger.db") as db:
        db.execute("DELETE FROM ledger_entries WHERE idx = 6")
    code, out = run("ledger", "verify", "--state", "heads")
    assert code == 1
    lines = out.splitlines()
    assert lines[:2] == [
        "entry 6: entries 6..6 are missing",
        "entry 7: previous-entry hash does not match (an earlier entry was changed, removed or reordered)",
    ]
    assert lines[2].startswith("log: stored tree head (size 8, root ")
    assert "does not match the entries (size 7, root " in lines[2]
    assert lines[3:] == [
        "log: 5 stored Merkle node(s) wrong, first at level 0, index 6",
        "log: log shrank from 8 to 7 entries since this verifier last verified it: "
        "entries were deleted (truncation or rollback of the database)",
    ]


def test_revoke_then_append_is_refused_and_the_trust_file_remembers(workdir: Path) -> None:
    code, out = run("keys", "revoke", "pipeline.pub", "--key", "admin.key", "--reason", "rotated")
    assert code == 0 and "trust.toml updated and re-signed" in out
    code, out = run("ledger", "append", "--key", "pipeline.key", "--type", "note", "--body", '{"text": "x"}')
    assert code == 2 and "error: refused: signed by key pipeline" in out and "revoked at entry 5" in out
    assert "revoked at entry 5" in run("keys", "list")[1]
    assert (
        load_trust(workdir / "trust.toml").revoked_at(key_id(load_public_key(workdir / "pipeline.pub"))) == 5
    )


# a throwaway SM2 key (`openssl genpkey -algorithm SM2`): PEM that `cryptography` parses but cannot load
SM2_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQgXLttZBIk6lFQlPev
VIx6rc+caYb12O9xivcV/vnB6LyhRANCAASICIQq1ci+D29kd0jB7l/BirwSiqR1
EStlJpgZEwCZQouCkJ0660GTbqEvvlteP5uHgvh5/awexguQlxdSoIKB
-----END PRIVATE KEY-----
"""
SM2_PUBLIC = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAEiAiEKtXIvg9vZHdIwe5fwYq8Eoqk
dRErZSaYGRMAmUKLgpCdOutBk26hL75bXj+bh4L4ef2sHsYLkJcXUqCCgQ==
-----END PUBLIC KEY-----
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ledger", "append", "--key", "auditor.key", "--type", "promotion.done", "--subject", DIGEST,
          "--body", '{"update_id": "0000000000000000", "slot": "base"}'], "error: refused: key auditor"),
        (["ledger", "append", "--key", "nope.key", "--type", "note"], "error: private key file not found: nope.key"),
        (["ledger", "append", "--key", "pipeline.key", "--type", "note", "--body", "{"], "error: --body: not valid JSON"),
        (["ledger", "append", "--key", "pipeline.key", "--type", "note", "--body-file", "deep.json"], "error: deep.json: not valid JSON"),
        (["ledger", "append", "--key", "pipeline.key", "--type", "note", "--body-file", "latin1.json"], "error: latin1.json: not valid JSON"),
        (["ledger", "append", "--key", "pipeline.key", "--type", "note", "--body", "[1]"], "must be a JSON object"),
        (["ledger", "append", "--key", "pipeline.key", "--type", "merge"], "error: invalid entry: unknown entry type 'merge' (known: artifact.signed, audit.completed"),
        (["ledger", "verify", "--ledger", "missing.db"], "error: no ledger at"),
        (["ledger", "verify", "--trust", "bad.toml"], "error: bad.toml: not valid TOML"),
        (["ledger", "verify", "--trust", "absent.toml"], "error: absent.toml: no such trust file"),
        (["ledger", "verify", "--since", "absent.note"], "error: checkpoint file not found"),
        (["ledger", "verify", "--bundle", "absent.json", "--trust", "trust.toml"], "error: bundle file not found"),
        (["ledger", "verify", "--trust", "unsigned.toml"], "error: unsigned.toml: the trust file is not signed"),
        (["ledger", "checkpoint", "--key", "pipeline.key", "--out", "cp.note"], "checkpoints are signed by a gate key"),
        (["ledger", "init", "--key", "admin.key"], "the trust file is already bound to log"),
        (["ledger", "show", "--index", "99"], "error: no entry 99 (ledger has 5)"),
        (["ledger", "show", "--ledger", "empty.db"], "empty.db is empty: it holds no clgate ledger"),
        (["keys", "new", "admin"], "error: admin.key exists; refusing to overwrite a key"),
        (["keys", "new", ""], "error: key name '' is not a plain file name (--dir says where the key goes)"),
        (["keys", "new", "../gate"], "error: key name '../gate' is not a plain file name"),
        (["keys", "add", "pipeline.pub", "--role", "root", "--key", "admin.key"], "error: unknown role 'root'"),
        (["keys", "add", "pipeline.pub", "--role", "pipeline", "--key", "admin.key"], "already holds pipeline in this ledger"),
        (["keys", "add", "pipeline.pub", "--role", "auditor", "--key", "pipeline.key"], "may not sign key.added"),
        (["ledger", "verify", "--ledger", "postgresql://u:pw@127.0.0.1:9/x"], "error: cannot reach database postgresql+psycopg://u:***@"),
        (["keys", "revoke", "not-a-key-id", "--key", "admin.key"], "error: not-a-key-id: neither a public key file nor a key id (64 hex digits)"),
        (["ledger", "checkpoint", "--key", "gate.key", "--out", "."], "error: --out .: is a folder; give a file path"),
        (["ledger", "checkpoint", "--key", "gate.key", "--out", "/proc/cp.note"], "error: --out /proc/cp.note: its folder is not writable"),
        (["ledger", "verify", "--state", "trust.toml"], "error: trust.toml: the verifier's state must be a folder"),
        (["ledger", "verify", "--ledger", "postgresql+psycopg://u@[::1"], "error: not a database path or URL"),
        (["keys", "add", "sm2.pub", "--role", "gate", "--key", "admin.key"], "error: sm2.pub: not an Ed25519 key"),
        (["ledger", "append", "--key", "sm2.key", "--type", "note"], "error: sm2.key: a kind of key clgate does not read"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(workdir: Path, args: list[str], message: str) -> None:
    (workdir / "bad.toml").write_text("keys = [")
    (workdir / "deep.json").write_text("[" * 100_000)
    (workdir / "empty.db").write_bytes(b"")
    (workdir / "latin1.json").write_bytes('{"text": "café"}'.encode("latin-1"))
    (workdir / "sm2.key").write_text(SM2_KEY)  # a key kind cryptography parses but cannot load
    (workdir / "sm2.pub").write_text(SM2_PUBLIC)
    (workdir / "unsigned.toml").write_text(
        load_trust(workdir / "trust.toml").model_copy(update={"signature": None}).to_toml()
    )
    rows = "SELECT (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM ledger_checkpoints)"
    before = sqlite3.connect(workdir / "ledger.db").execute(rows).fetchone()
    code, out = run(*args)
    assert code == 2 and message in out, out
    assert "Traceback" not in out and "pw@" not in out
    assert sqlite3.connect(workdir / "ledger.db").execute(rows).fetchone() == before  # nothing recorded


def test_adding_a_key_the_ledger_holds_says_its_roles_are_replaced(workdir: Path) -> None:
    """`keys add` of the approver key with --role witness read as adding a role, and renamed the key after its
    file: it says the roles were replaced, and keeps the name."""
    code, out = run("keys", "add", "approver.pub", "--role", "witness", "--key", "admin.key")
    assert code == 0 and "roles of key approver (" in out and "set to witness (it held approver)" in out, out
    assert "in effect" in out
    listed = next(line for line in run("keys", "list")[1].splitlines() if " approver " in line)
    assert "witness" in listed and "approver," not in listed


def test_a_file_that_holds_no_ledger_is_left_as_it_was(workdir: Path) -> None:
    """Opening another program's SQLite database switched it to WAL before finding no ledger in it, and an
    init over a ledger whose tree head was lost wrote a head row and then failed on the entries."""
    with sqlite3.connect(workdir / "foreign.db") as db:
        db.execute("CREATE TABLE notes (text)")
    before = (workdir / "foreign.db").read_bytes()
    code, out = run("ledger", "verify", "--ledger", "foreign.db")
    assert code == 2 and "foreign.db holds no clgate ledger" in out, out
    assert (workdir / "foreign.db").read_bytes() == before
    (workdir / "text.db").write_text("not a database at all")
    code, out = run("ledger", "verify", "--ledger", "text.db")
    assert code == 2 and "text.db: not a clgate ledger (file is not a database)" in out, out
    with sqlite3.connect(workdir / "ledger.db") as db:
        db.execute("DROP TABLE ledger_head")
    damaged = (workdir / "ledger.db").read_bytes()
    code, out = run(
        "ledger", "init", "--key", "admin.key", "--trust", "new-trust.toml", "--ledger", "ledger.db"
    )
    assert code == 2 and "holds other tables or a damaged ledger (no tree head)" in out, out
    assert (workdir / "ledger.db").read_bytes() == damaged and not (workdir / "new-trust.toml").exists()


def test_a_new_ledger_whose_trust_file_cannot_be_written_is_not_created(workdir: Path) -> None:
    """The trust file is written once the log exists: a --trust that cannot be written is refused first,
    or a log would be left that no trust file is bound to (and a retry refused: it holds a ledger)."""
    (workdir / "afile").write_text("")
    code, out = run(
        "ledger", "init", "--key", "admin.key", "--trust", "afile/trust.toml", "--ledger", "new.db"
    )
    assert code == 2 and "--trust afile/trust.toml: cannot create its folder" in out, out
    assert not (workdir / "new.db").exists()
    assert (
        run("ledger", "init", "--key", "admin.key", "--trust", "new-trust.toml", "--ledger", "new.db")[0] == 0
    )


@pytest.mark.parametrize("quorum", ["5", "99999999999999999999"])
def test_a_key_quorum_no_admins_can_reach_creates_no_ledger(workdir: Path, quorum: str) -> None:
    """One admin and a quorum of 5: no key could ever be added. Refused before the database is made, as is a
    number too big for the ledger's JSON (that one used to fail after it, leaving an empty database)."""
    code, out = run(
        "ledger", "init", "--key", "admin.key", "--trust", "q.toml", "--ledger", "q.db", "--quorum", quorum
    )
    assert code == 2 and f"key_quorum = {quorum}, but the trust file lists 1 admin key(s)" in out, out
    assert not (workdir / "q.db").exists() and not (workdir / "q.toml").exists()


def test_a_revocation_the_trust_file_cannot_take_records_nothing(workdir: Path) -> None:
    """An admin the ledger added may not re-sign the trust file, which must remember the revocation (or a
    truncated log brings the key back): refused before the ledger records it; a second one is refused."""
    assert run("keys", "new", "admin2")[0] == 0
    assert (
        run("keys", "add", "admin2.pub", "--role", "admin", "--key", "admin.key", "--name", "admin2")[0] == 0
    )
    size = len(load_trust(workdir / "trust.toml").keys), _size(workdir)
    code, out = run("keys", "revoke", "pipeline.pub", "--key", "admin2.key")
    assert code == 2 and "the trust file must be signed by one of its own (unrevoked) admin keys" in out, out
    assert (len(load_trust(workdir / "trust.toml").keys), _size(workdir)) == size
    assert run("keys", "revoke", "pipeline.pub", "--key", "admin.key")[0] == 0
    code, out = run("keys", "revoke", "pipeline.pub", "--key", "admin.key")
    assert code == 2 and "was already revoked at entry" in out, out


def test_an_append_to_a_tampered_ledger_is_refused(workdir: Path) -> None:
    _notes(2)
    with sqlite3.connect(workdir / "ledger.db") as db:
        db.execute("UPDATE ledger_entries SET idx = -1 WHERE idx = 3")
    size = _size(workdir)
    code, out = run("ledger", "append", "--key", "pipeline.key", "--type", "note", "--body", '{"text": "x"}')
    assert code == 1 and "ledger fails verification" in out, out
    assert _size(workdir) == size
    code, out = run("keys", "list")  # a cut tail would list a revoked key as active
    assert code == 1 and "ledger fails verification" in out, out


def _size(workdir: Path) -> int:
    return sqlite3.connect(workdir / "ledger.db").execute("SELECT count(*) FROM ledger_entries").fetchone()[0]


def test_passphrase_protected_keys(workdir: Path) -> None:
    env = {"PASS": "correct horse"}
    assert run("keys", "new", "locked", "--passphrase-env", "PASS", env=env)[0] == 0
    assert (workdir / "locked.key").stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED" in (workdir / "locked.key").read_bytes()
    assert (
        run("keys", "add", "locked.pub", "--role", "pipeline", "--key", "admin.key", "--name", "locked")[0]
        == 0
    )
    note = ["ledger", "append", "--key", "locked.key", "--type", "note", "--body", '{"text": "x"}']
    assert run(*note, "--passphrase-env", "PASS", env={"PASS": "wrong"})[1].endswith(
        "error: locked.key: wrong passphrase"
    )
    assert "key is encrypted; give its passphrase" in run(*note)[1]
    assert (
        "environment variable NOPE (the passphrase) is not set" in run(*note, "--passphrase-env", "NOPE")[1]
    )
    assert run(*note, "--passphrase-env", "PASS", env=env)[0] == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["att", "--public-key", "other.pub"], 1, "error: att/a.intoto.json: the signature does not verify with key"),
        (["tampered.intoto.json", "--public-key", "signer.pub"], 1, "error: tampered.intoto.json: the signature does not verify"),
        (["att", "--public-key", "signer.pub", "--artifact", "swapped"], 1, "error: att/a.intoto.json: swapped: model.safetensors does not match its subject"),
        (["cp.json", "--public-key", "signer.pub"], 2, "error: cp.json: not an attestation: not a DSSE envelope"),
        (["absent.intoto.json", "--public-key", "signer.pub"], 2, "error: attestation file not found: absent.intoto.json"),
        (["empty", "--public-key", "signer.pub"], 2, "error: no *.intoto.json attestations in empty"),
        (["att", "--public-key", "signer.pub", "--bundle", "cp.json"], 2, "error: --bundle and --trust go together"),
        (["att", "--public-key", "cp.json"], 2, "error: cp.json: not a PEM public key"),
    ],
)  # fmt: skip
def test_verify_attestation_refuses_bad_input_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("signer", "other"):
        assert run("keys", "new", name)[0] == 0
    folder, files = _candidate(tmp_path)
    statement = {"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
                 "subject": [{"name": n, "digest": {"sha256": d}} for n, d in files.items()],
                 "predicate": {"result": "PASSED", "configuration": [{"uri": "urn:clgate:policy:p"}]}}  # fmt: skip
    env = sign_envelope(canonical_json(statement), INTOTO_PAYLOAD_TYPE, load_private_key(Path("signer.key")))
    (tmp_path / "att").mkdir()
    (tmp_path / "att" / "a.intoto.json").write_text(json.dumps(env.to_dict()))
    assert (
        run("ledger", "verify-attestation", "att", "--public-key", "signer.pub", "--artifact", str(folder))[0]
        == 0
    )
    tampered = env.to_dict() | {
        "payload": base64.b64encode(env.payload.replace(b"PASSED", b"FAILED")).decode()
    }
    (tmp_path / "tampered.intoto.json").write_text(json.dumps(tampered))
    shutil.copytree(folder, tmp_path / "swapped")
    (tmp_path / "swapped" / "model.safetensors").write_bytes(b"\x01" * 64)
    (tmp_path / "cp.json").write_text('{"format": "clgate.ledger.bundle"}')
    (tmp_path / "empty").mkdir()
    got, out = run("ledger", "verify-attestation", *args)
    assert (got, out.splitlines()[-1].startswith(message)) == (code, True), out
    assert "Traceback" not in out


def test_text_written_where_an_entry_belongs_is_a_verify_problem_not_a_crash(workdir: Path) -> None:
    """The database is not trusted: a hand-written text value in the envelope column is reported as the
    entry it broke (exit 1), as any other altered bytes are."""
    with sqlite3.connect(workdir / "ledger.db") as db:
        db.execute("UPDATE ledger_entries SET envelope = 'x' WHERE idx = 2")
    code, out = run("ledger", "verify")
    assert code == 1 and "entry 2:" in out and "Traceback" not in out and "TypeError" not in out, out


def test_a_path_the_system_refuses_is_one_line_naming_it(workdir: Path, capsys) -> None:
    """A file name over the system's limit raised from `Path.is_file()` itself: one line, exit 2."""
    from clgate.audit.cli import main

    long = "t" * 300
    assert main(["ledger", "verify", "--trust", long]) == 2
    assert capsys.readouterr().err == f"error: {long}: File name too long\n"


def test_a_subject_with_a_newline_lists_as_one_line(workdir: Path) -> None:
    """Any key can sign a note with any subject: printed raw, a newline in it printed a fake entry."""
    fake = "x\n     9  2026-01-01T00:00:00Z  promotion.done      c0ffee000000  sha256:forged"
    note = ["--type", "note", "--subject", fake, "--body", '{"text": "hi"}']
    assert run("ledger", "append", "--key", "pipeline.key", *note)[0] == 0
    code, out = run("ledger", "show")
    assert code == 0 and len(out.splitlines()) == 6 and ascii(fake) in out.splitlines()[-1]
