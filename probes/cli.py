"""`clgate diff {weights,serving,activations,memory,spread}`: print a summary table, optionally write the JSON.

With `--json OUT.json` the measurement is written atomically, after every number is computed, and its
figures go beside it as `OUT.html` (plus one shared `plotly.min.js`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from clgate.artifacts import ArtifactKind, detect_kind
from clgate.measurement import Measurement
from clgate.progress_bar import ProgressBar
from clgate.runtime.cli import DEVICE, DTYPE
from clgate.typer_app import typer_app

diff_app = typer_app(
    help="What an update changed: weights, the files around them, activations, memory.", no_args_is_help=True
)
console = Console(width=None if sys.stdout.isatty() else 150)  # piped output: wide tables, unwrapped names

JSON = typer.Option(None, "--json", help="write the measurement here (figures go beside it as .html)")
TOP = typer.Option(10, "--top", help="rows to show in the summary")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        numeric = all(isinstance(row[i], int | float) for row in rows if row[i] is not None)
        table.add_column(col, justify="right" if numeric and i > 0 else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_fmt(v) for v in row))
    return table


def _finish(m: Measurement, json_out: Path | None, hide: tuple[str, ...] = ()) -> None:
    shown = [(k, v) for k, v in m.numbers.items() if not k.startswith(hide)]
    console.print(_table(f"{m.name} numbers", ("number", "value"), shown))
    if json_out is not None:
        m.write(json_out)
        console.print(f"wrote {json_out}" + (f" and {len(m.evidence)} evidence files" if m.evidence else ""))


def _evidence(json_out: Path | None) -> Path | None:
    return json_out.with_suffix(".html") if json_out is not None else None


@diff_app.command("weights")
def weights(
    parent: Path = typer.Argument(..., help="parent model (HF directory or .gguf)"),
    candidate: Path = typer.Argument(..., help="candidate model, or a PEFT LoRA adapter for the parent"),
    top_k: int = typer.Option(8, "--top-k", help="singular values to keep per tensor"),
    exact_spectrum: bool = typer.Option(
        False, "--exact-spectrum", help="every singular value of every ΔW (slow for large matrices)"
    ),
    json_out: Path = JSON,
    top: int = TOP,
) -> None:
    """Per-tensor, per-layer and per-module weight change (LoRA adapters analysed from their factors)."""
    from clgate.probes.weights import lora_diff, weight_diff

    with ProgressBar("diffing weights") as bar:
        if detect_kind(candidate) == ArtifactKind.ADAPTER:
            m = lora_diff(parent, candidate, top_k=top_k, evidence=_evidence(json_out), advance=bar)
        else:
            exact = True if exact_spectrum else None
            m = weight_diff(
                parent,
                candidate,
                top_k=top_k,
                exact_spectrum=exact,
                evidence=_evidence(json_out),
                advance=bar,
            )
    rows = sorted(m.details, key=lambda r: -(r["relative_change"] or 0.0))[:top]
    console.print(
        _table(
            f"largest changes ({len(m.details)} of {int(m.numbers['weights.tensors'])} tensors changed)",
            ("tensor", "type", "‖ΔW‖", "‖ΔW‖/‖W‖", "max|ΔW|", "cos(W,W')", "σ₁", "eff.rank", "st.rank"),
            [
                (
                    r["tensor"],
                    r["module_type"],
                    r["delta_norm"],
                    r["relative_change"],
                    r["max_abs_delta"],
                    r["cosine"],
                    (r["top_singular_values"] or [None])[0],
                    r["effective_rank"],
                    r["stable_rank"],
                )
                for r in rows
            ],
        )
    )
    console.print(
        _table(
            "by module type",
            ("type", "tensors", "changed", "‖ΔW‖/‖W‖", "max ‖ΔW‖/‖W‖"),
            [
                (
                    t["module_type"],
                    t["tensors"],
                    t["tensors_changed"],
                    t["relative_change"],
                    t["max_relative_change"],
                )
                for t in m.meta["per_module_type"]
            ],
        )
    )
    _finish(m, json_out, hide=("weights.max_relative_change.", "weights.relative_change."))


@diff_app.command("serving")
def serving(
    parent: Path = typer.Argument(..., help="parent model (HF directory or .gguf)"),
    candidate: Path = typer.Argument(..., help="candidate model, or a PEFT LoRA adapter for the parent"),
    json_out: Path = JSON,
) -> None:
    """What the update ships besides its weights that a server applies: code, chat template, tokenizer,
    generation config."""
    from clgate.probes.serving import serving_diff

    m = serving_diff(parent, candidate, adapter=detect_kind(candidate) == ArtifactKind.ADAPTER)
    rows = [(r["aspect"], r["where"], r["sentence"]) for r in m.details]
    console.print(_table(f"differences from the parent ({len(rows)})", ("aspect", "where", "what"), rows))
    _finish(m, json_out)


@diff_app.command("activations")
def activations(
    parent: Path = typer.Argument(..., help="parent model (HF directory or .gguf)"),
    candidate: Path = typer.Argument(..., help="candidate model, or a PEFT LoRA adapter for the parent"),
    batch_size: int = typer.Option(32, "--batch-size", help="prompts per forward pass"),
    no_cache: bool = typer.Option(False, "--no-cache", help="recompute cached residuals"),
    json_out: Path = JSON,
    device: str = DEVICE,
    dtype: str = DTYPE,
) -> None:
    """Per-layer residual drift, CKA, logit-lens KL and refusal direction on the bundled probe prompts."""
    from clgate.probes.activations import activation_diff

    adapter = candidate if detect_kind(candidate) == ArtifactKind.ADAPTER else None
    with ProgressBar("running both models on the probe prompts") as bar:
        m = activation_diff(
            parent,
            parent if adapter else candidate,
            candidate_adapter=adapter,
            batch_size=batch_size,
            use_cache=not no_cache,
            evidence=_evidence(json_out),
            device=device,
            dtype=dtype,
            advance=bar,
        )
    console.print(
        _table(
            f"per layer at {m.meta['hook']} ({int(m.numbers['activations.prompts'])} prompts)",
            ("layer", "1−cos", "‖Δh‖/‖h‖", "CKA", "lens KL", "refusal cos", "separation", "harmful proj."),
            [
                (
                    r["layer"],
                    r["cosine_distance"],
                    r["relative_delta"],
                    r["cka"],
                    r["logit_lens_kl"],
                    r["refusal_cosine"],
                    f"{r['separation_parent']:.3g} → {r['separation_candidate']:.3g}",
                    f"{r['harmful_projection_parent']:.3g} → {r['harmful_projection_candidate']:.3g}",
                )
                for r in m.details
            ],
        )
    )
    _finish(m, json_out)


@diff_app.command("memory")
def memory(
    old: Path = typer.Argument(..., help="the store before the update (JSONL or SQLite)"),
    new: Path = typer.Argument(..., help="the store after the update"),
    json_out: Path = JSON,
    top: int = TOP,
) -> None:
    """Added/removed/edited entries, provenance gaps, semantic drift, instruction-like content."""
    from clgate.probes.memory import memory_diff

    with console.status("diffing memory stores…"):
        m = memory_diff(old, new, evidence=_evidence(json_out))
    changed = [r for r in m.details if r["status"] != "unchanged"]
    changed.sort(key=lambda r: (-r["instruction_score"], r["status"], r["id"]))
    console.print(
        _table(
            f"changed entries ({len(changed)}; most instruction-like first)",
            ("id", "status", "source", "instr.", "rules", "nn dist.", "text"),
            [
                (
                    r["id"],
                    r["status"],
                    r["source"] or "(none)",
                    r["instruction_score"],
                    ", ".join(r["instruction_rules"]),
                    r["nn_distance"],
                    r["text"][:80],
                )
                for r in changed[:top]
            ],
        )
    )
    _finish(m, json_out)


@diff_app.command("spread")
def spread(
    stores: list[Path] = typer.Argument(..., help="the memory stores of several deployed instances"),
    threshold: float = typer.Option(0.8, "--threshold", help="MinHash Jaccard for a near-duplicate"),
    json_out: Path = JSON,
    top: int = TOP,
) -> None:
    """Memetic spread: content held by several instances' memory stores, and where it appeared first."""
    from clgate.probes.memory import memetic_spread

    m = memetic_spread(stores, threshold=threshold, evidence=_evidence(json_out))
    console.print(
        _table(
            f"content in two or more of {len(stores)} instances",
            ("content", "instances", "exact", "first instance", "first seen", "instr."),
            [
                (
                    r["content"][:80],
                    r["instances"],
                    "yes" if r["exact"] else f"{r['variants']} variants",
                    r["first_instance"],
                    r["first_seen"],
                    r["instruction_score"],
                )
                for r in m.details[:top]
            ],
        )
    )
    _finish(m, json_out)
