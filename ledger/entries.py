"""Ledger entry payloads: the signed statement, and a registry of entry types with typed bodies.

Every entry is an `EntryPayload`: a typed envelope (`type`, `subject`, `body`) plus the fields the
log needs (index, timestamp, signer, previous entry hash). Each type registers a body model (what
that type carries; unknown fields are refused, so nothing rides along unchecked), the roles allowed
to sign it (least privilege: no role implies another) and whether it changes the ledger's state
(keys, policies, updates), which the governance rules replay in order. Adding a type is one
decorated class.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from clgate.errors import InputError
from clgate.ledger.canonical import canonical_json
from clgate.ledger.keys import ROLES, Role
from clgate.registry import Registry

SCHEMA_VERSION = 1
GENESIS_PREV = "0" * 64
_HEX64 = r"^[0-9a-f]{64}$"
DIGEST = r"^sha256:[0-9a-f]{64}$"
UPDATE_ID = r"^[0-9a-f]{16}$"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

UpdateKind = Literal["model", "adapter", "memory"]
ArtifactKindName = Literal["model", "adapter", "memory", "dataset"]
SLOT_OF_KIND: dict[str, str] = {"model": "base", "adapter": "adapter", "memory": "memory"}
CANDIDATE_ROLE: dict[str, str] = {"model": "candidate", "adapter": "adapter", "memory": "memory_new"}
REQUIRED_ROLES: dict[str, tuple[str, ...]] = {
    "model": ("parent", "candidate"),
    "adapter": ("parent", "adapter"),
    "memory": ("parent", "memory_old", "memory_new"),
}
ARTIFACT_ROLES = ("parent", "candidate", "adapter", "data", "memory_old", "memory_new", "target")


class EntryBody(BaseModel):
    """Base of every body model: declared fields only, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


@dataclass(frozen=True)
class EntryType:
    name: str
    body: type[EntryBody]
    roles: frozenset[str]
    needs_subject: bool
    stateful: bool
    subject_of: Callable[[Any], str | None] | None
    subject_label: str


ENTRY_TYPES: Registry[EntryType] = Registry("entry type")
_B = TypeVar("_B", bound=type[EntryBody])


def entry_type(
    name: str,
    roles: set[str],
    needs_subject: bool = False,
    stateful: bool = True,
    subject_of: Callable[[Any], str | None] | None = None,
    subject_label: str = "",
) -> Callable[[_B], _B]:
    """Register a body model as entry type `name`, signable by exactly `roles`.

    `stateful` types change keys, policies or updates, so appends and verification replay them in
    order; `subject_of` reads from the body what the subject must equal (`subject_label` names it).
    """

    def register(cls: _B) -> _B:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)} for entry type {name}")
        ENTRY_TYPES.register(
            name, EntryType(name, cls, frozenset(roles), needs_subject, stateful, subject_of, subject_label)
        )
        cls.entry_type = name  # type: ignore[attr-defined]
        return cls

    return register


# --- what audits record: findings and decisions --------------------------------------------------


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


class Decision(StrEnum):
    PROMOTE = "promote"
    REVIEW = "review"
    BLOCK = "block"

    @property
    def exit_code(self) -> int:
        return {Decision.PROMOTE: 0, Decision.REVIEW: 10, Decision.BLOCK: 20}[self]


def decision_of(statuses: Iterable[Status]) -> Decision:
    """The one rule from findings to a decision: any fail blocks, any warn needs review."""
    seen = set(statuses)
    if Status.FAIL in seen:
        return Decision.BLOCK
    return Decision.REVIEW if Status.WARN in seen else Decision.PROMOTE


NOT_APPLICABLE = "not-applicable"
"""The rule of a finding that says a check was not run (the policy skips it, or a served update cannot run
it): it passes the requirement, and claims nothing about what the check would have measured."""


def _check_verdict(verdict: Decision, findings: list[Finding]) -> None:
    """A recorded verdict must be the one its findings make: a key cannot record "promote" beside a fail."""
    if verdict != decision_of(f.status for f in findings):
        raise ValueError(f"verdict {verdict.value} does not follow from the findings")


