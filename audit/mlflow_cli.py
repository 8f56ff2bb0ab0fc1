"""`clgate mlflow gate` and `clgate mlflow promote`: the gate in front of an MLflow Model Registry.

The pipeline registers a version; the gate downloads and audits it like any other update; an
approver's `promote` records `promotion.done` and only then moves the alias. The tracking server
is asked with MLflow's own settings ($MLFLOW_TRACKING_TOKEN, $MLFLOW_HTTP_REQUEST_MAX_RETRIES, ...).
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from clgate.artifacts import ArtifactKind, detect_kind
from clgate.audit.ci_formats import OutputFormat
from clgate.audit.gate import GateRequest, GateRun, check_policy, gate_seal, propose, run_gate
from clgate.audit.gate_cli import (
    AnchorOpt,
    CacheOpt,
    DataOpt,
    DeploymentOpt,
    FormatOpt,
    GateKeyOpt,
    JunitOpt,
    KeyOpt,
    LedgerOpt,
    OutOpt,
    ParentOpt,
    PolicyOpt,
    SeedOpt,
    TargetOpt,
    TrustOpt,
    ci_outputs,
    finish_gate,
    open_journal,
    progress,
)
from clgate.audit.journal import signing_key
from clgate.audit.mlflow_flavour import check_served_as_judged, version_files
from clgate.audit.mlflow_registry import Registry, VersionRef, promote_version, rollback_to_version
from clgate.audit.policy import load_policy
from clgate.errors import InputError
from clgate.runtime.cli import DEVICE, DTYPE
from clgate.typer_app import typer_app

mlflow_app = typer_app(
    help="Gate MLflow registered model versions; their alias moves only through the ledger.",
    no_args_is_help=True,
)

ModelUriOpt = typer.Option(..., "--model-uri", help="models:/NAME/VERSION (a version number, not an alias)")
TrackingOpt = typer.Option(
    ...,
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    help="the MLflow tracking server holding the registry",
)
# MLflow refuses these as alias names; checked before the ledger records a promotion
_ALIAS = re.compile(r"^(?!latest$)(?![vV][0-9]+$)[A-Za-z0-9_-]{1,255}$")
AliasOpt = typer.Option("champion", help="the registered model's alias to point at this version")
DownloadOpt = typer.Option(
    None, "--download-dir", help="where the artifacts are re-hashed (default: a temp folder)"
)


def _version_and_alias(model_uri: str, alias: str) -> VersionRef:
    """Both checked before the ledger records anything: MLflow would refuse the alias after it had."""
    ref = VersionRef.parse(model_uri)
    if not _ALIAS.match(alias):
        raise InputError(f"--alias {alias!r}: letters, digits, _ and -, and not 'latest' or v<number>")
    return ref


@mlflow_app.command("gate")
def gate(
    model_uri: str = ModelUriOpt,
    tracking_uri: str = TrackingOpt,
    parent: Path = ParentOpt,
    data: Path = DataOpt,
    target: Path = TargetOpt,
    deployment: str = DeploymentOpt,
    proposer_key: Path = typer.Option(..., help="pipeline key: proposes the version in this same run"),
    anchor: Path = AnchorOpt,
    policy: Path = PolicyOpt,
    ledger: str = LedgerOpt,
    key: Path = GateKeyOpt,
    trust: Path = TrustOpt,
    out: Path = OutOpt,
    download: Path = typer.Option(
        None, "--download-dir", help="where the artifacts go (default: OUT/mlflow)"
    ),
    cache: Path = CacheOpt,
    seed: int = SeedOpt,
    fmt: OutputFormat = FormatOpt,
    junit: Path = JunitOpt,
    device: str = DEVICE,
    dtype: str = DTYPE,
) -> None:
    """Download a registered version, propose it (recording its URI, name, version and run id) and gate it.

    Its artifacts are a PEFT adapter (adapter_config.json) or a full model (config.json) for the
    parent, at their root or logged with MLflow's transformers flavour. Exit 0 promote, 10 review, 20 block, 2 bad input or MLflow unreachable (nothing recorded).
    """
    ref = VersionRef.parse(model_uri)
    loaded_policy = load_policy(policy)
    run = GateRun(out_dir=out, cache_dir=cache, seed=seed, device=device, dtype=dtype)
    run.placement()
    summary = ci_outputs(junit)
    with open_journal(ledger, key, trust) as journal:
        check_policy(loaded_policy, journal, [deployment])
        registry = Registry(tracking_uri)
        version = registry.version(ref)
        folder = re.sub(r"[^A-Za-z0-9._-]", "_", f"{ref.name}-v{ref.version}")
        files = version_files(registry.download(version, (download or out / "mlflow") / folder), ref.uri)
        if parent is not None:  # without it, the proposal below says --parent is required
            check_served_as_judged(files, parent, ref.uri)
        role = "adapter" if detect_kind(files.candidate) is ArtifactKind.ADAPTER else "candidate"
        request = GateRequest(
            parent=parent,
            data=data,
            target=target,
            deployment=deployment,
            anchor=anchor,
            pipeline={**version.pipeline(), **files.pipeline()},
            **{role: files.candidate},
        )
        proposed = propose(
            request, journal.as_signer(signing_key(proposer_key)), run, progress, gate_seal(journal)
        )
        update = proposed.proposal.update_id
        result = run_gate(update, loaded_policy, journal, run, request, proposed.manifests, progress)
    finish_gate(result, fmt, junit, summary, out)


@mlflow_app.command("promote")
def promote(
    model_uri: str = ModelUriOpt,
    tracking_uri: str = TrackingOpt,
    alias: str = AliasOpt,
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
    download: Path = DownloadOpt,
    deployment: str = DeploymentOpt,
) -> None:
    """Promote a gated version (approver key), re-hashing its artifacts first, then tag it and set the alias.

    Refused (nothing recorded, alias untouched) for a version this ledger never gated, one it blocked
    or rolled back, a review without its approvals, or artifacts that changed since the gate.
    """
    ref = _version_and_alias(model_uri, alias)
    with open_journal(ledger, key, trust) as journal:
        promoted = promote_version(journal, Registry(tracking_uri), ref, alias, deployment, download)
    typer.echo(
        f"promoted {ref.uri} (update {promoted.update.update_id}, deployment {deployment!r}) at entry "
        f"{promoted.promotion_index}; alias {alias!r} set"
    )


@mlflow_app.command("rollback")
def rollback(
    model_uri: str = ModelUriOpt,
    reason: str = typer.Option(..., help="why"),
    tracking_uri: str = TrackingOpt,
    alias: str = AliasOpt,
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
    download: Path = DownloadOpt,
    deployment: str = DeploymentOpt,
) -> None:
    """Roll the ledger back to a version promoted earlier (re-hashing its artifacts first), then point the
    alias at it again and tag the version it replaces with the rollback entry.

    Refused (nothing recorded, alias untouched) for a version never deployed, blocked, rolled back already,
    built on another base, or whose artifacts changed since its audit.
    """
    ref = _version_and_alias(model_uri, alias)
    with open_journal(ledger, key, trust) as journal:
        restored = rollback_to_version(
            journal, Registry(tracking_uri), ref, alias, reason, deployment, download
        )
    typer.echo(
        f"rolled back to {ref.uri} (update {restored.update.update_id}, deployment {deployment!r}) at entry "
        f"{restored.promotion_index}; alias {alias!r} set"
    )
