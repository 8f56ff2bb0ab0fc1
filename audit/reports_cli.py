"""`clgate report` and `clgate dashboard`: the two ways the ledger is handed to people."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import typer

from clgate.audit.compliance import ReportFormat, build_report, parse_day, write_report
from clgate.audit.gate_cli import LedgerOpt, TrustOpt, open_journal
from clgate.audit.journal import require_trust
from clgate.errors import InputError


def report(
    ledger: str = LedgerOpt,
    start: str = typer.Option(..., "--from", help="first UTC day of the period (YYYY-MM-DD)"),
    end: str = typer.Option(..., "--to", help="last UTC day of the period (YYYY-MM-DD)"),
    fmt: ReportFormat = typer.Option(ReportFormat.html, "--format", help="what to write"),
    out: Path = typer.Option(..., "--out", help="file to write"),
    trust: Path = TrustOpt,
) -> None:
    """Write a compliance report for a period: updates, evidence, scheduled audits, proofs, mapping."""
    first, last = parse_day(start, "--from"), parse_day(end, "--to")
    with open_journal(ledger, None, trust) as journal:
        built = build_report(journal, first, last, ledger)
    write_report(built, fmt, out)
    c = built.counts
    typer.echo(
        f"{out}: {len(built.updates)} update(s), {c['audited']} audit(s), {c['blocked']} blocked, "
        f"{c['promoted']} promoted, {c['rolled_back']} rolled back, {c['scheduled_runs']} scheduled audit(s)"
    )


def dashboard_app_path() -> Path:
    """The dashboard's script, found without importing the layer above audit."""
    spec = importlib.util.find_spec("clgate.dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the clgate dashboard package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def dashboard(
    ledger: str = LedgerOpt,
    trust: Path = TrustOpt,
    users: Path = typer.Option(None, "--users", help="users TOML (without it: read-only, no login)"),
    port: int = typer.Option(8501, "--port"),
    address: str = typer.Option(
        "127.0.0.1", "--address", help="interface to listen on (default: this machine only; 0.0.0.0: all)"
    ),
) -> None:
    """Open the auditor dashboard on http://ADDRESS:PORT (this machine only unless --address says otherwise)."""
    require_trust(trust)
    if "://" not in ledger and not Path(ledger).is_file():
        raise InputError(f"{ledger}: no such ledger (create one with `clgate ledger init` or `clgate demo`)")
    if users is not None and not users.is_file():
        raise InputError(f"{users}: no such users file")
    args = ["--ledger", ledger]
    for flag, value in (("--trust", trust), ("--users", users)):
        if value is not None:
            args += [flag, str(value)]
    command = [sys.executable, "-m", "streamlit", "run", str(dashboard_app_path())]
    command += ["--server.port", str(port), "--server.address", address, "--server.headless", "true"]
    command += ["--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer", "--", *args]
    raise typer.Exit(subprocess.call(command))
