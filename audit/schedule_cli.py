"""`clgate audit run|serve|pending`: deployment-time audits and the re-audit list."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from clgate.audit.gate_cli import KeyOpt, LedgerOpt, TrustOpt, open_journal
from clgate.audit.policy import load_policy
from clgate.audit.schedule import parse_interval, scheduled_audit, serve
from clgate.errors import ClgateError

audit_app = typer.Typer(help="Deployment-time audits of what is actually deployed.", no_args_is_help=True)
err = Console(stderr=True)

DeployedOpt = typer.Option(
    ..., "--deployed", help="a deployed model directory, adapter or memory store (repeat)"
)


def _run_once(
    deployed: list[Path], policy: Path | None, ledger: str, key: Path, trust: Path | None, cache: Path
):
    loaded = load_policy(policy)
    with open_journal(ledger, key, trust) as journal:
        return scheduled_audit(journal, loaded, deployed, cache, lambda n, w: err.print(f"  {n}: {w}"))


@audit_app.command("run")
def run(
    deployed: list[Path] = DeployedOpt,
    policy: Path = typer.Option(None, help="policy TOML (its scheduled_checks are rerun)"),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
    cache: Path = typer.Option(Path(".clgate-audit-cache"), help="cache folder for check results"),
) -> None:
    """Audit what is deployed once (for cron); exit 0 clean, 10 review, 20 block."""
    result = _run_once(deployed, policy, ledger, key, trust, cache)
    for f in result.verdict.findings:
        typer.echo(f"{f.status.value:5} {f.rule}: {f.reason}")
    typer.echo(f"{result.verdict.decision.value} (recorded at entry {result.entry_index})")
    raise typer.Exit(result.verdict.decision.exit_code)


@audit_app.command("serve")
def serve_command(
    deployed: list[Path] = DeployedOpt,
    every: str = typer.Option("6h", help="interval: 30s, 15m, 6h, 1d"),
    policy: Path = typer.Option(None),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
    cache: Path = typer.Option(Path(".clgate-audit-cache")),
) -> None:
    """Audit what is deployed now and then on an interval, until SIGTERM."""
    interval = parse_interval(every)

    def once() -> None:
        result = _run_once(deployed, policy, ledger, key, trust, cache)
        err.print(f"scheduled audit: {result.verdict.decision.value} (entry {result.entry_index})")

    def on_error(exc: Exception) -> None:
        message = str(exc) if isinstance(exc, ClgateError) else f"{type(exc).__name__}: {exc}"
        err.print(f"scheduled audit failed: {message}")

    serve(once, interval, on_error)
    err.print("stopped")


@audit_app.command("pending")
def pending(ledger: str = LedgerOpt, trust: Path = TrustOpt) -> None:
    """Adapters and memories built on a base that is no longer deployed: they need a new audit."""
    with open_journal(ledger, None, trust) as journal:
        rows = journal.state().pending_reaudit()
    for u in rows:
        typer.echo(f"{u.update_id}  {u.kind:8} built on {u.base}  (proposed at entry {u.proposed_index})")
    if not rows:
        typer.echo("nothing needs re-audit")
