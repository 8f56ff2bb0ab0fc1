"""`clgate scan {data,model,memory}`: score every item for poisoning, print a summary, write the scores."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from clgate.probes.poison.scan import ScanReport, read_lines, scan_data, scan_memory, scan_model
from clgate.progress_bar import ProgressBar
from clgate.runtime import ModelPool, ServedPair
from clgate.runtime.cli import (
    DEVICE,
    DTYPE,
    SERVED_CANDIDATE,
    SERVED_CONCURRENCY,
    SERVED_PARENT,
    SERVED_TIMEOUT,
)
from clgate.typer_app import typer_app

scan_app = typer_app(
    help="Poisoning detectors (update data, updated models, memory stores) and personal data.",
    no_args_is_help=True,
)
console = Console()

OUT = typer.Option(None, "--out", help="directory for per-item scores (CSV) and measurements (JSON)")
TOP = typer.Option(3, "--top", help="most suspicious items to show per detector")


def _print(report: ScanReport, out: Path | None, top: int) -> None:
    table = Table(title=f"poisoning scan ({report.kind}) of {report.target}")
    for col in ("detector", "items", "flagged", "max score", "threshold", "seconds"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    for r in report.results:
        table.add_row(
            r.name,
            str(len(r.scores)),
            str(int(r.flagged.sum())),
            f"{r.scores.max(initial=0):.3g}",
            f"{r.threshold:.3g}",
            f"{r.seconds:.2f}",
        )
    console.print(table)
    for r in report.results:
        for row in r.rows()[:top]:
            mark = "[red]FLAG[/]" if row["flagged"] else "    "
            console.print(
                f"{mark} {r.name} item {row['item']} score {row['score']:.3g}: {row['reason']}",
                highlight=False,
            )
        for t in r.triggers[:5]:
            extra = {k: v for k, v in t.items() if k != "trigger"}
            console.print(f"[bold]trigger[/] {t['trigger']!r} ({r.name}): {extra}", highlight=False)
    for name, why in report.skipped.items():
        console.print(f"skipped {name}: {why}")
    if report.timings.get("forward_seconds"):
        console.print(f"parent forward passes: {report.timings['forward_seconds']:.1f}s")
    if out is not None:
        written = report.write(out)
        console.print(f"wrote {len(written)} files to {out}")


@scan_app.command("data")
def data(
    dataset: Path = typer.Argument(..., help="the update's training set (JSONL chat/instruction records)"),
    model: Path = typer.Option(..., "--model", help="the parent model (HF directory or .gguf)"),
    adapter: Path = typer.Option(None, "--adapter", help="LoRA adapter already in the parent, if any"),
    detector: list[str] = typer.Option(None, "--detector", help="run only these data detectors"),
    layer: int = typer.Option(None, "--layer", help="hidden layer for representations (default: 2/3 depth)"),
    max_tokens: int = typer.Option(128, "--max-tokens", help="tokens per item (longer items are cut)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="recompute representations"),
    out: Path = OUT,
    top: int = TOP,
    device: str = DEVICE,
    dtype: str = DTYPE,
) -> None:
    """Score each training item: spectral, activation clustering, loss outliers, trigger mining, duplicates."""
    with ProgressBar("scanning update data") as bar:
        report = scan_data(
            dataset,
            model,
            adapter,
            detector,
            layer,
            max_tokens,
            False if no_cache else None,
            device=device,
            dtype=dtype,
            advance=bar,
        )
    _print(report, out, top)


@scan_app.command("model")
def model(
    parent: Path = typer.Argument(..., help="the parent model"),
    candidate: Path = typer.Argument(..., help="the candidate model (or the parent again with --adapter)"),
    adapter: Path = typer.Option(None, "--adapter", help="LoRA adapter applied to the candidate"),
    data: Path = typer.Option(
        None, "--data", help="the update's training set, to mine candidate triggers from"
    ),
    triggers: Path = typer.Option(None, "--triggers", help="file of candidate triggers, one per line"),
    prompts: Path = typer.Option(None, "--prompts", help="file of probe prompts, one per line"),
    token_scan: bool = typer.Option(
        True, help="also sweep the two-letter tokens that move the candidate most (no data needed)"
    ),
    out: Path = OUT,
    top: int = TOP,
    device: str = DEVICE,
    dtype: str = DTYPE,
    served_parent: str = SERVED_PARENT,
    served_candidate: str = SERVED_CANDIDATE,
    served_concurrency: int = SERVED_CONCURRENCY,
    served_timeout: float = SERVED_TIMEOUT,
) -> None:
    """Trigger sweep: which inserted triggers move the candidate away from the parent.

    With `--served-*`, both models answer from their servers (top-20 first-token log-probs there).
    """
    pair = ServedPair.of(served_parent, served_candidate, served_concurrency, served_timeout)
    with ProgressBar("sweeping triggers") as bar, ModelPool() as pool:
        pool.serve_pair(parent, candidate, adapter, pair)
        report = scan_model(
            parent,
            candidate,
            adapter,
            read_lines(triggers, "triggers") if triggers else None,
            read_lines(prompts, "prompts") if prompts else None,
            data,
            scan_tokens=token_scan,
            device=device,
            dtype=dtype,
            pool=pool,
            advance=bar,
        )
    _print(report, out, top)


@scan_app.command("memory")
def memory(
    store: Path = typer.Argument(..., help="memory store (JSONL or SQLite)"),
    queries: Path = typer.Option(
        None, "--queries", help="unrelated queries, one per line (default: bundled set)"
    ),
    instances: list[Path] = typer.Option(None, "--instances", help="other instances' stores, for spread"),
    trusted: list[str] = typer.Option(
        None, "--trusted-source", help="source prefixes that count as provenance"
    ),
    detector: list[str] = typer.Option(None, "--detector", help="run only these memory detectors"),
    out: Path = OUT,
    top: int = TOP,
) -> None:
    """Score each memory entry: injected instructions, retrieval hubness, provenance gaps, spread."""
    with console.status("scanning memory…"):
        report = scan_memory(store, queries, instances or (), detector, trusted or ())
    _print(report, out, top)