class Finding(_Record):
    """A measurement judged against one policy rule, with the reason in one sentence."""

    schema_version: int = 1
    rule: str
    check: str
    status: Status
    reason: str
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None

    @field_validator("value", "threshold")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        """JSON cannot carry inf or NaN exactly; the reason sentence quotes such a value instead."""
        return value if value is None or math.isfinite(value) else None


# --- update.proposed ------------------------------------------------------------------------------


class ArtifactDigest(_Record):
    """One artifact of a proposal: where it was, its manifest root, and each file's digest."""

    kind: ArtifactKindName
    uri: str
    digest: str = Field(pattern=DIGEST)
    files: dict[str, str] = Field(default_factory=dict)


def derive_update_id(content: BaseModel, own: str = "update_id") -> str:
    """An update's (or a request's) id is derived from its content, so nobody can pick or reuse one."""
    body = content.model_dump(mode="json", exclude_none=True, exclude={own})
    return hashlib.sha256(canonical_json(body)).hexdigest()[:16]


class ServedRef(_Record):
    """Where a model of the update is served, as the server named it when the update was proposed."""

    url: str = Field(pattern=r"^https?://\S+$")
    model: str = Field(min_length=1)
    revision: str = Field(pattern=DIGEST)


class OmsSignature(_Record):
    """An OpenSSF Model Signing signature of an artifact's files, pinned by two digests: SHA-256 of the
    signature file (a Sigstore bundle) and of the signer's public key as PEM SubjectPublicKeyInfo (the
    key hint in that bundle). `excluded`: files of the artifact it does not cover; only ever the
    signature's own file, where it lies inside the artifact."""

    schema_version: Literal[1] = 1
    digest: str = Field(pattern=DIGEST)
    key: str = Field(pattern=DIGEST)
    excluded: list[str] = Field(default_factory=list)


class ProposalContent(_Record):
    """What a pipeline proposes: the artifacts of one update, by role, and where it is to run.

    `base` is the base model it runs on (itself, for a new base). `supersedes` names an earlier
    proposal this one re-audits (after a rollback, a stale base, or a block).
    """

    kind: UpdateKind
    deployment: str = Field(default="default", pattern=NAME)
    base: str = Field(pattern=DIGEST)
    artifacts: dict[str, ArtifactDigest]
    pipeline: dict[str, str] = Field(default_factory=dict)
    nonce: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    supersedes: str | None = Field(default=None, pattern=UPDATE_ID)
    served: dict[str, ServedRef] | None = None
    """Parent and candidate served by an inference engine: the gate runs output-only checks there."""
    signatures: dict[str, OmsSignature] | None = None
    """OpenSSF model signatures of artifacts (by role) that verified when the update was proposed."""

    @model_validator(mode="after")
    def _consistent(self) -> ProposalContent:
        if self.signatures is not None and not set(self.signatures) <= set(self.artifacts):
            raise ValueError("signatures name only artifacts of the proposal")
        if self.served is not None and (set(self.served) != {"parent", "candidate"} or self.kind == "memory"):
            raise ValueError("served names exactly the parent and the candidate of a model or adapter update")
        unknown = sorted(set(self.artifacts) - set(ARTIFACT_ROLES))
        if unknown:
            raise ValueError(f"unknown artifact role {unknown[0]!r}")
        missing = [r for r in REQUIRED_ROLES[self.kind] if r not in self.artifacts]
        if missing:
            raise ValueError(f"a {self.kind} update needs artifact {missing[0]!r}")
        expected_base = self.candidate.digest if self.kind == "model" else self.artifacts["parent"].digest
        if self.base != expected_base:
            raise ValueError("base must be the candidate (new base model) or the parent model's digest")
        return self

    @property
    def candidate(self) -> ArtifactDigest:
        return self.artifacts[CANDIDATE_ROLE[self.kind]]

    @property
    def slot(self) -> str:
        return SLOT_OF_KIND[self.kind]


def _candidate_digest(body: Proposal) -> str:
    return body.candidate.digest


@entry_type(
    "update.proposed",
    {"pipeline"},
    needs_subject=True,
    subject_of=_candidate_digest,
    subject_label="the candidate's digest",
)
class Proposal(ProposalContent, EntryBody):
    """A candidate update enters the gate (`update.proposed`); the subject is the candidate's digest."""

    update_id: str = Field(pattern=UPDATE_ID)

    @model_validator(mode="after")
    def _derived_id(self) -> Proposal:
        if self.update_id != derive_update_id(self):
            raise ValueError("update_id is not derived from the proposal's content")
        return self

    @classmethod
    def of(cls, content: ProposalContent) -> Proposal:
        """The proposal of `content`, with its derived id."""
        return cls(**dict(content), update_id=derive_update_id(content))


