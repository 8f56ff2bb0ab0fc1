"""Policy-as-code: which checks a gate must run, the thresholds it judges them by, who approves.

A policy is a TOML file validated with pydantic on load; every error names the file, the line
and the key, because a policy that silently means something else is worse than none. A threshold
that can never fire (NaN, infinite) and an update kind that requires no check are refused. A
policy is identified by the digest of its canonical JSON (comments and layout do not count); a
gate may judge only by a policy an admin adopted in the ledger under that digest.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_serializer,
    model_validator,
)

from clgate.atomic import write_bytes_atomic
from clgate.errors import InputError, PolicyError
from clgate.ledger import ApprovalRequirement, PolicyRef, WitnessRequirement
from clgate.ledger.canonical import canonical_json
from clgate.ledger.entries import UpdateKind
from clgate.package_data import package_file
from clgate.runtime import check_device, check_dtype
from clgate.toml_input import parse_toml, read_text

if TYPE_CHECKING:
    from clgate.evals import Suite

DEFAULT_POLICY = package_file("clgate.audit", "policies", "default.toml")
# the longest a check may be given: 1e32 s overflowed the thread join, so every check errored
LONGEST_TIMEOUT_S = 7 * 86400
Severity = Literal["warn", "fail"]
UPDATE_KINDS: tuple[str, ...] = get_args(UpdateKind)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Count = Annotated[StrictInt, Field(ge=1)]


class CheckOptions(_Strict):
    """Every option a check reads, typed: a misspelt name or a value of the wrong type is refused with the
    policy (when it is adopted, and at every gate), not met as a crash, or a block, at the gate."""

    device: str = "auto"
    dtype: str = "auto"
    served: Literal["not_applicable"] | None = None
    served_scoring: Literal["logprobs", "generate"] = "logprobs"
    suites: list[str] | None = None
    limit: Count | None = None
    limits: dict[str, Count] = Field(default_factory=dict)
    detectors: list[str] | None = None
    triggers: list[str] | None = None
    prompts: list[str] | None = None
    scan_tokens: StrictBool = True
    alternatives: Count | None = None
    ner_model: str | None = None
    threshold: Annotated[StrictFloat, Field(gt=0, le=1)] | None = None


class CheckSettings(_Strict):
    """Per-check settings: its timeout, and options the check reads (suites, limits, detectors, device, dtype)."""

    timeout_s: float | None = Field(default=None, gt=0, le=LONGEST_TIMEOUT_S)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _placement_known(self) -> CheckSettings:
        try:
            check_device(self.options.get("device", "auto"))
            check_dtype(self.options.get("dtype", "auto"))
        except InputError as exc:
            raise ValueError(str(exc)) from None
        if self.options.get("served", "not_applicable") != "not_applicable":
            raise ValueError(
                'options.served can only be "not_applicable" (skip this check for served updates)'
            )
        if self.options.get("served_scoring", "logprobs") not in ("logprobs", "generate"):
            raise ValueError('options.served_scoring is "logprobs" (the default) or "generate"')
        try:  # limits and every other option, by its type
            CheckOptions.model_validate(self.options)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(part) for part in err["loc"])
            raise ValueError(f"options.{where}: {err['msg']}") from None
        return self


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


class PolicySuite(_Strict):
    """A team's own suite, pinned so the adopted policy says exactly what every gate runs: items in a
    bundled suite's format (`items` + `format`: `retention`, `refusal`, …) pinned by the items file's
    SHA-256, or an inspect-ai task (`task`: `FILE.py@TASK` pinned by the task file's SHA-256, or an
    installed package's `PACKAGE/TASK` pinned by the SHA-256 of the package's installed RECORD, which
    lists every file it installed with its hash). The gate runs it with the `evals` suites (numbers
    `NAME.*`, rules on check `evals`)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    items: Path | None = None
    format: str | None = None
    task: str | None = None
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _one_source(self) -> PolicySuite:
        if (self.items is None) == (self.task is None):
            raise ValueError("a suite gives either items (with their format) or an inspect-ai task")
        if (self.items is None) != (self.format is None):
            raise ValueError("format goes with items (the bundled suite whose format they follow)")
        return self

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: Any) -> dict[str, Any]:
        """Unused sources are left out: suites adopted before tasks existed keep their policy's digest."""
        return {k: v for k, v in handler(self).items() if v is not None}

    @property
    def task_file(self) -> Path | None:
        """The task's file for `FILE.py[@TASK]`; None for items, or an installed package's `PACKAGE/TASK`."""
        head = (self.task or "").split("@")[0]
        return Path(head) if head.endswith(".py") else None

    def pinned(self) -> tuple[str, bytes]:
        """What the pin covers, named, and its bytes: the items file, the task file, or the package's RECORD."""
        path = self.items if self.items is not None else self.task_file
        if path is not None:
            if not path.is_file():
                raise InputError(f"policy suite {self.name!r}: no such file {path}")
            return str(path), path.read_bytes()
        package = str(self.task).split("/")[0]
        try:
            dist = metadata.distribution(_distribution(package))
        except metadata.PackageNotFoundError:
            dist = None
        record = dist.read_text("RECORD") if dist is not None else None
        if dist is None or record is None:
            raise InputError(
                f"policy suite {self.name!r}: package {package!r} of task {self.task!r} is not installed "
                "(or has no RECORD to pin)"
            )
        for file in dist.files or ():  # the RECORD pins the files only if they still match it
            if file.hash is not None and file.hash.mode == "sha256":
                found = hashlib.sha256(Path(str(file.locate())).read_bytes()).digest()
                if base64.urlsafe_b64encode(found).rstrip(b"=").decode() != file.hash.value:
                    raise InputError(
                        f"policy suite {self.name!r}: installed file {file} of package {package!r} differs "
                        "from its RECORD; reinstall the package"
                    )
        return f"the installed package {package}", record.encode()

    def _checked(self) -> bytes:
        """The pinned bytes, read once and checked against the pin: an InputError if they differ."""
        what, content = self.pinned()
        found = hashlib.sha256(content).hexdigest()
        if found != self.sha256:
            raise InputError(
                f"policy suite {self.name!r}: {what} is not what was pinned (sha256 {found[:12]}…, "
                f"pinned {self.sha256[:12]}…); adopt a policy that pins it anew"
            )
        return content

    def pinned_items(self, folder: Path) -> Path:
        """The items file as pinned, copied under `folder` by its SHA-256: what is parsed from the copy is
        what was checked, whatever happens to the original after."""
        assert self.items is not None
        return write_bytes_atomic(Path(folder) / f"{self.sha256}.jsonl", self._checked())

    def load(self) -> Suite:
        """The suite, its source checked against the pin and built (items validated, task resolved):
        an InputError if not."""
        from clgate.evals import items_suite, task_suite

        self._checked()
        if self.items is not None:
            assert self.format is not None
            return items_suite(self.name, self.items, self.format)
        return task_suite(self.name, str(self.task))


