"""`clgate eval MODEL --suite …`, `clgate eval compare PARENT CANDIDATE --suite …`, `clgate eval list`.

inspect-ai and torch are imported inside the commands, so other `clgate` commands start fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from clgate.errors import InputError
from clgate.json_output import STDOUT, write_json_output
from clgate.progress_bar import ProgressBar
from clgate.runtime import Endpoint, ModelPool, Scoring, ServedPair
from clgate.runtime.cli import (
    DEVICE,
    DTYPE,
    SERVED_CANDIDATE,
    SERVED_CONCURRENCY,
    SERVED_PARENT,
    SERVED_TIMEOUT,
)
from clgate.typer_app import typer_app

if TYPE_CHECKING:
    from clgate.measurement import Measurement

console = Console()


class _ModelFirstGroup(TyperGroup):
    """`clgate eval MODEL …` is `clgate eval run MODEL …`: anything that is not a subcommand runs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer_app(
    cls=_ModelFirstGroup,
    help="Behavioural eval suites: `clgate eval MODEL --suite a,b`, `clgate eval compare PARENT CANDIDATE`.",
    no_args_is_help=True,
)

SuiteOpt = typer.Option(
    None,
    "--suite",
    "-s",
    help="suites, comma-separated (default: every bundled suite; see `clgate eval list`)",
)
LimitOpt = typer.Option(
    None, "--limit", help="at most N items per suite (default: each suite's default size)"
)
FullOpt = typer.Option(False, "--full", help="every item of every suite, not the default sizes")
DatasetOpt = typer.Option(None, "--dataset", help="the update's dataset (JSONL) for the target suite")
TriggerOpt = typer.Option(None, "--trigger", help="candidate trigger for the triggers suite (repeatable)")
GraderOpt = typer.Option(None, "--grader", help="also grade free-form replies with this inspect model")
JsonOpt = typer.Option(None, "--json", help="write the Measurement as JSON here ('-' for stdout)")
LogDirOpt = typer.Option(None, "--log-dir", help="inspect-ai log directory (default: cache/evals/logs)")
NoCacheOpt = typer.Option(False, "--no-cache", help="do not read or write the result cache")


def _suite_names(suite: str | None, dataset: Path | None, triggers: list[str] | None) -> list[str]:
    from clgate.evals import bundled_suites, parse_suites

    if suite:
        return [s.name for s in parse_suites(suite)]
    names = [s.name for s in bundled_suites()]
    return names + (["target"] if dataset else []) + (["triggers"] if triggers else [])


def _progress(total: int) -> tuple[ProgressBar, Callable[[str, Any], None]]:
    """A bar over `total` suite runs, and the `on_suite` listener that names and counts them."""
    bar = ProgressBar("evaluating")
    finished: list[str] = []

    def on_suite(name: str, result: Any) -> None:
        if result is None:
            bar.describe(f"suite {name}")
        else:
            finished.append(name)
            bar(len(finished), total)

    return bar, on_suite


def _emit(measurement: Measurement, json_out: Path | None) -> None:
    if json_out is None:
        return
    if write_json_output(measurement.to_json(), json_out):
        console.print(f"wrote {json_out}")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


ServedScoringOpt = typer.Option(
    "logprobs", help="served models: logprobs, or generate (for servers without prompt log-probabilities)"
)


def _scoring(value: str) -> Scoring:
    if value not in ("logprobs", "generate"):
        raise InputError("--served-scoring is logprobs or generate")
    return value  # type: ignore[return-value]


@eval_app.command("run")
def run(
    model: Path = typer.Argument(..., help="model directory or .gguf"),
    suite: str | None = SuiteOpt,
    limit: int | None = LimitOpt,
    full: bool = FullOpt,
    adapter: Path | None = typer.Option(None, "--adapter", help="LoRA adapter merged into the model"),
    dataset: Path | None = DatasetOpt,
    trigger: list[str] | None = TriggerOpt,
    grader: str | None = GraderOpt,
    json_out: Path | None = JsonOpt,
    log_dir: Path | None = LogDirOpt,
    no_cache: bool = NoCacheOpt,
    device: str = DEVICE,
    dtype: str = DTYPE,
    served: str = typer.Option(None, "--served", help="where the model is served: URL[#MODEL]"),
    served_concurrency: int = SERVED_CONCURRENCY,
    served_timeout: float = SERVED_TIMEOUT,
    served_scoring: str = ServedScoringOpt,
) -> None:
    """Run suites on one model: accuracy per suite, per-item rows in the JSON.

    With `--served`, it answers from that server (its files give the tokenizer and template).
    """
    from clgate.evals import evaluate_model

    names = _suite_names(suite, dataset, trigger)
    progress, on_suite = _progress(len(names))
    with progress, ModelPool() as pool:
        if served:
            pool.serve(model, adapter, Endpoint.parse(served, served_concurrency, served_timeout))
        measurement = evaluate_model(
            model,
            names,
            adapter=adapter,
            limit=limit,
            full=full,
            dataset=dataset,
            triggers=trigger,
            grader=grader,
            log_dir=log_dir,
            cache=not no_cache,
            device=device,
            dtype=dtype,
            pool=pool if served else None,
            served_scoring=_scoring(served_scoring),
            on_suite=on_suite,
        )
    if str(json_out) != STDOUT:
        table = Table(title=f"evals of {model}" + (f" + {adapter}" if adapter else ""))
        for col in ("suite", "n", "accuracy", "also measured", "seconds"):
            table.add_column(col, justify="left" if col in ("suite", "also measured") else "right")
        numbers, suites_meta = measurement.numbers, measurement.meta["suites"]
        for name in names:
            extra = [
                f"{k.removeprefix(name + '.')}={v:.3g}"
                for k, v in numbers.items()
                if k.startswith(name + ".") and k not in (f"{name}.accuracy", f"{name}.n")
            ]
            table.add_row(
                name,
                str(int(numbers[f"{name}.n"])),
                _fmt(numbers[f"{name}.accuracy"]),
                " ".join(extra),
                f"{suites_meta[name]['seconds']:.1f}",
            )
        console.print(table)
        console.print(f"inspect logs: {Path(measurement.evidence[0]).parent}" if measurement.evidence else "")
    _emit(measurement, json_out)