# --- audit.completed ----------------------------------------------------------------------------


class PolicyRef(_Record):
    name: str
    digest: str = Field(pattern=DIGEST)


class ApprovalRequirement(_Record):
    """n-of-m: `required` distinct approvers, from `approvers` (key ids or key names) if given."""

    required: int = Field(default=1, ge=1)
    approvers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _satisfiable(self) -> ApprovalRequirement:
        if self.approvers and self.required > len(self.approvers):
            raise ValueError(
                f"required = {self.required} but only {len(self.approvers)} approvers are listed"
            )
        return self


class WitnessRequirement(_Record):
    """Promotion needs a checkpoint covering the audit cosigned by `required` witnesses (by name)."""

    required: int = Field(default=0, ge=0)
    names: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _satisfiable(self) -> WitnessRequirement:
        if self.names and self.required > len(self.names):
            raise ValueError(f"required = {self.required} but only {len(self.names)} witnesses are named")
        return self


class JudgedWith(_Record):
    """The model a memory update was asked through: its deployment's base, under `adapter` (an adapter
    update's id) if any."""

    adapter: str | None = Field(default=None, pattern=UPDATE_ID)


@entry_type("audit.completed", {"gate"}, needs_subject=True)
class AuditRecord(EntryBody):
    """The gate's judgement of one proposal, under an adopted policy (pinned by digest)."""

    update_id: str = Field(pattern=UPDATE_ID)
    verdict: Decision
    findings: list[Finding]
    measurements: dict[str, str] = Field(default_factory=dict)
    policy: PolicyRef
    approvals: ApprovalRequirement = Field(default_factory=ApprovalRequirement)
    witnesses: WitnessRequirement = Field(default_factory=WitnessRequirement)
    judged_with: JudgedWith | None = None
    """For a memory update: what the model ran as when the gate asked it. Its promotion needs the deployment
    to run that adapter then: a memory judged with one adapter says nothing of what the model says with
    another. Absent in audits recorded before clgate recorded it (not checked)."""
    accuracy: dict[str, float] = Field(default_factory=dict)
    """What the audited candidate scored on its deployment's tasks, by the id of the update whose target set
    it is (its own, and each earlier promoted one the `regression` check reran): the rows of the regression
    history, signed by the gate, so neither a lost evidence file nor an erasure (accuracies quote no one)
    lowers the best a task reached. Empty in audits recorded before clgate recorded it (their evidence is
    read instead)."""

    @field_validator("accuracy")
    @classmethod
    def _accuracies(cls, accuracy: dict[str, float]) -> dict[str, float]:
        for task, value in accuracy.items():
            if not re.fullmatch(UPDATE_ID, task) or not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"accuracy[{task!r}] = {value!r}: expected an update id and a number in [0, 1]"
                )
        return accuracy

    @model_validator(mode="after")
    def _verdict_follows_findings(self) -> AuditRecord:
        _check_verdict(self.verdict, self.findings)
        return self


# --- decisions by people, deployment --------------------------------------------------------------


@entry_type("promotion.approved", {"approver", "auditor"}, needs_subject=True)
class Approval(EntryBody):
    update_id: str = Field(pattern=UPDATE_ID)
    note: str = ""


@entry_type("promotion.blocked", {"gate", "auditor", "approver"}, needs_subject=True)
class Block(EntryBody):
    """A block, by the gate (after a `block` audit) or by a person: final for that proposal."""

    update_id: str = Field(pattern=UPDATE_ID)
    reason: str = Field(min_length=1)


@entry_type("promotion.done", {"approver"}, needs_subject=True)
class Promotion(EntryBody):
    """Deploys an audited update in its slot. `checkpoint`: a witnessed checkpoint, where required."""

    update_id: str = Field(pattern=UPDATE_ID)
    slot: str
    replaced: str | None = None
    checkpoint: str | None = None


