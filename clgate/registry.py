"""One registry for what clgate finds by name: probes, detectors, suites, gate checks, entry types.

A name registers once. A probe, detector or gate check states its name and version once, in its
registration; `stamped` puts them on every record the registered function returns (as inspect-ai's
`registry_info` does behind each decorator), so a body never restates them and the two cannot drift
apart. Suites and entry types register by name alone: they return no measurement to stamp.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from pydantic import BaseModel

from clgate.errors import InputError

P = ParamSpec("P")
T = TypeVar("T")


class Named(Protocol):
    """A registered function's record: a `Measurement`, a detector's result."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...


class RunSpec(Named, Protocol):
    """A registered function's spec: a frozen dataclass that names, versions and runs it."""

    @property
    def run(self) -> Callable[..., Any]: ...


R = TypeVar("R", bound=Named)
S = TypeVar("S", bound=RunSpec)


class Registry(dict[str, T]):
    """Specs by name. A name registers once, so no two registrations stamp the same name; a test may
    still stand a spec in with plain item assignment."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str, spec: T) -> T:
        if name in self:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self[name] = spec
        return spec

    def lookup(self, name: str) -> T:
        """The spec of `name`; a name nobody registered is bad input, answered with the known ones."""
        if name not in self:
            raise InputError(self.unknown(name))
        return self[name]

    def unknown(self, name: str) -> str:
        return f"unknown {self.kind} {name!r} (known: {', '.join(sorted(self))})"

    def decorator(
        self, spec: Callable[[Callable[P, R]], S], stamp: tuple[str, ...] = ("name", "version")
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Register `spec(fn)` for the decorated `fn`; its `run`, and what the decorator returns, is `fn`
        stamped with the spec's `stamp` fields."""

        def register(fn: Callable[P, R]) -> Callable[P, R]:
            made = spec(fn)
            run = stamped(fn, **{field: getattr(made, field) for field in stamp})
            self.register(made.name, dataclasses.replace(made, run=run))  # type: ignore[type-var]
            return run

        return register


def stamped(fn: Callable[P, R], **fields: str) -> Callable[P, R]:
    """`fn`, whose records carry its registration's `fields` (`name`, `version`, a detector's `family`).

    A record named by another registration is passed on as it is: a gate check forwarding a probe's
    measurement leaves it the probe's. One that restates this registration's name must agree with
    all of it, or the body has drifted from its registration.
    """

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        record = fn(*args, **kwargs)
        if not record.name:
            if isinstance(record, BaseModel):
                return record.model_copy(update=fields)
            return dataclasses.replace(record, **fields)  # type: ignore[type-var]
        drifted = [field for field, value in fields.items() if getattr(record, field) != value]
        if record.name == fields["name"] and drifted:
            registered = ", ".join(f"{field} {fields[field]!r}" for field in drifted)
            said = ", ".join(f"{field} {getattr(record, field)!r}" for field in drifted)
            raise ValueError(f"{record.name} is registered with {registered} but its record says {said}")
        return record

    return run
