"""Suites register themselves by name, so the CLI and the gate list them without knowing each one."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from inspect_ai import Task

from clgate.errors import InputError
from clgate.registry import Registry

Needs = Literal["dataset", "triggers", "items"]


@dataclass(frozen=True)
class Suite:
    name: str
    task: Callable[..., Task]
    description: str
    scoring: Literal["loglikelihood", "generation", "loglikelihood+generation"]
    data_file: str | None = None
    needs: Needs | None = None
    """`dataset`: the update's own data (the target suite); `triggers`: candidate trigger strings;
    `items`: its items, built by the caller (`items=`); nothing is bundled."""
    default_limit: int | None = None
    """Items run by default (a gate-sized run); None runs them all. Generation is the costly part."""

    @property
    def items(self) -> Path | None:
        """The bundled item file the suite reads unless given others."""
        from clgate.evals._items import DATA_DIR

        return DATA_DIR / self.data_file if self.data_file else None


SUITES: Registry[Suite] = Registry("suite")


def suite(
    name: str,
    description: str,
    scoring: Literal["loglikelihood", "generation", "loglikelihood+generation"],
    data_file: str | None = None,
    needs: Needs | None = None,
    default_limit: int | None = None,
) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
    """Register an inspect-ai `@task` function as a clgate suite."""

    def register(task: Callable[..., Task]) -> Callable[..., Task]:
        SUITES.register(name, Suite(name, task, description, scoring, data_file, needs, default_limit))
        return task

    return register


def get_suite(name: str) -> Suite:
    from clgate.evals import suites  # noqa: F401  (registers the bundled suites)

    return SUITES.lookup(name)


def list_suites() -> list[Suite]:
    from clgate.evals import suites  # noqa: F401

    return list(SUITES.values())


def parse_suites(spec: str | Sequence[str | Suite]) -> list[Suite]:
    """`retention,refusal` (or a list of names and `Suite`s) → suites, in order, without repeats."""
    given = spec.split(",") if isinstance(spec, str) else spec
    chosen = [
        s if isinstance(s, Suite) else get_suite(s.strip())
        for s in given
        if isinstance(s, Suite) or s.strip()
    ]
    if not chosen:
        raise InputError("no suite named (known: " + ", ".join(s.name for s in list_suites()) + ")")
    unique: dict[str, Suite] = {}
    for s in chosen:
        unique.setdefault(s.name, s)
    return list(unique.values())


ITEM_FORMATS = ("retention", "honesty", "refusal", "over_refusal", "sycophancy", "prompt_injection")
"""Bundled suites whose item format and scoring a team's own items can use."""


def items_suite(name: str, items: Path, item_format: str) -> Suite:
    """A team's own items, in the format of a bundled suite and scored as it is, run under their own
    name (numbers `NAME.accuracy`, `NAME.delta_ci_high`, …). Every item is loaded and checked here, so
    a broken file is bad input before anything runs."""
    if item_format not in ITEM_FORMATS:
        raise InputError(f"suite {name!r}: format {item_format!r} is not one of {', '.join(ITEM_FORMATS)}")
    if name in {s.name for s in list_suites()}:
        raise InputError(f"suite {name!r}: that is a bundled suite's name; give your own suite another")
    base = get_suite(item_format)
    suite = Suite(
        name, functools.partial(base.task, data=str(items)), f"{base.description}: {items}", base.scoring
    )
    suite.task()
    return suite


def _inspect_task(spec: str) -> Task:
    """The one task `spec` names, built by inspect-ai's own resolver (public inspect resolves a spec only
    inside `eval()`, after a model is chosen; clgate needs the task first, to fail before any write)."""
    from inspect_ai._eval.loader import load_tasks

    try:
        if not spec.split("@")[0].endswith(".py"):  # PACKAGE/TASK: its inspect_ai entry point registers it
            for entry in metadata.entry_points(group="inspect_ai", name=spec.split("/")[0]):
                entry.load()
        tasks = load_tasks([spec])
    except Exception as exc:  # inspect raises whatever the task file raises
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"inspect task {spec!r}: {first}") from None
    if len(tasks) != 1:
        raise InputError(
            f"inspect task {spec!r} names {len(tasks)} tasks; name one (FILE.py@TASK or PACKAGE/TASK)"
        )
    return tasks[0]


def task_suite(name: str, spec: str) -> Suite:
    """A team's own inspect-ai task (`FILE.py@TASK`, or an installed package's `PACKAGE/TASK`), run under
    its own name by clgate's provider (numbers `NAME.accuracy`, `NAME.delta_ci_high`, …; an item is right
    when its first scorer says CORRECT). Built here once, so a missing file, task or package, or a task
    that fails to build, is bad input before anything runs; each run builds it afresh."""
    if name in {s.name for s in list_suites()}:
        raise InputError(f"suite {name!r}: that is a bundled suite's name; give your own suite another")
    _inspect_task(spec)
    return Suite(name, functools.partial(_inspect_task, spec), f"inspect-ai task {spec}", "generation")


def bundled_suites() -> list[Suite]:
    """The suites that run on bundled data alone: a gate's default set."""
    return [s for s in list_suites() if s.needs is None]
