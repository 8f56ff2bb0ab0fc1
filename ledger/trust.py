"""Who may sign what: the trust file (anchors given out of band) and the key ring built from history.

The trust file is the verifier's root of trust: public keys with roles, handed over outside the
ledger. The ledger itself records later key changes (`key.added`, `key.revoked`, signed by an admin),
so the effective keys at entry i are the anchors plus every key added before i, minus every key
revoked before i. Without a trust file the first entry (a self-signed `key.added` for an admin) is
trusted on first use; that protects against later tampering but not against a forged genesis.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clgate.atomic import write_text_atomic
from clgate.errors import InputError
from clgate.ledger.entries import ENTRY_TYPES, roles_for
from clgate.ledger.keys import Role, key_id, public_bytes, public_key_b64, public_key_from_b64


class TrustedKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    key_id: str = ""
    public_key: str
    roles: list[Role] = Field(min_length=1)

    @model_validator(mode="after")
    def _id_matches(self) -> TrustedKey:
        actual = key_id(public_key_from_b64(self.public_key))
        if self.key_id and self.key_id != actual:
            raise ValueError(f"key_id {self.key_id[:12]}… does not match public_key ({actual[:12]}…)")
        object.__setattr__(self, "key_id", actual)
        return self

    @classmethod
    def of(cls, public_key: Ed25519PublicKey, roles: list[str], name: str = "") -> TrustedKey:
        return cls(name=name, public_key=public_key_b64(public_key), roles=roles)  # type: ignore[arg-type]


class Trust(BaseModel):
    """The trust file: `schema_version = 1` and one `[[keys]]` table per anchor key."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    keys: list[TrustedKey] = Field(default_factory=list)

    def by_id(self) -> dict[str, TrustedKey]:
        return {k.key_id: k for k in self.keys}

    def with_key(self, key: TrustedKey) -> Trust:
        others = [k for k in self.keys if k.key_id != key.key_id]
        return Trust(schema_version=self.schema_version, keys=[*others, key])

    def to_toml(self) -> str:
        lines = [f"schema_version = {self.schema_version}", ""]
        for k in self.keys:
            roles = ", ".join(json.dumps(r) for r in k.roles)
            lines += [
                "[[keys]]",
                f"name = {json.dumps(k.name)}",
                f"key_id = {json.dumps(k.key_id)}",
                f"public_key = {json.dumps(k.public_key)}",
                f"roles = [{roles}]",
                "",
            ]
        return "\n".join(lines)


def load_trust(path: Path) -> Trust:
    """Parse a trust file; any problem is one InputError line naming the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"trust file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    try:
        trust = Trust.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: {loc}: {first['msg'].removeprefix('Value error, ')}") from None
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    if trust.schema_version != 1:
        raise InputError(f"{path}: unsupported schema_version {trust.schema_version}")
    return trust


def save_trust(trust: Trust, path: Path) -> Path:
    return write_text_atomic(Path(path), trust.to_toml(), mode=0o644)


@dataclass
class KeyState:
    public_key: bytes
    roles: frozenset[str]
    name: str = ""
    revoked_at: int | None = None


@dataclass
class KeyRing:
    """Key state replayed over the ledger in index order; `check` says why an entry is not allowed."""

    anchors: Trust | None = None
    keys: dict[str, KeyState] = field(default_factory=dict)
    size: int = 0

    def __post_init__(self) -> None:
        for k in self.anchors.keys if self.anchors else []:
            self.keys[k.key_id] = KeyState(_raw(k.public_key), frozenset(k.roles), k.name)

    def public_key(self, kid: str) -> bytes | None:
        state = self.keys.get(kid)
        return state.public_key if state else None

    def check(self, index: int, signer: str, type_name: str, body: dict[str, Any]) -> str | None:
        """None if `signer` may sign an entry of `type_name` at `index`, else the reason it may not."""
        state = self.keys.get(signer)
        if (
            state is None
            and index == 0
            and self.anchors is None
            and _self_signed_admin(signer, type_name, body)
        ):
            return None
        if state is None:
            return f"signed by unknown key {signer[:16]}"
        if state.revoked_at is not None:
            return f"signed by key {_label(signer, state)} revoked at entry {state.revoked_at}"
        allowed = roles_for(type_name)
        if type_name in ENTRY_TYPES and not state.roles & allowed:
            return (
                f"key {_label(signer, state)} with roles {','.join(sorted(state.roles))} may not sign "
                f"{type_name} (needs {' or '.join(sorted(allowed))})"
            )
        if type_name == "key.added" and (target := self.keys.get(body["key_id"])) and target.revoked_at:
            return f"key {body['key_id'][:16]} was revoked at entry {target.revoked_at}; it cannot return"
        if type_name == "key.revoked" and body["key_id"] not in self.keys:
            return f"revokes unknown key {body['key_id'][:16]}"
        return None

    def apply(self, index: int, type_name: str, body: dict[str, Any]) -> None:
        """Record the effect of an accepted entry."""
        if type_name == "key.added":
            self.keys[body["key_id"]] = KeyState(
                _raw(body["public_key"]), frozenset(body["roles"]), body.get("name", "")
            )
        elif type_name == "key.revoked" and body["key_id"] in self.keys:
            self.keys[body["key_id"]].revoked_at = index
        self.size = index + 1


def _raw(b64: str) -> bytes:
    return public_bytes(public_key_from_b64(b64))


def _self_signed_admin(signer: str, type_name: str, body: dict[str, Any]) -> bool:
    return type_name == "key.added" and body.get("key_id") == signer and "admin" in body.get("roles", [])


def _label(kid: str, state: KeyState) -> str:
    return f"{state.name} ({kid[:16]})" if state.name else kid[:16]
