"""`clgate audit run|serve|fleet|pending`: deployment-time audits (of one deployment, or of every deployment's
memory at once), and the re-audits a base upgrade calls for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from clgate.audit.fanout import (
    ReauditOutcome,
    ReauditSettings,
    ScheduledOutcome,
    run_reaudits,
    run_scheduled,
)
from clgate.audit.gate_cli import KeyOpt, LedgerOpt, TrustOpt, open_journal, progress
from clgate.audit.policy import load_policy
from clgate.audit.schedule import parse_interval, scheduled_audit, serve
from clgate.audit.workers import Workers
from clgate.errors import ClgateError, InputError
from clgate.ledger import Decision
from clgate.runtime.cli import DEVICE, DTYPE
from clgate.typer_app import typer_app

audit_app = typer_app(help="Deployment-time audits of what is actually deployed.", no_args_is_help=True)
err = Console(stderr=True)

WorkersOpt = typer.Option(2, "--workers", help="local worker processes (0: one job after another here)")
RayOpt = typer.Option(None, "--ray", help="a Ray cluster address, or `local` to start one for the run")
RetriesOpt = typer.Option(1, "--retries", help="times a job whose worker died runs again")
CpusPerJobOpt = typer.Option(1, "--cpus-per-job", help="with --ray: CPUs (and so threads) Ray gives each job")
DeployedOpt = typer.Option(
    ..., "--deployed", help="a deployed model directory, adapter or memory store (repeat)"
)


def fleet_exit_code(outcomes: Sequence[ReauditOutcome] | Sequence[ScheduledOutcome]) -> int:
    """One exit code for many jobs: 2 if any job recorded no audit, else the worst decision's (0/10/20)."""
    if any(o.error for o in outcomes):
        return 2
    worst = max((Decision(o.decision) for o in outcomes), key=lambda d: d.exit_code, default=Decision.PROMOTE)
    return worst.exit_code


AuditedOpt = typer.Option(
    "default", "--deployment", help="the named deployment whose promoted updates are compared"
)


def _run_once(
    deployed: list[Path],
    policy: Path | None,
    ledger: str,
    key: Path,
    trust: Path | None,
    cache: Path,
    deployment: str,
):
    loaded = load_policy(policy)
    with open_journal(ledger, key, trust) as journal:
        return scheduled_audit(journal, loaded, deployed, cache, progress, deployment)


@audit_app.command("run")
def run(
    deployed: list[Path] = DeployedOpt,
    policy: Path = typer.Option(None, help="policy TOML (its scheduled_checks are rerun)"),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
    cache: Path = typer.Option(Path(".clgate-audit-cache"), help="cache folder for check results"),
    deployment: str = AuditedOpt,
) -> None:
    """Audit what is deployed once (for cron); exit 0 clean, 10 review, 20 block."""
    result = _run_once(deployed, policy, ledger, key, trust, cache, deployment)
    for f in result.verdict.findings:
        typer.echo(f"{f.status.value:5} {f.rule}: {f.reason}")
    typer.echo(f"{result.verdict.decision.value} (recorded at entry {result.entry_index})")
    raise typer.Exit(result.verdict.decision.exit_code)


def _live(pairs: list[str]) -> dict[str, Path]:
    out = {}
    for pair in pairs:
        deployment, sep, path = pair.partition("=")
        if not sep or not deployment or not path:
            raise InputError(f"--live {pair!r}: give DEPLOYMENT=PATH")
        out[deployment] = Path(path)
    return out


@audit_app.command("fleet")
def fleet(
    live: list[str] = typer.Option(
        [], "--live", help="DEPLOYMENT=PATH: the store a deployment writes to now (repeat)"
    ),
    policy: Path = typer.Option(None, help="policy TOML (its scheduled_checks are rerun)"),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
    cache: Path = typer.Option(Path(".clgate-audit-cache"), help="cache folder for check results"),
    workers: int = WorkersOpt,
    ray: str = RayOpt,
    retries: int = RetriesOpt,
    cpus_per_job: int = CpusPerJobOpt,
) -> None:
    """Audit the memory store of every deployment once (for cron), one job each, each recorded as its own
    scheduled run: a store is found at --live, else where its promoted snapshot was proposed. Exit 0/10/20 by
    the worst decision, 2 if any deployment's audit recorded nothing."""
    outcomes = run_scheduled(
        ledger, trust, key, policy, cache, _live(live), Workers(workers, ray, retries, cpus_per_job)
    )
    if not outcomes:
        typer.echo("no deployment runs a promoted memory")
    for o in outcomes:
        typer.echo(
            f"{o.deployment:16} {o.decision or 'no audit':8} "
            + (o.error or f"(entry {o.entry_index}, {o.store})")
        )
    raise typer.Exit(fleet_exit_code(outcomes))


