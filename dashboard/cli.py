"""`clgate dashboard`: the auditor dashboard, started as a Streamlit server once its input is known good."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from clgate.audit.gate_cli import LedgerOpt, TrustOpt
from clgate.audit.journal import require_trust
from clgate.dashboard.users import load_users
from clgate.errors import InputError
from clgate.reachable import check_listenable


def dashboard_app_path() -> Path:
    """The dashboard's Streamlit script."""
    return Path(__file__).with_name("app.py")


def dashboard(
    ledger: str = LedgerOpt,
    trust: Path = TrustOpt,
    users: Path = typer.Option(None, "--users", help="users TOML (without it: read-only, no login)"),
    port: int = typer.Option(8501, "--port", min=1, max=65535),
    address: str = typer.Option(
        "127.0.0.1", "--address", help="interface to listen on (default: this machine only; 0.0.0.0: all)"
    ),
) -> None:
    """Open the auditor dashboard on http://ADDRESS:PORT (this machine only unless --address says otherwise)."""
    require_trust(trust)
    if "://" not in ledger and not Path(ledger).is_file():
        raise InputError(f"{ledger}: no such ledger (create one with `clgate ledger init` or `clgate demo`)")
    if users is not None:
        load_users(users)  # a malformed file is one line now, not a traceback in the server's first page
    check_listenable(address, port, "the dashboard")
    args = ["--ledger", ledger]
    for flag, value in (("--trust", trust), ("--users", users)):
        if value is not None:
            args += [flag, str(value)]
    command = [sys.executable, "-m", "streamlit", "run", str(dashboard_app_path())]
    command += ["--server.port", str(port), "--server.address", address, "--server.headless", "true"]
    command += ["--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer", "--", *args]
    raise typer.Exit(subprocess.call(command))