@entry_type("rollback", {"approver"}, needs_subject=True)
class Rollback(EntryBody):
    """Puts a previously deployed update back; the one it replaces needs a new proposal to return."""

    update_id: str = Field(pattern=UPDATE_ID)
    slot: str
    replaced: str | None = None
    reason: str = Field(min_length=1)


def _artifact_subject(body: Any) -> str:
    return body.artifact


# Signed by an approver: a release signature says "these bytes are what we deployed", and the approver
# is the role that deploys (`promotion.done`), held by accountable people. The gate's key judges and
# runs unattended in a service; pipeline and admin keys have other jobs. The ledger's rules allow it
# only for a promoted update that was not rolled back, so no key can bless bytes nobody deployed.
@entry_type(
    "artifact.signed",
    {"approver"},
    needs_subject=True,
    subject_of=_artifact_subject,
    subject_label="body.artifact",
)
class ArtifactSigned(EntryBody):
    """A promoted artifact (`artifact`, its manifest root: the update's candidate digest) signed for
    release with an OpenSSF model signature that anyone can check with `model_signing`."""

    update_id: str = Field(pattern=UPDATE_ID)
    artifact: str = Field(pattern=DIGEST)
    signature: OmsSignature


class DeployedFile(_Record):
    """One deployed artifact a scheduled run hashed (`digest`) and compared with what its slot's promotion
    recorded (`expected`; the files `changed`, `missing` or `extra`)."""

    deployment: str = Field(pattern=NAME)
    slot: str
    path: str
    digest: str = Field(pattern=DIGEST)
    update_id: str | None = Field(default=None, pattern=UPDATE_ID)
    expected: str | None = Field(default=None, pattern=DIGEST)
    changed: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    extra: list[str] = Field(default_factory=list)


@entry_type("audit.scheduled_run", {"gate", "auditor"})
class ScheduledRun(EntryBody):
    """A deployment-time audit of what `deployment` runs: the files it hashed, its findings and the
    measurements behind them, under the policy it names (`clgate audit run` requires an adopted one). Typed
    and replayed like the other decisions, so one malformed run can break no report, dashboard or erasure
    that reads the ledger later."""

    verdict: Decision
    deployment: str = Field(default="default", pattern=NAME)
    deployed: list[DeployedFile] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    measurements: dict[str, Annotated[str, Field(pattern=DIGEST)]] = Field(default_factory=dict)
    policy: PolicyRef | None = None

    @model_validator(mode="after")
    def _verdict_follows_findings(self) -> ScheduledRun:
        _check_verdict(self.verdict, self.findings)
        if any(d.deployment != self.deployment for d in self.deployed):
            raise ValueError(f"a deployed file is not deployment {self.deployment!r}'s")
        return self


# --- erasure of a data subject's data (GDPR Art. 17) ----------------------------------------------


class TrainedOn(_Record):
    """A promoted update of the deployment whose training data carried the erased data: `records` are
    the matching records' 1-based numbers; None when its data could not be read back as proposed (missing
    or changed), so it counts as trained on it."""

    update_id: str = Field(pattern=UPDATE_ID)
    data_digest: str = Field(pattern=DIGEST)
    records: list[int] | None = None  # None (left out of the entry): its data could not be read back


def _request_subject(body: Any) -> str:
    return body.request_id


def _about_request(name: str, roles: set[str]) -> Callable[[_B], _B]:
    """An erasure entry type: its subject is the request's id."""
    return entry_type(
        name, roles, needs_subject=True, subject_of=_request_subject, subject_label="body.request_id"
    )


