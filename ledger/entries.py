"""Ledger entry payloads: the signed statement, and a registry of entry types.

Every entry is an `EntryPayload`: a typed envelope (`type`, `subject`, `body`) plus the fields the
log needs (index, timestamp, signer, previous entry hash). Each type registers a body model, which
names the fields that type must carry (extra fields are kept: the gate adds digests and
measurements freely), and the roles allowed to sign it. Adding a type is one decorated class.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clgate.errors import InputError
from clgate.ledger.keys import ROLES, Role

SCHEMA_VERSION = 1
GENESIS_PREV = "0" * 64
_HEX64 = r"^[0-9a-f]{64}$"
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


class EntryBody(BaseModel):
    """Base of every body model: required fields are declared, anything else JSON is kept."""

    model_config = ConfigDict(extra="allow", frozen=True)


@dataclass(frozen=True)
class EntryType:
    name: str
    body: type[EntryBody]
    roles: frozenset[str]
    needs_subject: bool


ENTRY_TYPES: dict[str, EntryType] = {}
_B = TypeVar("_B", bound=type[EntryBody])


def entry_type(name: str, roles: set[str], needs_subject: bool = False) -> Callable[[_B], _B]:
    """Register a body model as entry type `name`, signable by `roles` (and always by admin)."""

    def register(cls: _B) -> _B:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)} for entry type {name}")
        ENTRY_TYPES[name] = EntryType(name, cls, frozenset(roles) | {"admin"}, needs_subject)
        cls.entry_type = name  # type: ignore[attr-defined]
        return cls

    return register


@entry_type("update.proposed", {"pipeline"}, needs_subject=True)
class UpdateProposed(EntryBody):
    """A candidate update enters the gate; subject is the candidate's manifest digest."""


@entry_type("audit.completed", {"pipeline", "auditor"}, needs_subject=True)
class AuditCompleted(EntryBody):
    verdict: Literal["promote", "review", "block"]


@entry_type("promotion.approved", {"auditor", "approver"}, needs_subject=True)
class PromotionApproved(EntryBody):
    pass


@entry_type("promotion.blocked", {"pipeline", "auditor", "approver"}, needs_subject=True)
class PromotionBlocked(EntryBody):
    reason: str = Field(min_length=1)


@entry_type("promotion.done", {"approver"}, needs_subject=True)
class PromotionDone(EntryBody):
    pass


@entry_type("rollback", {"approver"}, needs_subject=True)
class Rollback(EntryBody):
    reason: str = Field(min_length=1)


@entry_type("audit.scheduled_run", {"pipeline", "auditor"})
class AuditScheduledRun(EntryBody):
    pass


@entry_type("key.added", {"admin"}, needs_subject=True)
class KeyAdded(EntryBody):
    """Adds (or re-roles) a key; `key_id` must be SHA-256 of `public_key` so it proves itself."""

    key_id: str = Field(pattern=_HEX64)
    public_key: str
    roles: list[Role] = Field(min_length=1)
    name: str = ""

    @model_validator(mode="after")
    def _id_matches_key(self) -> KeyAdded:
        try:
            raw = base64.b64decode(self.public_key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("public_key is not base64") from None
        if len(raw) != 32 or hashlib.sha256(raw).hexdigest() != self.key_id:
            raise ValueError("key_id is not SHA-256 of the 32-byte public_key")
        return self


@entry_type("key.revoked", {"admin"}, needs_subject=True)
class KeyRevoked(EntryBody):
    key_id: str = Field(pattern=_HEX64)
    reason: str = ""


@entry_type("note", {"pipeline", "auditor", "approver"})
class Note(EntryBody):
    text: str = Field(min_length=1)


class EntryDraft(BaseModel):
    """What a caller asks to append; the log fills in index, timestamp, signer and prev."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    subject: str | None = None
    body: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid_for_type(self) -> EntryDraft:
        validate_body(self.type, self.subject, self.body)
        return self


class EntryPayload(BaseModel):
    """The signed statement of one entry (DSSE payload, RFC 8785 JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
        raise ValueError(f"unknown entry type {type_name!r} (known: {', '.join(sorted(ENTRY_TYPES))})")
    if spec.needs_subject and not subject:
        raise ValueError(f"entry type {type_name} needs a subject")
    if type_name.startswith("key.") and subject != body.get("key_id"):
        raise ValueError(f"{type_name}: subject must equal body.key_id")
    try:
        return spec.body.model_validate(dict(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValueError(f"{type_name}: body.{where}: {first['msg']}") from None


def make_draft(entry: EntryDraft | EntryBody | Mapping[str, Any], subject: str | None = None) -> EntryDraft:
    """Accept a draft, a typed body model (its type comes from the registry) or a plain dict."""
    try:
        if isinstance(entry, EntryDraft):
            return entry
        if isinstance(entry, EntryBody):
            return EntryDraft(type=type(entry).entry_type, subject=subject, body=entry.model_dump())  # type: ignore[attr-defined]
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
    return spec.roles if spec else frozenset({"admin"})
