"""`clgate ledger ...` and `clgate keys ...`: thin typer wrappers over the Python API.

Bad input raises ClgateError (the top-level CLI turns it into one line and exit 2); `verify`
prints one line per problem and exits 1 if there is any. Every command that writes or reports
needs the trust file (`--trust` or `$CLGATE_TRUST`): without it a forged database would be believed.

Each command imports the ledger modules it runs: `--help` loads only what the help texts name, and
`verify --bundle` loads neither the log and its database nor the attestations.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from clgate.atomic import writable_file
from clgate.errors import ClgateError, InputError, IntegrityError
from clgate.json_input import parse_json
from clgate.json_output import write_json_output
from clgate.ledger.entries import ENTRY_TYPES
from clgate.ledger.keys import PASSPHRASE_ENV, ROLES
from clgate.typer_app import typer_app

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from clgate.ledger.log import Ledger

ledger_app = typer_app(help="The signed update ledger.", no_args_is_help=True)
keys_app = typer_app(help="Signing keys and their roles.", no_args_is_help=True)

Db = Annotated[
    str, typer.Option("--ledger", envvar="CLGATE_LEDGER", help="SQLite path or postgresql+psycopg:// URL.")
]
KeyOpt = Annotated[Path, typer.Option("--key", help="Private key (PEM) that signs.")]
PassEnv = Annotated[
    str | None,
    typer.Option(
        "--passphrase-env",
        help=f"Environment variable holding the key's passphrase (default: ${PASSPHRASE_ENV}).",
    ),
]
TrustOpt = Annotated[
    Path,
    typer.Option(
        "--trust", envvar="CLGATE_TRUST", help="Signed trust file (TOML): anchor keys, log id, quorum."
    ),
]
DEFAULT_DB = "clgate-ledger.db"


def _signer(path: Path, passphrase_env: str | None) -> Ed25519PrivateKey:
    from clgate.ledger.keys import load_private_key, passphrase_from_env

    return load_private_key(path, passphrase_from_env(passphrase_env))


@ledger_app.command("init")
def init(
    key: KeyOpt,
    trust: TrustOpt,
    db: Db = DEFAULT_DB,
    name: Annotated[str, typer.Option(help="Name recorded for the admin key.")] = "admin",
    quorum: Annotated[
        int, typer.Option(help="Admins who must sign a key addition (new trust file).", min=1)
    ] = 1,
    passphrase_env: PassEnv = None,
) -> None:
    """Create a ledger; its first entries register the admin key (and every key of the trust file).

    If --trust names a file that does not exist yet, it is written with the admin key as anchor.
    Either way the trust file is then bound to the new log (its log id) and signed by the admin.
    """
    from clgate.ledger.log import Ledger
    from clgate.ledger.trust import Trust, TrustedKey, load_trust, save_trust

    admin = _signer(key, passphrase_env)
    writable_file(trust, "--trust")  # the trust file is written after the log: never a log without one
    if trust.exists():
        anchors = load_trust(trust)
    else:
        anchors = Trust(
            key_quorum=quorum, policy_quorum=True, keys=[TrustedKey.of(admin.public_key(), ["admin"], name)]
        )
    with Ledger.init(db, admin, anchors, admin_name=name) as ledger:
        bound = save_trust(anchors.bound_to(ledger.log_id()), trust, admin)
        typer.echo(f"initialised {ledger.store.label}: log {ledger.log_id()[:16]}, {len(ledger)} entries")
        typer.echo(f"trust file {bound} bound to this log, fingerprint {load_trust(bound).fingerprint}")


@ledger_app.command("append")
def append(
    key: KeyOpt,
    entry_type: Annotated[str, typer.Option("--type", help=f"One of: {', '.join(ENTRY_TYPES)}.")],
    trust: TrustOpt,
    db: Db = DEFAULT_DB,
    subject: Annotated[str | None, typer.Option(help="What the entry is about (e.g. sha256:...).")] = None,
    body: Annotated[str | None, typer.Option(help="Entry body as a JSON object.")] = None,
    body_file: Annotated[Path | None, typer.Option(help="Entry body from a JSON file.")] = None,
    passphrase_env: PassEnv = None,
) -> None:
    """Sign and append one entry (the ledger refuses what its rules forbid)."""
    from clgate.ledger.log import Ledger
    from clgate.ledger.trust import load_trust

    data = _body(body, body_file)
    signer = _signer(key, passphrase_env)
    with Ledger.open(db, load_trust(trust)) as ledger:
        _verified(ledger)  # a tampered log is refused before it is signed onto
        entry = ledger.append({"type": entry_type, "subject": subject, "body": data}, signer)
    typer.echo(f"appended entry {entry.index} ({entry.type}) {entry.entry_hash}")


def _body(body: str | None, body_file: Path | None) -> dict:
    if body is not None and body_file is not None:
        raise InputError("give --body or --body-file, not both")
    text: str | bytes | None = body
    where = "--body"
    if body_file is not None:
        if not body_file.is_file():
            raise InputError(f"body file not found: {body_file}")
        text, where = body_file.read_bytes(), str(body_file)
    if text is None:
        return {}
    value = parse_json(text, where)
    if not isinstance(value, dict):
        raise InputError(f"{where}: must be a JSON object")
    return value


@ledger_app.command("show")
def show(
    db: Db = DEFAULT_DB,
    index: Annotated[int | None, typer.Option(help="Show one entry in full.", min=0, max=2**63 - 1)] = None,
    entry_type: Annotated[str | None, typer.Option("--type", help="Only entries of this type.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the entries as JSON lines here ('-' for stdout).")
    ] = None,
    proof: Annotated[bool, typer.Option(help="With --index: add its inclusion proof.")] = False,
) -> None:
    """List entries (index, time, type, signer, subject), or one entry in full."""
    from clgate.ledger.log import Ledger

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
        entries = list(ledger.find(entry_type))
    if json_out is not None:
        lines = (
            json.dumps(
                {"index": e.index, "entry_hash": e.entry_hash, **e.payload.model_dump()},
                separators=(",", ":"),
            )
            for e in entries
        )
        if write_json_output("".join(f"{line}\n" for line in lines), json_out):
            typer.echo(f"wrote {len(entries)} entries to {json_out}")
        return
    for entry in entries:
        typer.echo(
            f"{entry.index:>6}  {entry.timestamp[:19]}Z  {entry.type:<19} "
            f"{entry.signer[:12]}  {_one_line(entry.subject or '')}"
        )


def _one_line(text: str) -> str:
    """A signer's free text in a one-line-per-entry listing: a newline in it would print a fake entry."""
    return text if text.isprintable() else ascii(text)


