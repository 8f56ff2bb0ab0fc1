"""Runs suites on a model through `inspect_ai.eval` and turns the logs into a `Measurement`.

Every suite is one inspect-ai eval with a standard log (open it with `inspect view --log-dir
DIR`); all of a suite's samples run concurrently so the clgate provider batches them.
"""

from __future__ import annotations

import inspect as pyinspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import inspect_ai
from inspect_ai.model import Model
from inspect_ai.scorer import CORRECT

from clgate.errors import ClgateError
from clgate.evals._cache import default_eval_cache_dir
from clgate.evals._provider import ENGINE_VERSION, ClgateModelAPI, clgate_api, open_model
from clgate.evals._registry import Suite, parse_suites
from clgate.evals.compare import COMPARE_VERSION
from clgate.evals.suites import SUITE_VERSION
from clgate.measurement import Measurement
from clgate.runtime import ModelPool, Scoring

EVALS_VERSION = "1"


def eval_versions() -> dict[str, str]:
    """Every version an eval measurement's numbers depend on (runner, comparison, engine, bundled items):
    part of the cache key of each gate check that runs evals, so a change to any of them is recomputed."""
    return {
        "evals": EVALS_VERSION,
        "compare": COMPARE_VERSION,
        "engine": ENGINE_VERSION,
        "suites": SUITE_VERSION,
    }


_GRADER_SCORER = "model_graded_qa"
_MAX_SAMPLES = 100_000


@dataclass
class SuiteRun:
    """One suite on one model: a row per item (`correct` plus what the scorer measured)."""

    suite: str
    rows: list[dict[str, Any]]
    seconds: float
    log: str | None = None
    dataset_digest: str | None = None

    def numbers(self) -> dict[str, float]:
        out = {
            f"{self.suite}.accuracy": _mean([r["correct"] for r in self.rows]),
            f"{self.suite}.n": float(len(self.rows)),
        }
        for key in _extra_keys(self.rows):
            out[f"{self.suite}.{key}"] = _mean([r[key] for r in self.rows])
        return out


@dataclass
class ModelRun:
    model: str
    adapter: str | None
    digest: str
    suites: list[SuiteRun] = field(default_factory=list)

    def measurement(self) -> Measurement:
        numbers: dict[str, float] = {}
        for s in self.suites:
            numbers.update(s.numbers())
        return Measurement(
            name="evals",
            version=EVALS_VERSION,
            candidate=self.digest,
            numbers=numbers,
            details=[row for s in self.suites for row in s.rows],
            evidence=[s.log for s in self.suites if s.log],
            meta={
                "model": self.model,
                "adapter": self.adapter,
                "suites": {
                    s.suite: {
                        "dataset_digest": s.dataset_digest,
                        "seconds": round(s.seconds, 3),
                        "log": s.log,
                    }
                    for s in self.suites
                },
            },
        )


def _mean(values: Sequence[float | bool]) -> float:
    return float(sum(float(v) for v in values) / len(values)) if values else 0.0


