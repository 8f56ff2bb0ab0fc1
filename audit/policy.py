"""Policy-as-code: which checks a gate must run, the thresholds it judges them by, who approves.

A policy is a TOML file validated with pydantic on load; every error names the file, the line
and the key, because a policy that silently means something else is worse than none.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clgate.errors import PolicyError

DEFAULT_POLICY = Path(__file__).parent / "policies" / "default.toml"
Severity = Literal["warn", "fail"]
UpdateKind = Literal["model", "adapter", "memory"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckSettings(_Strict):
    """Per-check settings: its timeout, and options the check reads (suites, limits, detectors)."""

    timeout_s: float | None = Field(default=None, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)


class Rule(_Strict):
    """A threshold on one number of one check's measurement; `warn_*` → review, `fail_*` → block."""

    id: str
    check: str
    metric: str
    reason: str
    warn_above: float | None = None
    fail_above: float | None = None
    warn_below: float | None = None
    fail_below: float | None = None

    @model_validator(mode="after")
    def _has_a_threshold(self) -> Rule:
        if all(v is None for v in (self.warn_above, self.fail_above, self.warn_below, self.fail_below)):
            raise ValueError("rule needs at least one of warn_above, fail_above, warn_below, fail_below")
        return self


class ModuleRule(_Strict):
    """Bounded updates: only modules matching these glob patterns may change."""

    allowed: list[str]
    severity: Severity = "fail"

    def disallowed(self, changed: list[str]) -> list[str]:
        return [m for m in changed if not any(fnmatch.fnmatchcase(m, p) for p in self.allowed)]


class ApprovalRule(_Strict):
    """n-of-m: `required` distinct approvers, from `approvers` (key ids or names) if given."""

    required: int = Field(default=1, ge=1)
    approvers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _satisfiable(self) -> ApprovalRule:
        if self.approvers and self.required > len(self.approvers):
            raise ValueError(
                f"required = {self.required} but only {len(self.approvers)} approvers are listed"
            )
        return self


class Policy(_Strict):
    schema_version: Literal[1] = 1
    name: str
    required_checks: dict[UpdateKind, list[str]] | list[str]
    scheduled_checks: list[str] = Field(default_factory=list)
    default_timeout_s: float = Field(default=900, gt=0)
    checks: dict[str, CheckSettings] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    modules: ModuleRule | None = None
    approvals: ApprovalRule = Field(default_factory=ApprovalRule)

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> Policy:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return self

    def required_for(self, kind: str) -> list[str]:
        """Checks that must run for an update of `kind`; a plain list applies to every kind."""
        if isinstance(self.required_checks, list):
            return list(self.required_checks)
        return list(self.required_checks.get(kind, []))  # type: ignore[call-overload]

    def check_names(self) -> set[str]:
        """Every check the policy names: required ones, rules' checks, scheduled ones, settings."""
        required = self.required_checks
        names = set(required) if isinstance(required, list) else {n for v in required.values() for n in v}
        return names | {r.check for r in self.rules} | set(self.scheduled_checks) | set(self.checks)

    def unknown_checks(self, known: set[str]) -> None:
        """A misspelt check would never run and its rules never fire: refuse the policy instead."""
        unknown = sorted(self.check_names() - known)
        if unknown:
            raise PolicyError(
                f"{self.name}: unknown check {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})"
            )

    def timeout_for(self, check: str) -> float:
        settings = self.checks.get(check)
        return settings.timeout_s if settings and settings.timeout_s else self.default_timeout_s

    def options_for(self, check: str) -> dict[str, Any]:
        settings = self.checks.get(check)
        return dict(settings.options) if settings else {}


def _key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each table and key path of a TOML text to its line, as pydantic's error locations spell it."""
    lines: dict[tuple[str | int, ...], int] = {}
    arrays: dict[str, int] = {}
    table: tuple[str | int, ...] = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[["):
            name = line[2 : line.find("]]")].strip()
            arrays[name] = arrays.get(name, -1) + 1
            table = (*name.split("."), arrays[name])
            lines[table] = number
        elif line.startswith("["):
            table = tuple(line[1 : line.find("]")].strip().split("."))
            lines[table] = number
        elif "=" in line and not line.startswith("#"):
            lines[(*table, line.split("=", 1)[0].strip().strip("\"'"))] = number
    return lines


def _line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    lines = _key_lines(text)
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: invalid TOML ({exc})") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))  # drop union-branch tags
        key = ".".join(str(p) for p in loc) or "policy"
        line = _line_of(text, loc)
        where = f"{source}:{line}" if line else source
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise PolicyError(f"{where}: {key}: {msg}") from None


def load_policy(path: Path | None = None) -> Policy:
    """Load and validate a policy file; without a path, the documented default policy."""
    path = Path(path) if path else DEFAULT_POLICY
    if not path.is_file():
        raise PolicyError(f"{path}: no such policy file")
    return parse_policy(path.read_text(encoding="utf-8"), str(path))