@ledger_app.command("verify")
def verify(
    trust: TrustOpt,
    db: Db = DEFAULT_DB,
    bundle: Annotated[
        Path | None, typer.Option(help="Verify an exported bundle; no database needed.")
    ] = None,
    since: Annotated[Path | None, typer.Option(help="Prove the log only grew since this checkpoint.")] = None,
    state: Annotated[  # a string: Path("") would be the working folder
        str | None, typer.Option(help="Where this verifier keeps the last head it saw of each log.")
    ] = None,
) -> None:
    """Recompute everything from the entry bytes; one line per problem, exit 1 if any.

    The log must also extend the largest head this verifier verified before (kept in --state):
    a database whose tail was deleted is refused even if what is left verifies.
    """
    from clgate.ledger.checkpoint import load_checkpoint
    from clgate.ledger.governance import release_lines
    from clgate.ledger.seen import SeenHeads
    from clgate.ledger.trust import load_trust

    checkpoint = load_checkpoint(since) if since else None
    anchors, seen = load_trust(trust), SeenHeads(state)
    if bundle is not None:  # a bundle needs neither the log nor its database
        from clgate.ledger.export import load_bundle, verify_bundle

        check = verify_bundle(load_bundle(bundle), anchors, since=checkpoint, seen=seen)
        report, problems = check.report, check.problems
    else:
        from clgate.ledger.log import Ledger
        from clgate.ledger.verify import Problem

        with Ledger.open(db) as ledger:
            try:
                report = ledger.verify_report(anchors, checkpoint, seen=seen)
                problems = report.problems
            except IntegrityError as exc:
                problems, report = [Problem(None, str(exc))], None
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        raise typer.Exit(1)
    assert report is not None
    since_note = f", consistent with checkpoint at size {checkpoint.size}" if checkpoint else ""
    typer.echo(f"ok: {report.size} entries, root {report.root.hex()}{since_note}")
    for line in release_lines(report.state):
        typer.echo(f"signed release: {line}")
    typer.echo(f"trust file {trust}: fingerprint {anchors.fingerprint}")