@_about_request("erasure.requested", {"auditor", "approver"})
class ErasureRequest(EntryBody):
    """What an erasure request found in a deployment, recorded before anything is removed.

    The subject's identifier or pattern is never recorded: `matcher_digest` is SHA-256 over `salt`, the
    matcher's kind and its value, so whoever holds the identifier can show this request was about it and
    nobody else can read it. `memory_update` is the deployed memory the store was scanned as, and
    `memory_entries` the ids of its entries that carry the data; `trained_on` the promoted updates whose
    training data did, which may never be deployed again."""

    request_id: str = Field(pattern=UPDATE_ID)
    deployment: str = Field(pattern=NAME)
    matcher: Literal["subject", "pattern"]
    matcher_digest: str = Field(pattern=DIGEST)
    salt: str = Field(pattern=r"^[0-9a-f]{32}$")
    memory_update: str | None = Field(default=None, pattern=UPDATE_ID)
    memory_digest: str | None = Field(default=None, pattern=DIGEST)
    memory_entries: list[str] = Field(default_factory=list)
    trained_on: list[TrainedOn] = Field(default_factory=list)
    nonce: str = Field(pattern=r"^[0-9a-f]{16,64}$")

    @model_validator(mode="after")
    def _derived_id(self) -> ErasureRequest:
        if self.request_id != derive_update_id(self, "request_id"):
            raise ValueError("request_id is not derived from the request's content")
        return self

    @classmethod
    def of(cls, **content: Any) -> ErasureRequest:
        """The request with its id derived from its content (typed values: `TrainedOn`, not dicts)."""
        return cls(**content, request_id=derive_update_id(cls.model_construct(**content), "request_id"))


@_about_request("erasure.done", {"auditor", "approver"})
class ErasureDone(EntryBody):
    """The erased data is gone: the deployed memory (`memory_update`, promoted after the request, its store's
    digest `memory_digest`) was scanned afresh and no entry carries it, and no update trained on it is
    deployed. `evidence_removed`: the digests of the deployment's audit measurements that quoted the data
    (a memory diff shows entry text), deleted from the evidence store, their digests kept here."""

    request_id: str = Field(pattern=UPDATE_ID)
    memory_update: str | None = Field(default=None, pattern=UPDATE_ID)
    memory_digest: str | None = Field(default=None, pattern=DIGEST)
    entries_scanned: int = Field(ge=0)
    evidence_removed: list[str] = Field(default_factory=list)


@_about_request("erasure.withdrawn", {"admin"})
class ErasureWithdrawn(EntryBody):
    """An open erasure request withdrawn (one made too broad, or in error): once `key_quorum` distinct admins
    have signed it, the updates it listed may be rolled back to and signed again. `reason` says why."""

    request_id: str = Field(pattern=UPDATE_ID)
    reason: str = Field(min_length=1, max_length=1000)


# --- keys and policies (admin) --------------------------------------------------------------------


def _key_subject(body: Any) -> str:
    return body.key_id