class ProducerKey(_Strict):
    """A producer whose OpenSSF model signatures the policy trusts: a name and its EC public key (PEM)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    public_key: str

    @model_validator(mode="after")
    def _an_oms_key(self) -> ProducerKey:
        from clgate.artifacts import parse_oms_public_key

        try:
            parse_oms_public_key(self.public_key.encode(), f"producer {self.name!r}")
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def fingerprint(self) -> str:
        """The SHA-256 of its PEM SubjectPublicKeyInfo: what a proposal records as a signature's `key`."""
        from clgate.artifacts import oms_key_fingerprint, parse_oms_public_key

        return oms_key_fingerprint(parse_oms_public_key(self.public_key.encode(), self.name))


class ProducerSignatures(_Strict):
    """Whose signatures of an update's weights count: keys pinned by the admins who adopt the policy, not
    named by the pipeline that proposes. `required_for`: update kinds whose candidate must carry one."""

    keys: list[ProducerKey] = Field(min_length=1)
    required_for: list[UpdateKind] = Field(default_factory=list)

    def pinned(self, fingerprint: str) -> ProducerKey | None:
        return next((k for k in self.keys if k.fingerprint == fingerprint), None)

    @property
    def names(self) -> str:
        return ", ".join(k.name for k in self.keys)


def _distribution(package: str) -> str:
    """The distribution that installs top-level package `package` (they may be named differently)."""
    return next(iter(metadata.packages_distributions().get(package, [])), package)