@ledger_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Bundle file to write (JSON).")],
    trust: TrustOpt,
    db: Db = DEFAULT_DB,
    attestations: Annotated[
        Path | None,
        typer.Option(help="Also write a SLSA VSA and an in-toto test result per audited update here."),
    ] = None,
    key: Annotated[Path | None, typer.Option(help="Key that signs the attestations.")] = None,
    passphrase_env: PassEnv = None,
) -> None:
    """Write a self-contained bundle (entries, proofs, checkpoint, keys) for offline verification."""
    from clgate.ledger.attestations import write_attestations
    from clgate.ledger.export import write_bundle
    from clgate.ledger.log import Ledger
    from clgate.ledger.trust import load_trust

    if attestations is not None and key is None:
        raise InputError("--attestations needs --key to sign them")
    signer = _signer(key, passphrase_env) if key else None
    with Ledger.open(db, load_trust(trust)) as ledger:
        _verified(ledger)
        bundle = write_bundle(ledger, out)
        typer.echo(f"wrote {out}: {len(bundle.entries)} entries, root {bundle.tree['root']}")
        if attestations is not None and signer is not None:
            done = write_attestations(ledger, attestations, signer)
            typer.echo(f"wrote {len(done.paths)} in-toto attestations to {attestations}")
            for index in done.skipped:
                typer.echo(f"skipped the audit at entry {index}: its proposal recorded no file digests")
            for index in done.other_signer:
                typer.echo(
                    f"skipped the audit at entry {index}: another key signed it (export with that key)"
                )


@ledger_app.command("verify-attestation")
def verify_attestation_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Attestation files, or folders of *.intoto.json.")],
    public_key: Annotated[Path, typer.Option(help="Public key (PEM) of the key that signed them.")],
    artifact: Annotated[
        Path | None, typer.Option(help="The artifact's files: each must match its subject, none unattested.")
    ] = None,
    allow_failed: Annotated[
        bool, typer.Option(help="Exit 0 for a valid attestation of a failed audit too (for auditors).")
    ] = False,
    bundle: Annotated[
        Path | None,
        typer.Option(
            help="A bundle of the log (with --trust): the attestation must agree with the audit in it."
        ),
    ] = None,
    trust: Annotated[Path | None, typer.Option(help="Signed trust file the bundle is verified with.")] = None,
) -> None:
    """Check exported attestations offline: signature, statement, and (with --artifact) every file digest.

    Exit 1 unless every attestation is valid and PASSED: a deploy step may rely on `&&`."""
    from clgate.ledger.attestations import check_files, check_in_bundle, verify_attestation
    from clgate.ledger.export import load_bundle, verify_bundle
    from clgate.ledger.keys import key_id, load_public_key
    from clgate.ledger.trust import load_trust

    key = load_public_key(public_key)
    if (bundle is None) != (trust is None):
        raise InputError("--bundle and --trust go together: the bundle is believed only once verified")
    log = None
    if bundle is not None and trust is not None:
        loaded = load_bundle(bundle)
        check = verify_bundle(loaded, load_trust(trust))
        if check.problems:
            raise IntegrityError(f"{bundle} does not verify: {check.problems[0]}")
        log = (loaded, check.report.state)
    files = [f for p in paths for f in (sorted(p.glob("*.intoto.json")) if p.is_dir() else [p])]
    if not files:
        raise InputError(f"no *.intoto.json attestations in {', '.join(map(str, paths))}")
    failed: list[Path] = []
    for path in files:
        if not path.is_file():
            raise InputError(f"attestation file not found: {path}")
        try:
            found = verify_attestation(path.read_bytes(), key)
            matched = f", {check_files(found.statement, artifact)} files match {artifact}" if artifact else ""
            if log is not None:
                matched += f", agrees with update {check_in_bundle(found, key_id(key), *log)} in {bundle}"
        except ClgateError as exc:
            raise type(exc)(f"{path}: {exc}") from None
        subjects = len(found.statement.subject)
        typer.echo(f"ok: {path}: {found.kind} {found.result}, {subjects} subjects{matched}")
        if found.result != "PASSED":
            failed.append(path)
    if failed and not allow_failed:
        raise IntegrityError(
            f"{len(failed)} attestation(s) valid but not PASSED (first: {failed[0]}): the audit did not pass"
        )


@ledger_app.command("checkpoint")
def checkpoint(
    key: KeyOpt,
    out: Annotated[Path, typer.Option(help="Checkpoint file to write (C2SP signed note).")],
    trust: TrustOpt,
    db: Db = DEFAULT_DB,
    passphrase_env: PassEnv = None,
) -> None:
    """Sign the current tree head (gate key); keep the file to prove later the log only grew."""
    from clgate.ledger.checkpoint import save_checkpoint
    from clgate.ledger.log import Ledger
    from clgate.ledger.trust import load_trust

    signer = _signer(key, passphrase_env)
    writable_file(out, "--out")  # before the checkpoint is stored
    with Ledger.open(db, load_trust(trust)) as ledger:
        _verified(ledger)
        cp = ledger.checkpoint(signer)
    save_checkpoint(cp, out)
    typer.echo(f"checkpoint {out}: size {cp.size}, root {cp.root.hex()}")