@entry_type("key.added", {"admin"}, needs_subject=True, subject_of=_key_subject, subject_label="body.key_id")
class KeyAdded(EntryBody):
    """Adds a key; `key_id` must be SHA-256 of `public_key` so it proves itself."""

    key_id: str = Field(pattern=_HEX64)
    public_key: str
    roles: list[Role] = Field(min_length=1)
    name: str = ""
    key_quorum: int | None = Field(default=None, ge=1)
    """On the genesis entry only: the trust file's `key_quorum`, recorded by the log itself, so a trust file
    one admin re-signed with a lower quorum (to add keys alone) no longer matches the log it is bound to."""
    anchors: int | None = Field(default=None, ge=0, strict=True)
    """On the genesis entry only: how many trust-file keys `Ledger.init` records right after it. Those are in
    effect on its one signature; a trust-file key recorded later takes the key quorum like any other, or one
    admin could re-sign the file with a key of its own and then record it alone."""
    policy_quorum: StrictBool | None = None
    """On the genesis entry only: policies too are adopted by the key quorum of admins in this log (logs
    made before it was recorded let one admin adopt a policy, and still do, or they would fail to verify)."""

    @model_validator(mode="after")
    def _id_matches_key(self) -> KeyAdded:
        try:
            raw = base64.b64decode(self.public_key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("public_key is not base64") from None
        if len(raw) != 32 or hashlib.sha256(raw).hexdigest() != self.key_id:
            raise ValueError("key_id is not SHA-256 of the 32-byte public_key")
        return self


@entry_type(
    "key.revoked", {"admin"}, needs_subject=True, subject_of=_key_subject, subject_label="body.key_id"
)
class KeyRevoked(EntryBody):
    key_id: str = Field(pattern=_HEX64)
    reason: str = ""


def _policy_subject(body: Any) -> str:
    return body.digest


@entry_type(
    "policy.adopted", {"admin"}, needs_subject=True, subject_of=_policy_subject, subject_label="body.digest"
)
class PolicyAdopted(EntryBody):
    """Pins a policy (its exact text) that gates may judge by; the digest is SHA-256 of `text`. With
    `deployments`, only audits and scheduled runs of those deployments may cite it: a policy adopted for a
    sandbox is then no way for a gate key to wave production updates through."""

    name: str = Field(min_length=1)
    digest: str = Field(pattern=DIGEST)
    text: str = Field(min_length=1)
    deployments: list[Annotated[str, Field(pattern=NAME)]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _digest_of_text(self) -> PolicyAdopted:
        if self.digest != policy_text_digest(self.text):
            raise ValueError("digest is not SHA-256 of the policy text")
        return self


@entry_type(
    "policy.retired", {"admin"}, needs_subject=True, subject_of=_policy_subject, subject_label="body.digest"
)
class PolicyRetired(EntryBody):
    digest: str = Field(pattern=DIGEST)
    reason: str = Field(default="", max_length=1000)  # `policy retire` asks for one; early entries have none


def policy_text_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@entry_type("note", {"pipeline", "gate", "auditor", "approver"}, stateful=False)
class Note(EntryBody):
    text: str = Field(min_length=1)


# --- the envelope ---------------------------------------------------------------------------------


class EntryDraft(BaseModel):
    """What a caller asks to append; the log fills in index, timestamp, signer and prev."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    type: str
    subject: str | None = None
    body: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid_for_type(self) -> EntryDraft:
        validate_body(self.type, self.subject, self.body)
        return self


class EntryPayload(BaseModel):
    """The signed statement of one entry (DSSE payload, RFC 8785 JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    index: int = Field(ge=0)
    timestamp: str
    type: str
    subject: str | None = None
    body: dict[str, Any]
    signer: str = Field(pattern=_HEX64)
    prev: str = Field(pattern=_HEX64)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: str) -> str:
        if not _TIMESTAMP.match(value):
            raise ValueError("timestamp must be UTC like 2025-01-31T12:00:00.000000Z")
        return value

    @model_validator(mode="after")
    def _valid_for_type(self) -> EntryPayload:
        validate_body(self.type, self.subject, self.body)
        return self


def validate_body(type_name: str, subject: str | None, body: Mapping[str, Any]) -> EntryBody:
    """Check `body` against its type's model; raise ValueError saying which field is wrong."""
    spec = ENTRY_TYPES.get(type_name)
    if spec is None:
        raise ValueError(ENTRY_TYPES.unknown(type_name))
    if spec.needs_subject and not subject:
        raise ValueError(f"entry type {type_name} needs a subject")
    try:
        typed = spec.body.model_validate(dict(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        msg = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"{type_name}: body.{where}: {msg}") from None
    if spec.subject_of is not None and subject != spec.subject_of(typed):
        raise ValueError(f"{type_name}: subject must equal {spec.subject_label}")
    return typed


def typed_body(type_name: str, body: Mapping[str, Any]) -> EntryBody:
    """The typed body of a stored entry (already validated once when it was parsed)."""
    return ENTRY_TYPES[type_name].body.model_validate(dict(body))


def body_dict(body: EntryBody) -> dict[str, Any]:
    """A body as the JSON the ledger signs: defaults kept, absent optionals left out."""
    return body.model_dump(mode="json", exclude_none=True)


def make_draft(entry: EntryDraft | EntryBody | Mapping[str, Any], subject: str | None = None) -> EntryDraft:
    """Accept a draft, a typed body model (its type comes from the registry) or a plain dict."""
    try:
        if isinstance(entry, EntryDraft):
            return entry
        if isinstance(entry, EntryBody):
            return EntryDraft(type=type(entry).entry_type, subject=subject, body=body_dict(entry))  # type: ignore[attr-defined]
        data = dict(entry)
        if subject is not None:
            data["subject"] = subject
        return EntryDraft.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        loc = ".".join(str(p) for p in first["loc"])
        raise InputError(f"invalid entry: {loc + ': ' if loc else ''}{msg}") from None


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def roles_for(type_name: str) -> frozenset[str]:
    spec = ENTRY_TYPES.get(type_name)
    return spec.roles if spec else frozenset()


def is_stateful(type_name: str) -> bool:
    spec = ENTRY_TYPES.get(type_name)
    return spec is not None and spec.stateful