@eval_app.command("compare")
def compare(
    parent: Path = typer.Argument(..., help="the promoted model (directory or .gguf)"),
    candidate: Path = typer.Argument(..., help="the proposed model (directory or .gguf)"),
    suite: str | None = SuiteOpt,
    limit: int | None = LimitOpt,
    full: bool = FullOpt,
    parent_adapter: Path | None = typer.Option(None, "--parent-adapter"),
    candidate_adapter: Path | None = typer.Option(None, "--candidate-adapter", "--adapter"),
    dataset: Path | None = DatasetOpt,
    trigger: list[str] | None = TriggerOpt,
    grader: str | None = GraderOpt,
    json_out: Path | None = JsonOpt,
    log_dir: Path | None = LogDirOpt,
    no_cache: bool = NoCacheOpt,
    device: str = DEVICE,
    dtype: str = DTYPE,
    served_parent: str = SERVED_PARENT,
    served_candidate: str = SERVED_CANDIDATE,
    served_concurrency: int = SERVED_CONCURRENCY,
    served_timeout: float = SERVED_TIMEOUT,
    served_scoring: str = ServedScoringOpt,
) -> None:
    """Parent vs candidate on the same items: Δ accuracy, paired bootstrap 95% CI, exact McNemar p.

    With `--served-*`, both answer from their servers (the model files give the tokenizer and template).
    """
    from clgate.evals import compare_models

    names = _suite_names(suite, dataset, trigger)
    progress, on_suite = _progress(2 * len(names))
    pair = ServedPair.of(served_parent, served_candidate, served_concurrency, served_timeout)
    if pair is not None and parent_adapter is not None:
        raise InputError("a served comparison takes the candidate's --adapter only")
    with progress, ModelPool() as pool:
        pool.serve_pair(parent, candidate, candidate_adapter, pair)
        measurement = compare_models(
            parent,
            candidate,
            names,
            parent_adapter=parent_adapter,
            candidate_adapter=candidate_adapter,
            limit=limit,
            full=full,
            dataset=dataset,
            triggers=trigger,
            grader=grader,
            log_dir=log_dir,
            cache=not no_cache,
            device=device,
            dtype=dtype,
            pool=pool if pair else None,  # without servers, compare_models holds one model at a time
            served_scoring=_scoring(served_scoring),
            on_suite=on_suite,
        )
    if str(json_out) != STDOUT:
        n = measurement.numbers
        table = Table(title=f"{candidate} vs parent {parent}")
        for col in ("suite", "n", "parent", "candidate", "Δ", "95% CI", "McNemar p", "→wrong", "→right"):
            table.add_column(col, justify="left" if col == "suite" else "right")
        for name in names:
            table.add_row(
                name,
                str(int(n[f"{name}.n"])),
                _fmt(n[f"{name}.parent_accuracy"]),
                _fmt(n[f"{name}.accuracy"]),
                f"{n[f'{name}.delta']:+.3f}",
                f"[{n[f'{name}.delta_ci_low']:+.3f}, {n[f'{name}.delta_ci_high']:+.3f}]",
                f"{n[f'{name}.mcnemar_p']:.3g}",
                str(int(n[f"{name}.flipped_to_wrong"])),
                str(int(n[f"{name}.flipped_to_right"])),
            )
        console.print(table)
    _emit(measurement, json_out)


@eval_app.command("list")
def list_() -> None:
    """The registered suites, how they score, and what they need."""
    from clgate.evals import list_suites

    table = Table(title="eval suites")
    for col in ("suite", "scoring", "needs", "default size", "what it measures"):
        table.add_column(col, no_wrap=col == "suite")
    for s in list_suites():
        size = "all" if s.default_limit is None else str(s.default_limit)
        table.add_row(s.name, s.scoring, s.needs or "", size, s.description)
    console.print(table)