@ledger_app.command("witness")
def witness(
    key: KeyOpt,
    trust: TrustOpt,
    db: Db = DEFAULT_DB,
    out: Annotated[Path | None, typer.Option(help="Also write the cosigned checkpoint here.")] = None,
    state: Annotated[
        str | None, typer.Option(help="Where this witness keeps the last head it cosigned of each log.")
    ] = None,
    passphrase_env: PassEnv = None,
) -> None:
    """Cosign the latest checkpoint (C2SP tlog-cosignature) after checking the log only grew.

    The witness verifies the whole log, refuses one that shrank or forked since the head it last
    verified (kept in --state), checks the checkpoint's root against the log, and stores its
    cosignature beside the checkpoint, under its key's name in the ledger.
    """
    from clgate.ledger.checkpoint import cosign, save_checkpoint
    from clgate.ledger.keys import key_id
    from clgate.ledger.log import Ledger
    from clgate.ledger.seen import SeenHeads
    from clgate.ledger.trust import load_trust

    signer = _signer(key, passphrase_env)
    kid = key_id(signer.public_key())
    if out is not None:
        writable_file(out, "--out")  # before the cosignature is stored
    with Ledger.open(db, load_trust(trust)) as ledger:
        report = ledger.verify_report(seen=SeenHeads(state))
        if report.problems:
            raise IntegrityError(f"refusing to cosign: {report.problems[0]}")
        name = report.ring.keys[kid].name if report.ring.has_role(kid, "witness", report.size) else ""
        if not name:
            raise InputError(f"key {kid[:16]} is not a named witness key of this ledger")
        stored = ledger.checkpoints()
        if not stored:
            raise InputError("the ledger has no checkpoint to cosign (`clgate ledger checkpoint` first)")
        latest = stored[-1]
        if report.roots.get(latest.size, ledger.root(latest.size)) != latest.root:
            raise IntegrityError(f"the checkpoint at size {latest.size} does not match the log")
        cosigned = ledger.add_cosignature(cosign(latest, signer, name))
    if out is not None:
        save_checkpoint(cosigned, out)
    typer.echo(f"cosigned checkpoint at size {cosigned.size} as {name}")


def _verified(ledger: Ledger) -> None:
    """Refuse to act on a ledger that does not verify against its trust file, or that shrank or forked
    since this machine last verified it: a bundle or a checkpoint of a cut log would vouch for the cut."""
    from clgate.ledger.seen import SeenHeads

    problems = ledger.verify(seen=SeenHeads())
    if problems:
        raise IntegrityError(f"ledger fails verification ({len(problems)} problem(s), first: {problems[0]})")


@keys_app.command("new")
def keys_new(
    name: str,
    directory: Annotated[Path, typer.Option("--dir", help="Where NAME.key and NAME.pub go.")] = Path("."),
    passphrase_env: PassEnv = None,
) -> None:
    """Generate an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub."""
    from clgate.ledger.keys import (
        generate_key,
        key_id,
        passphrase_from_env,
        save_private_key,
        save_public_key,
    )

    if not name.strip() or Path(name).name != name or name in (".", ".."):
        raise InputError(f"key name {name!r} is not a plain file name (--dir says where the key goes)")
    private, public = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private, public):
        if path.exists():
            raise InputError(f"{path} exists; refusing to overwrite a key")
    key = generate_key()
    save_private_key(key, private, passphrase_from_env(passphrase_env))
    save_public_key(key.public_key(), public)
    typer.echo(f"{name}: key id {key_id(key.public_key())}")
    typer.echo(f"wrote {private} (private, 0600) and {public}")


