"""`clgate ledger ...` and `clgate keys ...`: thin typer wrappers over the Python API.

Bad input raises ClgateError (the top-level CLI turns it into one line and exit 2); `verify`
prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clgate.errors import InputError, IntegrityError
from clgate.ledger.checkpoint import load_checkpoint, save_checkpoint
from clgate.ledger.entries import ENTRY_TYPES
from clgate.ledger.export import load_bundle, verify_bundle, write_attestations, write_bundle
from clgate.ledger.keys import (
    ROLES,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    public_key_b64,
    save_private_key,
    save_public_key,
)
from clgate.ledger.log import Ledger
from clgate.ledger.trust import Trust, TrustedKey, load_trust, save_trust
from clgate.ledger.verify import Problem

ledger_app = typer.Typer(help="The signed update ledger.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Signing keys and their roles.", no_args_is_help=True, add_completion=False)

Db = Annotated[
    str, typer.Option("--db", envvar="CLGATE_LEDGER", help="SQLite path or postgresql+psycopg:// URL.")
]
KeyOpt = Annotated[Path, typer.Option("--key", help="Private key (PEM) that signs.")]
PassEnv = Annotated[
    str | None, typer.Option("--passphrase-env", help="Environment variable holding the key's passphrase.")
]
TrustOpt = Annotated[Path | None, typer.Option("--trust", help="Trust file (TOML) of anchor keys and roles.")]
DEFAULT_DB = "clgate-ledger.db"


def _passphrase(env: str | None) -> str | None:
    if env is None:
        return None
    if env not in os.environ:
        raise InputError(f"environment variable {env} (the passphrase) is not set")
    return os.environ[env]


def _signer(path: Path, passphrase_env: str | None) -> Ed25519PrivateKey:
    return load_private_key(path, _passphrase(passphrase_env))


@ledger_app.command("init")
def init(
    key: KeyOpt,
    db: Db = DEFAULT_DB,
    trust: TrustOpt = None,
    name: Annotated[str, typer.Option(help="Name recorded for the admin key.")] = "admin",
    passphrase_env: PassEnv = None,
) -> None:
    """Create a ledger; its first entries register the admin key (and every key of the trust file).

    If --trust names a file that does not exist yet, it is written with the admin key as anchor.
    """
    admin = _signer(key, passphrase_env)
    anchors = None
    if trust is not None and trust.exists():
        anchors = load_trust(trust)
    elif trust is not None:
        anchors = Trust(keys=[TrustedKey.of(admin.public_key(), ["admin"], name)])
    with Ledger.init(db, admin, anchors, admin_name=name) as ledger:
        if trust is not None and not trust.exists():
            save_trust(anchors, trust)  # type: ignore[arg-type]
            typer.echo(f"wrote trust file {trust}")
        typer.echo(f"initialised {ledger.store.label}: log {ledger.log_id()[:16]}, {len(ledger)} entries")


@ledger_app.command("append")
def append(
    key: KeyOpt,
    entry_type: Annotated[str, typer.Option("--type", help=f"One of: {', '.join(ENTRY_TYPES)}.")],
    db: Db = DEFAULT_DB,
    subject: Annotated[str | None, typer.Option(help="What the entry is about (e.g. sha256:...).")] = None,
    body: Annotated[str | None, typer.Option(help="Entry body as a JSON object.")] = None,
    body_file: Annotated[Path | None, typer.Option(help="Entry body from a JSON file.")] = None,
    trust: TrustOpt = None,
    passphrase_env: PassEnv = None,
) -> None:
    """Sign and append one entry."""
    data = _body(body, body_file)
    signer = _signer(key, passphrase_env)
    with Ledger.open(db, trust) as ledger:
        entry = ledger.append({"type": entry_type, "subject": subject, "body": data}, signer)
    typer.echo(f"appended entry {entry.index} ({entry.type}) {entry.entry_hash}")


def _body(body: str | None, body_file: Path | None) -> dict:
    if body is not None and body_file is not None:
        raise InputError("give --body or --body-file, not both")
    text, where = body, "--body"
    if body_file is not None:
        if not body_file.is_file():
            raise InputError(f"body file not found: {body_file}")
        text, where = body_file.read_text(encoding="utf-8"), str(body_file)
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{where}: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError(f"{where}: must be a JSON object")
    return value


@ledger_app.command("show")
def show(
    db: Db = DEFAULT_DB,
    index: Annotated[int | None, typer.Option(help="Show one entry in full.")] = None,
    entry_type: Annotated[str | None, typer.Option("--type", help="Only entries of this type.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    proof: Annotated[bool, typer.Option(help="With --index: add its inclusion proof.")] = False,
) -> None:
    """List entries (index, time, type, signer, subject), or one entry in full."""
    with Ledger.open(db) as ledger:
        if index is not None:
            entry = ledger.get(index)
            out = {"index": entry.index, "entry_hash": entry.entry_hash, **entry.payload.model_dump()}
            if proof:
                out["tree_size"] = len(ledger)
                out["root"] = ledger.root().hex()
                out["inclusion_proof"] = [h.hex() for h in ledger.inclusion_proof(index)]
            typer.echo(json.dumps(out, indent=2))
            return
        for entry in ledger.find(entry_type):
            if as_json:
                out = {"index": entry.index, "entry_hash": entry.entry_hash, **entry.payload.model_dump()}
                typer.echo(json.dumps(out, separators=(",", ":")))
            else:
                typer.echo(
                    f"{entry.index:>6}  {entry.timestamp[:19]}Z  {entry.type:<19} "
                    f"{entry.signer[:12]}  {entry.subject or ''}"
                )


@ledger_app.command("verify")
def verify(
    db: Db = DEFAULT_DB,
    bundle: Annotated[
        Path | None, typer.Option(help="Verify an exported bundle; no database needed.")
    ] = None,
    trust: TrustOpt = None,
    since: Annotated[Path | None, typer.Option(help="Prove the log only grew since this checkpoint.")] = None,
) -> None:
    """Recompute everything from the entry bytes; one line per problem, exit 1 if any."""
    checkpoint = load_checkpoint(since) if since else None
    anchors = load_trust(trust) if trust else None
    if bundle is not None:
        if anchors is None:
            raise InputError("--bundle needs --trust: offline verification trusts only your keys")
        check = verify_bundle(load_bundle(bundle), anchors, since=checkpoint)
        report, problems = check.report, check.problems
    else:
        with Ledger.open(db) as ledger:
            try:
                report = ledger.verify_report(anchors, checkpoint)
                problems = report.problems
            except IntegrityError as exc:
                problems, report = [Problem(None, str(exc))], None
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        raise typer.Exit(1)
    assert report is not None
    note = "" if anchors else " (no --trust: genesis key trusted on first use)"
    since_note = f", consistent with checkpoint at size {checkpoint.size}" if checkpoint else ""
    typer.echo(f"ok: {report.size} entries, root {report.root.hex()}{since_note}{note}")


@ledger_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Bundle file to write (JSON).")],
    db: Db = DEFAULT_DB,
    attestations: Annotated[
        Path | None, typer.Option(help="Also write in-toto statements per audited update here.")
    ] = None,
    key: Annotated[Path | None, typer.Option(help="Key that signs the attestations.")] = None,
    passphrase_env: PassEnv = None,
) -> None:
    """Write a self-contained bundle (entries, proofs, checkpoint, keys) for offline verification."""
    if attestations is not None and key is None:
        raise InputError("--attestations needs --key to sign them")
    signer = _signer(key, passphrase_env) if key else None
    with Ledger.open(db) as ledger:
        bundle = write_bundle(ledger, out)
        typer.echo(f"wrote {out}: {len(bundle.entries)} entries, root {bundle.tree['root']}")
        if attestations is not None and signer is not None:
            paths = write_attestations(ledger, attestations, signer)
            typer.echo(f"wrote {len(paths)} in-toto attestations to {attestations}")


@ledger_app.command("checkpoint")
def checkpoint(
    key: KeyOpt,
    out: Annotated[Path, typer.Option(help="Checkpoint file to write.")],
    db: Db = DEFAULT_DB,
    passphrase_env: PassEnv = None,
) -> None:
    """Sign the current tree head (admin key); keep the file to prove later the log only grew."""
    signer = _signer(key, passphrase_env)
    with Ledger.open(db) as ledger:
        cp = ledger.checkpoint(signer)
    save_checkpoint(cp, out)
    typer.echo(f"checkpoint {out}: size {cp.size}, root {cp.root.hex()}")


@keys_app.command("new")
def keys_new(
    name: str,
    directory: Annotated[Path, typer.Option("--dir", help="Where NAME.key and NAME.pub go.")] = Path("."),
    passphrase_env: PassEnv = None,
) -> None:
    """Generate an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub."""
    private, public = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private, public):
        if path.exists():
            raise InputError(f"{path} exists; refusing to overwrite a key")
    key = generate_key()
    save_private_key(key, private, _passphrase(passphrase_env))
    save_public_key(key.public_key(), public)
    typer.echo(f"{name}: key id {key_id(key.public_key())}")
    typer.echo(f"wrote {private} (private, 0600) and {public}")


@keys_app.command("add")
def keys_add(
    public_key: Annotated[Path, typer.Argument(help="Public key file (PEM) to add.")],
    role: Annotated[list[str], typer.Option(help=f"Role(s): {', '.join(ROLES)}.")],
    key: KeyOpt,
    db: Db = DEFAULT_DB,
    name: Annotated[str, typer.Option(help="Name recorded with the key.")] = "",
    trust: Annotated[Path | None, typer.Option(help="Also add the key to this trust file.")] = None,
    passphrase_env: PassEnv = None,
) -> None:
    """Record a `key.added` entry (signed by an admin key) and optionally add it to a trust file."""
    bad = [r for r in role if r not in ROLES]
    if bad:
        raise InputError(f"unknown role {bad[0]!r} (roles: {', '.join(ROLES)})")
    pub = load_public_key(public_key)
    kid, signer = key_id(pub), _signer(key, passphrase_env)
    body = {"key_id": kid, "public_key": public_key_b64(pub), "roles": role, "name": name or public_key.stem}
    with Ledger.open(db) as ledger:
        entry = ledger.append({"type": "key.added", "subject": kid, "body": body}, signer)
    if trust is not None:
        current = load_trust(trust) if trust.exists() else Trust()
        save_trust(current.with_key(TrustedKey.of(pub, role, body["name"])), trust)
    typer.echo(f"added key {kid[:16]} ({', '.join(role)}) at entry {entry.index}")


@keys_app.command("revoke")
def keys_revoke(
    target: Annotated[str, typer.Argument(help="Key id, or a public key file.")],
    key: KeyOpt,
    db: Db = DEFAULT_DB,
    reason: Annotated[str, typer.Option(help="Why (recorded in the ledger).")] = "",
    passphrase_env: PassEnv = None,
) -> None:
    """Record a `key.revoked` entry: entries it signs after this one are rejected."""
    kid = key_id(load_public_key(Path(target))) if Path(target).is_file() else target.lower()
    signer = _signer(key, passphrase_env)
    with Ledger.open(db) as ledger:
        draft = {"type": "key.revoked", "subject": kid, "body": {"key_id": kid, "reason": reason}}
        entry = ledger.append(draft, signer)
    typer.echo(f"revoked key {kid[:16]} at entry {entry.index}")


@keys_app.command("list")
def keys_list(db: Db = DEFAULT_DB, trust: TrustOpt = None) -> None:
    """Keys in effect: trust-file anchors plus the ledger's key entries, with roles and status."""
    with Ledger.open(db, trust) as ledger:
        ring = ledger.key_ring()
    for kid, state in ring.keys.items():
        status = f"revoked at entry {state.revoked_at}" if state.revoked_at is not None else "active"
        typer.echo(f"{kid[:16]}  {state.name or '-':<12} {','.join(sorted(state.roles)):<24} {status}")
