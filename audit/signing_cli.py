"""`clgate sign`: an OpenSSF model signature of a promoted artifact, recorded in the ledger."""

from __future__ import annotations

from pathlib import Path

import typer

from clgate.audit.gate_cli import LedgerOpt, TrustOpt, open_journal
from clgate.audit.signing import sign_release
from clgate.errors import InputError
from clgate.ledger import PASSPHRASE_ENV, passphrase_from_env


def sign(
    artifact: Path = typer.Argument(..., help="the promoted artifact (model folder, adapter folder or file)"),
    oms_key: Path = typer.Option(
        ..., "--oms-key", help="EC private key (PEM; P-256, P-384 or P-521) that makes the OMS signature"
    ),
    oms_passphrase_env: str = typer.Option(
        None, help=f"environment variable holding the OMS key's passphrase (default: ${PASSPHRASE_ENV})"
    ),
    signature: Path = typer.Option(
        None, "--signature", help="where to write the signature (default: ARTIFACT.sig beside it)"
    ),
    ledger: str = LedgerOpt,
    key: Path = typer.Option(
        ...,
        "--key",
        help=f"an approver's ledger key (PEM) that signs the record; passphrase from ${PASSPHRASE_ENV}",
    ),
    trust: Path = TrustOpt,
) -> None:
    """Sign a promoted artifact with model_signing's format and record `artifact.signed` (approver key).

    Refused unless the files re-hash to the digest the ledger promoted and that promotion was not
    rolled back. Check it anywhere with `model_signing verify key --signature SIG --public_key PUB ARTIFACT`.
    """
    if not artifact.exists():
        raise InputError(f"{artifact}: no such file or directory")
    out = signature or artifact.parent / f"{artifact.resolve().name}.sig"
    with open_journal(ledger, key, trust) as journal:
        release = sign_release(journal, artifact, oms_key, passphrase_from_env(oms_passphrase_env), out)
    typer.echo(
        f"signed update {release.update.update_id} ({release.update.candidate_digest}) at entry {release.index}: "
        f"{release.signature} {release.record.digest}, key {release.record.key}"
    )