@audit_app.command("serve")
def serve_command(
    deployed: list[Path] = DeployedOpt,
    every: str = typer.Option("6h", help="interval: 30s, 15m, 6h, 1d"),
    policy: Path = typer.Option(None),
    ledger: str = LedgerOpt,
    key: Path = KeyOpt,
    trust: Path = TrustOpt,
    cache: Path = typer.Option(Path(".clgate-audit-cache")),
    deployment: str = AuditedOpt,
) -> None:
    """Audit what is deployed now and then on an interval, until SIGTERM."""
    interval = parse_interval(every)

    def once() -> None:
        result = _run_once(deployed, policy, ledger, key, trust, cache, deployment)
        err.print(f"scheduled audit: {result.verdict.decision.value} (entry {result.entry_index})")

    def on_error(exc: Exception) -> None:
        message = str(exc) if isinstance(exc, ClgateError) else f"{type(exc).__name__}: {exc}"
        err.print(f"scheduled audit failed: {message}")

    serve(once, interval, on_error)
    err.print("stopped")


@audit_app.command("pending")
def pending(
    ledger: str = LedgerOpt,
    trust: Path = TrustOpt,
    run: bool = typer.Option(False, "--run", help="re-gate every stale update now"),
    proposer_key: Path = typer.Option(None, help="with --run: the pipeline key that proposes them again"),
    gate_key: Path = typer.Option(None, help="with --run: the gate key that audits them"),
    policy: Path = typer.Option(None, help="with --run: the adopted policy to judge by (default policy)"),
    out: Path = typer.Option(Path("clgate-reaudits"), help="with --run: a report folder per update here"),
    cache: Path = typer.Option(None, help="with --run: check cache shared by the jobs"),
    workers: int = WorkersOpt,
    ray: str = RayOpt,
    retries: int = RetriesOpt,
    cpus_per_job: int = CpusPerJobOpt,
    device: str = DEVICE,
    dtype: str = DTYPE,
) -> None:
    """Adapters and memories built on a base their deployment no longer runs, in every deployment: each needs
    a new audit. With --run, each is proposed again on the deployed base and gated, one job per update (a
    local process pool, or Ray tasks with --ray); a job that died is retried, and a rerun finishes what an
    earlier one left unaudited. Exit 0/10/20 by the worst decision, 2 if any job recorded no audit."""
    if not run:
        with open_journal(ledger, None, trust) as journal:
            state = journal.state()
        rows = state.pending_reaudit()
        for u in rows:
            progress, latest = state.reaudit_progress(u)
            note = f"; re-audit {progress}: {latest.update_id}" if latest else ""
            typer.echo(f"{u.update_id}  {u.deployment:12} {u.kind:8} built on {u.base[:19]}…{note}")
        if not rows:
            typer.echo("nothing needs re-audit")
        return
    if proposer_key is None or gate_key is None:
        raise typer.BadParameter("--run needs --proposer-key and --gate-key")
    settings = ReauditSettings(ledger, trust, proposer_key, gate_key, out, policy, cache, device, dtype)

    where = Workers(workers, ray, retries, cpus_per_job)

    def announce(stale: list) -> None:  # type: ignore[type-arg]
        err.print(f"re-auditing {len(stale)} stale update(s) on {where.where()}")

    outcomes = run_reaudits(settings, where, announce)
    table = Table(title="re-audits")
    for col in ("deployment", "kind", "stale", "re-audited as", "decision", "seconds", "note"):
        table.add_column(col)
    for o in outcomes:
        note = o.error or ("resumed" if o.resumed else f"attempt {o.attempts}")
        table.add_row(
            o.deployment, o.kind, o.stale, o.update_id or "-", o.decision or "-", f"{o.seconds:.1f}", note
        )
    Console().print(table)
    raise typer.Exit(fleet_exit_code(outcomes))
