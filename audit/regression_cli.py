"""`clgate eval history`: the accuracy matrix of a deployment's promoted tasks, read from the ledger."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from clgate.atomic import write_text_atomic
from clgate.audit.gate_cli import LedgerOpt, TrustOpt, open_journal
from clgate.audit.regression import accuracy_history, task_owners
from clgate.evals import continual_metrics


def history(
    ledger: str = LedgerOpt,
    trust: Path = TrustOpt,
    deployment: str = typer.Option("default", help="the named deployment"),
    json_out: Path = typer.Option(None, "--json", help="also write the matrix and metrics as JSON here"),
) -> None:
    """R[i][j]: the promoted model of task i on the target set of task j, as each audit recorded it;
    backward transfer and forgetting after the last one. Tasks are the promoted updates that brought
    a target set (`--target`), in promotion order."""
    with open_journal(ledger, None, trust) as journal:
        state = journal.state()
        owners = task_owners(state, deployment)
        matrix = accuracy_history(state, journal.evidence, owners)
    if not owners:
        typer.echo(f"deployment {deployment!r} has promoted no update with a target set yet")
        return
    ids = [u.update_id for u in owners]
    table = Table(title=f"accuracy matrix of deployment {deployment!r} (row: after update; column: its task)")
    table.add_column("after update")
    for uid in ids:
        table.add_column(uid[:8], justify="right")
    for uid, row in zip(ids, matrix, strict=True):
        table.add_row(uid, *("·" if math.isnan(v) else f"{v:.3f}" for v in row))
    Console().print(table)
    metrics = continual_metrics(matrix)
    typer.echo(", ".join(f"{k.removeprefix('continual.')} {v:.3f}" for k, v in metrics.items()))
    if json_out is not None:
        rows = [[None if math.isnan(v) else v for v in row] for row in matrix]
        write_text_atomic(json_out, json.dumps({"tasks": ids, "matrix": rows, "metrics": metrics}, indent=2))
