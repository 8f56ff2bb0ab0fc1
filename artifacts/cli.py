"""`clgate manifest` and `clgate models`: inspect artifacts and prepare the embedded models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from clgate.artifacts._cache import default_cache_dir
from clgate.artifacts._embedded import (
    EMBEDDED_MODEL_ROOT,
    embedded_gguf_path,
    embedded_model_dir,
    embedder_dir,
)
from clgate.artifacts._manifest import artifact_files, compute_manifest
from clgate.artifacts._records import ArtifactKind
from clgate.json_output import write_json_output
from clgate.typer_app import typer_app

models_app = typer_app(help="The models clgate ships with.", no_args_is_help=True)
console = Console()


def manifest(
    path: Path = typer.Argument(..., help="model directory, .gguf, adapter, memory store or dataset"),
    kind: ArtifactKind | None = typer.Option(None, help="override the detected artifact kind"),
    json_out: Path | None = typer.Option(
        None, "--json", help="write the whole manifest as JSON here ('-' for stdout)"
    ),
) -> None:
    """Compute an artifact's content manifest (per-file and per-tensor SHA-256, root digest)."""
    total = sum(f.stat().st_size for f in artifact_files(path))
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=total < 256 * 1024 * 1024,
    ) as progress:
        task = progress.add_task("hashing", total=total)
        result = compute_manifest(path, kind, progress=lambda n: progress.advance(task, n))
    if json_out is not None and not write_json_output(result.model_dump_json(indent=2), json_out):
        return
    table = Table(title=f"{result.kind.value} manifest of {path}")
    for col in ("file", "bytes", "sha256", "tensors"):
        table.add_column(col, justify="right" if col in ("bytes", "tensors") else "left")
    for f in result.files:
        table.add_row(f.path, f"{f.size:,}", f.sha256[:16] + "…", str(len(f.tensors)) if f.tensors else "")
    console.print(table)
    typer.echo(f"root {result.root}")


@models_app.command("pull-embedded")
def pull_embedded(cache: Path = typer.Option(None, help="cache directory (default: $CLGATE_CACHE)")) -> None:
    """Dequantise the embedded SmolLM2-135M-Instruct into the cache and check the embedder is present."""
    with console.status("preparing SmolLM2-135M-Instruct (dequantising once)…"):
        model_dir = embedded_model_dir(cache or default_cache_dir())
    root = compute_manifest(model_dir, tensors=False).root
    recorded = (
        "as recorded"
        if root == EMBEDDED_MODEL_ROOT
        else f"recorded {EMBEDDED_MODEL_ROOT}: not the locked libraries"
    )
    typer.echo(f"model     {model_dir}")
    typer.echo(f"root      {root} ({recorded})")
    typer.echo(f"gguf      {embedded_gguf_path()}")
    typer.echo(f"embedder  {embedder_dir()}")