def _extra_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Per-item numbers beyond `correct` that every row carries (bools count as 0/1)."""
    if not rows:
        return []
    keys = [k for k, v in rows[0].items() if isinstance(v, int | float | bool) and k != "correct"]
    return [k for k in keys if all(isinstance(r.get(k), int | float | bool) for r in rows)]


def _task_args(
    suite: Suite,
    dataset: Path | None,
    triggers: Sequence[str] | None,
    grader: str | None,
    items: Path | None,
    placement: str,
) -> dict:
    params = pyinspect.signature(suite.task).parameters
    args: dict[str, Any] = {}
    if suite.needs == "dataset":
        args["data"] = str(dataset) if dataset else None
    elif items is not None:
        args["data"] = str(items)
    if suite.needs == "triggers":
        args["placement"] = placement
        if triggers:
            args["triggers"] = list(triggers)
    if grader and "grader" in params:
        args["grader"] = grader
    return args


def _right(value: Any) -> bool:
    """An item is right when its score is CORRECT, or 1 (a team's own task may score by number or bool)."""
    return value == CORRECT or (isinstance(value, int | float) and value == 1)


def _rows(suite: str, log: Any) -> list[dict[str, Any]]:
    rows = []
    for sample in log.samples or []:
        scores = sample.scores or {}
        primary = next(name for name in scores if name != _GRADER_SCORER)
        score = scores[primary]
        row: dict[str, Any] = {
            "suite": suite,
            "id": str(sample.id),
            "category": (sample.metadata or {}).get("category", ""),
            "correct": _right(score.value),
            "answer": str(score.answer or "")[:300],
        }
        for key, value in (score.metadata or {}).items():
            if isinstance(value, str):
                row[key] = value[:300]
            elif isinstance(value, int | float | bool | list):
                row[key] = value
        if _GRADER_SCORER in scores:
            row["graded_correct"] = _right(scores[_GRADER_SCORER].value)
        rows.append(row)
    return rows


def run_suite(
    model: Model,
    suite: Suite,
    *,
    limit: int | None = None,
    dataset: Path | None = None,
    triggers: Sequence[str] | None = None,
    grader: str | None = None,
    items: Path | None = None,
    log_dir: Path | None = None,
    full: bool = False,
    trigger_placement: str = "prefix",
) -> SuiteRun:
    """One suite through `inspect_ai.eval`; a failed eval raises with inspect's own message.

    `limit` caps the items; without it a suite runs its default size (`Suite.default_limit`),
    or every item with `full=True`. `dataset`: the update's data, for the target suite;
    `items`: an item file that replaces the suite's bundled one (same record shape).
    """
    if limit is None and not full:
        limit = suite.default_limit
    task = suite.task(**_task_args(suite, dataset, triggers, grader, items, trigger_placement))
    start = time.perf_counter()
    [log] = inspect_ai.eval(
        task,
        model=model,
        limit=limit,
        display="none",
        log_level="error",
        log_dir=str(log_dir or default_eval_cache_dir() / "logs"),
        max_samples=_MAX_SAMPLES,
        max_tasks=1,
        score_display=False,
        log_realtime=False,
        ctl_server=False,
    )
    seconds = time.perf_counter() - start
    if log.status != "success":
        message = log.error.message if log.error else log.status
        raise ClgateError(f"suite {suite.name} failed on {model}: {message.strip().splitlines()[-1]}")
    return SuiteRun(
        suite=suite.name,
        rows=_rows(suite.name, log),
        seconds=seconds,
        log=log.location or None,
        dataset_digest=(task.metadata or {}).get("dataset_digest"),
    )


def run_suites(
    model: str | Path | Model,
    suites: str | Sequence[str] = "retention",
    *,
    adapter: Path | str | None = None,
    limit: int | None = None,
    limits: Mapping[str, int] | None = None,
    dataset: Path | None = None,
    triggers: Sequence[str] | None = None,
    grader: str | None = None,
    items: dict[str, Path] | None = None,
    log_dir: Path | None = None,
    full: bool = False,
    trigger_placement: str = "prefix",
    cache: bool = True,
    cache_dir: Path | None = None,
    digest: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    pool: ModelPool | None = None,
    served_scoring: Scoring = "logprobs",
    on_suite: Callable[[str, SuiteRun | None], None] | None = None,
) -> ModelRun:
    """Run suites on one model. `on_suite(name, None)` fires before each suite, `(name, run)` after.

    `model` is a path (opened here, with `adapter`, `device`, `dtype`, from `pool` when given, and
    closed after) or an open clgate `Model`. `items` maps suite names to item files that replace
    the bundled ones; `limits` caps named suites, and `limit` the others.
    """
    chosen = parse_suites(list(suites) if not isinstance(suites, str) else suites)
    owned = not isinstance(model, Model)
    handle = (
        open_model(
            model,
            adapter,
            device=device,
            dtype=dtype,
            pool=pool,
            digest=digest,
            cache=cache,
            cache_dir=cache_dir,
            served_scoring=served_scoring,
        )
        if owned
        else model
    )
    api: ClgateModelAPI = clgate_api(handle)
    try:
        run = ModelRun(str(api.model_dir), str(api.adapter) if api.adapter else None, api.digest)
        for suite in chosen:
            if on_suite:
                on_suite(suite.name, None)
            result = run_suite(
                handle,
                suite,
                limit=(limits or {}).get(suite.name, limit),
                dataset=dataset,
                triggers=triggers,
                grader=grader,
                items=(items or {}).get(suite.name),
                log_dir=log_dir,
                full=full,
                trigger_placement=trigger_placement,
            )
            run.suites.append(result)
            if on_suite:
                on_suite(suite.name, result)
        return run
    finally:
        if owned:
            api.close()


def evaluate_model(
    model: str | Path | Model, suites: str | Sequence[str] = "retention", **kwargs: Any
) -> Measurement:
    """Suites on one model as a `Measurement` (numbers `SUITE.accuracy`, …; a row per item)."""
    return run_suites(model, suites, **kwargs).measurement()


def compare_models(
    parent: str | Path,
    candidate: str | Path,
    suites: str | Sequence[str] = "retention",
    *,
    parent_adapter: Path | str | None = None,
    candidate_adapter: Path | str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    pool: ModelPool | None = None,
    served_scoring: Scoring = "logprobs",
    **kwargs: Any,
) -> Measurement:
    """Parent and candidate on the same items, compared per item (see `compare.compare_measurements`).

    With a gate's `pool`, both models come from it and stay loaded for the other checks; without,
    each is released once its suites are done. Models the pool serves answer from their server;
    `served_scoring="generate"` (a policy's choice) judges multiple-choice items there by greedy
    replies when the server returns no prompt log-probabilities, and the measurement says so.
    """
    from clgate.evals.compare import compare_measurements

    on_suite = kwargs.pop("on_suite", None)

    def tagged(role: str) -> Callable[[str, SuiteRun | None], None] | None:
        return (lambda name, result: on_suite(f"{role}:{name}", result)) if on_suite else None

    cache, cache_dir = kwargs.pop("cache", True), kwargs.pop("cache_dir", None)
    owned = pool is None
    models = pool or ModelPool()
    # Both are opened (paths, adapters, tokenizers, placements checked; no weights loaded) before either runs.
    handles = [
        open_model(
            path,
            adapter,
            device=device,
            dtype=dtype,
            pool=models,
            cache=cache,
            cache_dir=cache_dir,
            served_scoring=served_scoring,
        )
        for path, adapter in ((parent, parent_adapter), (candidate, candidate_adapter))
    ]
    parent_model, candidate_model = (clgate_api(h).runtime for h in handles)
    measurements = []
    try:
        for role, handle in zip(("parent", "candidate"), handles, strict=True):
            measurements.append(evaluate_model(handle, suites, on_suite=tagged(role), **kwargs))
            if owned and role == "parent" and parent_model is not candidate_model:
                parent_model.release()  # standalone, one model's weights at a time
    finally:
        for handle in handles:
            clgate_api(handle).close()
        if owned:
            models.close()
    compared = compare_measurements(*measurements)
    if parent_model.served or candidate_model.served:
        compared.meta["served"] = {
            "models": [repr(m) for m in (parent_model, candidate_model)],
            "scoring": "greedy replies matched to the options (the server returns no prompt log-probabilities)"
            if served_scoring == "generate"
            else "the server's prompt log-probabilities",
        }
    return compared


def accuracy_matrix(
    models: Sequence[tuple[str | Path, str | Path | None]],
    datasets: Sequence[Path],
    **kwargs: Any,
) -> list[list[float]]:
    """R[i][j]: target-suite accuracy (greedy exact match) of model i on update j's dataset.

    `models[i]` is the (model, adapter) promoted after update i; feed R to
    `compare.continual_metrics`.
    """
    cache = kwargs.pop("cache", True)
    placement = {"device": kwargs.pop("device", "auto"), "dtype": kwargs.pop("dtype", "auto")}
    matrix: list[list[float]] = []
    for path, adapter in models:
        handle = open_model(path, adapter, cache=cache, **placement)
        try:
            matrix.append(
                [
                    evaluate_model(handle, "target", dataset=Path(d), **kwargs).numbers["target.accuracy"]
                    for d in datasets
                ]
            )
        finally:
            clgate_api(handle).close()
    return matrix
