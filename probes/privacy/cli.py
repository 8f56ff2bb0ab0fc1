"""`clgate scan privacy`: personal data in a training set and a memory store, counted and shown masked."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from clgate.errors import InputError
from clgate.probes.privacy._pii import THRESHOLD, PiiScanner
from clgate.probes.privacy._scan import privacy_scan

console = Console()


def privacy(
    data: Path = typer.Option(None, "--data", help="a training set (JSONL chat/instruction records)"),
    memory: Path = typer.Option(None, "--memory", help="a memory store (JSONL or SQLite): every entry"),
    ner_model: str = typer.Option(
        None, "--ner-model", help="an installed spaCy pipeline (package or folder) for names and places"
    ),
    threshold: float = typer.Option(THRESHOLD, "--threshold", help="Presidio's score a span needs"),
    top: int = typer.Option(10, "--top", help="spans to show"),
    out: Path = typer.Option(None, "--out", help="write the measurement (masked spans only) as JSON here"),
) -> None:
    """Personal data in update data or memory: e-mails, phones, cards, IBANs, national ids, IPs (and names
    and places with --ner-model). Values are shown masked; exit 1 when any is found."""
    if data is None and memory is None:
        raise InputError("give --data, --memory or both")
    with console.status("scanning for personal data…"):
        measurement = privacy_scan(data, memory, scanner=PiiScanner(ner_model, threshold))
    table = Table(title="personal data")
    for col in ("kind", *(s for s in ("data", "memory") if f"{s}.emails" in measurement.numbers)):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind in measurement.meta["kinds"]:
        table.add_row(
            kind,
            *(
                f"{measurement.numbers[f'{s}.{kind}']:.0f}"
                for s in ("data", "memory")
                if f"{s}.{kind}" in measurement.numbers
            ),
        )
    console.print(table)
    for row in measurement.details[:top]:
        console.print(
            f"{row['source']} {row['item']} {row['field']}: {row['kind']} {row['masked']}", highlight=False
        )
    if out is not None:
        measurement.write(out)
        console.print(f"wrote {out}")
    found = measurement.numbers["items_with_personal_data"]
    console.print(f"{found:.0f} of {measurement.numbers['items_scanned']:.0f} items carry personal data")
    raise typer.Exit(1 if found else 0)