@keys_app.command("add")
def keys_add(
    public_key: Annotated[Path, typer.Argument(help="Public key file (PEM) to add.")],
    role: Annotated[list[str], typer.Option(help=f"Role(s): {', '.join(ROLES)}.")],
    key: KeyOpt,
    trust: TrustOpt,
    db: Db = DEFAULT_DB,
    name: Annotated[str, typer.Option(help="Name recorded with the key (unique; approvers are named).")] = "",
    passphrase_env: PassEnv = None,
) -> None:
    """Record a `key.added` entry (signed by an admin key); with a key quorum, once enough admins signed. For a
    key the ledger holds already, the roles given replace its roles (its name stays unless --name is given)."""
    from clgate.ledger.keys import key_id, load_public_key, public_key_b64
    from clgate.ledger.log import Ledger
    from clgate.ledger.trust import load_trust

    bad = [r for r in role if r not in ROLES]
    if bad:
        raise InputError(f"unknown role {bad[0]!r} (roles: {', '.join(ROLES)})")
    pub = load_public_key(public_key)
    kid, signer = key_id(pub), _signer(key, passphrase_env)
    with Ledger.open(db, load_trust(trust)) as ledger:
        _verified(ledger)
        ring = ledger.key_ring()
        held = ring.keys[kid] if ring.recorded(kid) and ring.keys[kid].revoked_at is None else None
        if held is not None and held.roles == set(role):
            # the ledger would accept it and change nothing: a rerun records no second entry
            raise InputError(f"key {kid[:16]} already holds {', '.join(sorted(role))} in this ledger")
        named = name or (held.name if held is not None else public_key.stem)
        body = {"key_id": kid, "public_key": public_key_b64(pub), "roles": role, "name": named}
        entry = ledger.append({"type": "key.added", "subject": kid, "body": body}, signer)
        now = ledger.key_ring().keys.get(kid)
        effective = now is not None and now.added_at == entry.index
    status = "in effect" if effective else "pending: another admin must sign the same addition"
    what = f"roles of key {named} ({kid[:16]}) set to" if held is not None else f"added key {kid[:16]}"
    was = f" (it held {', '.join(sorted(held.roles))})" if held is not None else ""
    typer.echo(f"{what} {', '.join(role)}{was} at entry {entry.index}, {status}")


@keys_app.command("revoke")
def keys_revoke(
    target: Annotated[str, typer.Argument(help="Key id, or a public key file.")],
    key: KeyOpt,
    trust: TrustOpt,
    db: Db = DEFAULT_DB,
    reason: Annotated[str, typer.Option(help="Why (recorded in the ledger).")] = "",
    passphrase_env: PassEnv = None,
) -> None:
    """Record a `key.revoked` entry and remember it in the (re-signed) trust file.

    Entries the key signs from then on are refused; because the trust file remembers the
    revocation, deleting it from the database does not bring the key back.
    """
    from clgate.ledger.keys import key_id, load_public_key
    from clgate.ledger.log import Ledger
    from clgate.ledger.trust import load_trust, save_trust

    kid = key_id(load_public_key(Path(target))) if Path(target).is_file() else target.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", kid):
        raise InputError(f"{target}: neither a public key file nor a key id (64 hex digits)")
    signer = _signer(key, passphrase_env)
    anchors = load_trust(trust)
    # the trust file must take the revocation too (or a truncated log brings the key back): check now that
    # this key may re-sign it and that it can be written, before the ledger records anything
    anchors.with_revocation(kid, 0).sign(signer)
    writable_file(Path(trust))
    with Ledger.open(db, anchors) as ledger:
        _verified(ledger)
        known = ledger.key_ring().keys.get(kid)
        if known is not None and known.revoked_at is not None:  # a re-run: nothing new to record
            raise InputError(f"key {kid[:16]} was already revoked at entry {known.revoked_at}")
        draft = {"type": "key.revoked", "subject": kid, "body": {"key_id": kid, "reason": reason}}
        entry = ledger.append(draft, signer)
    save_trust(anchors.with_revocation(kid, entry.index), trust, signer)
    typer.echo(f"revoked key {kid[:16]} at entry {entry.index}; {trust} updated and re-signed")


@keys_app.command("sign-trust")
def keys_sign_trust(
    trust: Annotated[Path, typer.Argument(help="Trust file to sign (after editing it by hand).")],
    key: KeyOpt,
    passphrase_env: PassEnv = None,
) -> None:
    """Sign a trust file with one of its admin keys; prints the fingerprint to compare out of band."""
    from clgate.ledger.trust import load_trust, save_trust

    anchors = load_trust(trust, signed=False)
    save_trust(anchors, trust, _signer(key, passphrase_env))
    typer.echo(f"signed {trust}: fingerprint {load_trust(trust).fingerprint}")


@keys_app.command("list")
def keys_list(trust: TrustOpt, db: Db = DEFAULT_DB) -> None:
    """Keys in effect: trust-file anchors plus the ledger's key entries, with roles and status (of a ledger
    that verifies: one whose tail was cut would list a revoked key as active)."""
    from clgate.ledger.log import Ledger
    from clgate.ledger.trust import load_trust

    with Ledger.open(db, load_trust(trust)) as ledger:
        _verified(ledger)
        ring = ledger.key_ring()
    for kid, state in ring.keys.items():
        status = f"revoked at entry {state.revoked_at}" if state.revoked_at is not None else "active"
        typer.echo(f"{kid[:16]}  {state.name or '-':<12} {','.join(sorted(state.roles)):<24} {status}")
