"""`clgate report`: the ledger over a period, handed to a regulator or an auditor."""

from __future__ import annotations

from pathlib import Path

import typer

from clgate.audit.compliance import ReportFormat, build_report, parse_day, write_report
from clgate.audit.gate_cli import LedgerOpt, TrustOpt, open_journal


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