class Policy(_Strict):
    schema_version: Literal[1] = 1
    name: str = Field(min_length=1)
    required_checks: dict[UpdateKind, list[str]] | list[str]
    scheduled_checks: list[str] = Field(default_factory=list)
    skipped_checks: list[str] = Field(default_factory=list)
    """Checks the gate does not run, though they apply: ones this policy neither requires nor judges, whose
    cost would buy no decision (a fast lane that leaves out the trigger sweep)."""
    default_timeout_s: float = Field(default=900, gt=0, le=LONGEST_TIMEOUT_S)
    checks: dict[str, CheckSettings] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    modules: ModuleRule | None = None
    approvals: ApprovalRequirement = Field(default_factory=ApprovalRequirement)
    witnesses: WitnessRequirement = Field(default_factory=WitnessRequirement)
    anchors: dict[str, str] = Field(default_factory=dict)
    """Deployment -> the promoted base (update id or digest) its updates are also compared with; by
    default the base it was first promoted to."""
    suites: list[PolicySuite] = Field(default_factory=list)
    producers: ProducerSignatures | None = None
    """Producers' keys whose OpenSSF model signatures of a candidate count, and the kinds that need one."""

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> Policy:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return self

    @model_validator(mode="after")
    def _every_kind_checked(self) -> Policy:
        """A kind with no required check would be promoted on no evidence at all."""
        required = self.required_checks
        if isinstance(required, list):
            if not required:
                raise ValueError("required_checks is empty: every update would pass unchecked")
            return self
        for kind in UPDATE_KINDS:
            if not required.get(kind):  # type: ignore[call-overload]
                raise ValueError(
                    f"required_checks.{kind} is missing or empty: such updates would pass unchecked"
                )
        return self

    @model_validator(mode="after")
    def _skipped_decide_nothing(self) -> Policy:
        """A skipped check the policy requires, judges or schedules would block every update, or never fire."""
        required = self.required_checks
        kinds = {"": required} if isinstance(required, list) else required
        for name in self.skipped_checks:
            uses = [f"required_checks{'.' + kind if kind else ''}" for kind, v in kinds.items() if name in v]
            uses += [f"rule {r.id!r}" for r in self.rules if r.check == name]
            uses += ["scheduled_checks"] * (name in self.scheduled_checks)
            uses += ["modules (read from its measurement)"] * (name == "weights" and self.modules is not None)
            uses += ["anchors (the bases it compares with)"] * (name == "anchor" and bool(self.anchors))
            if uses:
                raise ValueError(f"skipped_checks names {name!r}, which {', '.join(uses)} still use")
        return self

    @property
    def canonical_text(self) -> str:
        """What the ledger pins when an admin adopts this policy: its canonical JSON."""
        # fields added later are left out while empty: policies adopted before them keep their digest
        later = {
            name for name in ("anchors", "suites", "producers", "skipped_checks") if not getattr(self, name)
        }
        return canonical_json(self.model_dump(mode="json", exclude=later)).decode()

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.canonical_text.encode()).hexdigest()

    @property
    def ref(self) -> PolicyRef:
        return PolicyRef(name=self.name, digest=self.digest)

    def required_for(self, kind: str) -> list[str]:
        """Checks that must run for an update of `kind`; a plain list applies to every kind."""
        if isinstance(self.required_checks, list):
            return list(self.required_checks)
        return list(self.required_checks.get(kind, []))  # type: ignore[call-overload]

    def check_names(self) -> set[str]:
        """Every check the policy names: required ones, rules' checks, scheduled, skipped ones, settings."""
        required = self.required_checks
        names = set(required) if isinstance(required, list) else {n for v in required.values() for n in v}
        used = {r.check for r in self.rules} | set(self.scheduled_checks) | set(self.checks)
        return names | used | set(self.skipped_checks)

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
        data = parse_toml(text, source)
    except InputError as exc:
        raise PolicyError(str(exc)) from None
    try:
        policy = Policy.model_validate(data)
        # what audits record of it must be canonical JSON: an integer past 2**53 is not
        canonical_json(policy.model_dump(mode="json"))
    except InputError as exc:
        raise PolicyError(f"{source}: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))  # drop union-branch tags
        key = ".".join(str(p) for p in loc) or "policy"
        line = _line_of(text, loc)
        where = f"{source}:{line}" if line else source
        msg = {
            "extra_forbidden": "unknown key",
            "finite_number": "must be a finite number (not nan or inf)",
        }.get(err["type"], err["msg"].removeprefix("Value error, "))
        raise PolicyError(f"{where}: {key}: {msg}") from None
    return policy


def load_policy(path: Path | None = None) -> Policy:
    """Load and validate a policy file; without a path, the documented default policy."""
    path = Path(path) if path else DEFAULT_POLICY
    try:
        text = read_text(path, "policy file")
    except InputError as exc:
        raise PolicyError(str(exc)) from None
    return parse_policy(text, str(path))
