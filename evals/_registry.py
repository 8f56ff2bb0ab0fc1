"""Suites register themselves by name, so the CLI and the gate list them without knowing each one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from inspect_ai import Task

from clgate.errors import InputError

Needs = Literal["dataset", "triggers"]


@dataclass(frozen=True)
class Suite:
    name: str
    task: Callable[..., Task]
    description: str
    scoring: Literal["loglikelihood", "generation", "loglikelihood+generation"]
    data_file: str | None = None
    needs: Needs | None = None
    """`dataset`: the update's own data (the target suite); `triggers`: candidate trigger strings."""
    default_limit: int | None = None
    """Items run by default (a gate-sized run); None runs them all. Generation is the costly part."""


SUITES: dict[str, Suite] = {}


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
        SUITES[name] = Suite(name, task, description, scoring, data_file, needs, default_limit)
        return task

    return register


def get_suite(name: str) -> Suite:
    from clgate.evals import suites  # noqa: F401  (registers the bundled suites)

    if name not in SUITES:
        raise InputError(f"unknown suite {name!r} (known: {', '.join(sorted(SUITES))})")
    return SUITES[name]


def list_suites() -> list[Suite]:
    from clgate.evals import suites  # noqa: F401

    return list(SUITES.values())


def parse_suites(spec: str | list[str]) -> list[Suite]:
    """`retention,refusal` (or a list of names) → suites, in order, without repeats."""
    names = spec.split(",") if isinstance(spec, str) else spec
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise InputError("no suite named (known: " + ", ".join(s.name for s in list_suites()) + ")")
    return [get_suite(n) for n in dict.fromkeys(names)]


def bundled_suites() -> list[Suite]:
    """The suites that run on bundled data alone: a gate's default set."""
    return [s for s in list_suites() if s.needs is None]
