"""Who may sign what: the trust file (anchors given out of band) and the key ring built from history.

The trust file is the verifier's root of trust: public keys with roles, the log it belongs to
(`log_id`), how many admins must agree to add a key (`key_quorum`), and the revocations its owner
has seen (so a log truncated before a revocation cannot bring a revoked key back). It is signed by
one of its admin keys; `fingerprint` is what people compare out of band.

The ledger records later key changes (`key.added`, `key.revoked`, signed by admins), so the keys in
effect at entry i are the anchors plus every key added before i (by `key_quorum` distinct admins),
minus every key revoked before i. Without a trust file the first entry (a self-signed `key.added`
for an admin) is trusted on first use; that protects against later tampering but not against a
forged genesis, which is why every command that writes or reports requires a trust file.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator

from clgate.atomic import write_text_atomic
from clgate.errors import InputError
from clgate.ledger.canonical import canonical_json, sha256_hex
from clgate.ledger.dsse import verify_signature
from clgate.ledger.entries import ENTRY_TYPES, roles_for
from clgate.ledger.keys import Role, key_id, public_bytes, public_key_b64, public_key_from_b64
from clgate.toml_input import read_toml

TRUST_SCHEMA_VERSION = 2
_SIGNED_DOMAIN = b"clgate trust file v2\n"


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


class RevokedKey(BaseModel):
    """A revocation the trust file's owner has seen: the key signs nothing from entry `at` on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: int = Field(ge=0)


class TrustSignature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    sig: str


class Trust(BaseModel):
    """The trust file: anchors, the log it is bound to, the key quorum, and an admin's signature."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = TRUST_SCHEMA_VERSION
    log_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    key_quorum: StrictInt = Field(default=1, ge=1)  # "1", true or 1.0 in the file is a mistake, not a 1
    policy_quorum: StrictBool | None = None
    """Policies too are adopted by `key_quorum` admins, whatever the log's genesis says: a log whose maker
    left that out of its genesis is still held to it (absent from files made before it existed)."""
    keys: list[TrustedKey] = Field(default_factory=list)
    revoked: list[RevokedKey] = Field(default_factory=list)
    signature: TrustSignature | None = None

    @model_validator(mode="after")
    def _each_key_once(self) -> Trust:
        """A key listed twice, with two sets of roles, is recorded twice in the genesis batch: say which."""
        seen: set[str] = set()
        for k in self.keys:
            if k.key_id in seen:
                raise ValueError(
                    f"key {k.key_id[:16]} is listed twice; list each key once with all its roles"
                )
            seen.add(k.key_id)
        return self

    def revoked_at(self, kid: str) -> int | None:
        return min((r.at for r in self.revoked if r.key_id == kid), default=None)

    def by_id(self) -> dict[str, TrustedKey]:
        return {k.key_id: k for k in self.keys}

    def with_key(self, key: TrustedKey) -> Trust:
        others = [k for k in self.keys if k.key_id != key.key_id]
        return self.model_copy(update={"keys": [*others, key], "signature": None})

    def with_revocation(self, kid: str, at: int) -> Trust:
        revoked = [*self.revoked, RevokedKey(key_id=kid, at=at)]
        return self.model_copy(update={"revoked": revoked, "signature": None})

    def bound_to(self, log_id: str) -> Trust:
        return self.model_copy(update={"log_id": log_id, "signature": None})

    def content(self) -> bytes:
        """What the signature covers: the canonical JSON of everything but the signature."""
        return canonical_json(self.model_dump(mode="json", exclude={"signature"}, exclude_none=True))

    @property
    def fingerprint(self) -> str:
        return "sha256:" + sha256_hex(self.content())

    def sign(self, admin: Ed25519PrivateKey) -> Trust:
        """Signed by `admin`, which must be one of its admin anchors."""
        kid = key_id(admin.public_key())
        anchor = self.by_id().get(kid)
        if anchor is None or "admin" not in anchor.roles or self.revoked_at(kid) is not None:
            raise InputError("the trust file must be signed by one of its own (unrevoked) admin keys")
        sig = admin.sign(_SIGNED_DOMAIN + self.content())
        return self.model_copy(
            update={"signature": TrustSignature(key_id=kid, sig=base64.b64encode(sig).decode())}
        )

    def signature_problem(self) -> str | None:
        """None if signed by one of its unrevoked admin anchors, else why the signature does not hold."""
        if self.signature is None:
            return "the trust file is not signed (sign it with an admin key: `clgate keys sign-trust`)"
        anchor = self.by_id().get(self.signature.key_id)
        if anchor is None or "admin" not in anchor.roles or self.revoked_at(anchor.key_id) is not None:
            return "the trust file is signed by a key that is not one of its unrevoked admin keys"
        try:
            sig = base64.b64decode(self.signature.sig, validate=True)
        except ValueError:
            return "the trust file's signature is not base64"
        raw = base64.b64decode(anchor.public_key)
        if not verify_signature(raw, sig, _SIGNED_DOMAIN + self.content()):
            return "the trust file's signature does not verify (edited after it was signed)"
        return None

    def to_toml(self) -> str:
        lines = [f"schema_version = {self.schema_version}"]
        if self.log_id:
            lines.append(f"log_id = {json.dumps(self.log_id)}")
        lines += [f"key_quorum = {self.key_quorum}"]
        lines += ["policy_quorum = true", ""] if self.policy_quorum else [""]
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
        for r in self.revoked:
            lines += ["[[revoked]]", f"key_id = {json.dumps(r.key_id)}", f"at = {r.at}", ""]
        if self.signature:
            lines += [
                "[signature]",
                f"key_id = {json.dumps(self.signature.key_id)}",
                f"sig = {json.dumps(self.signature.sig)}",
                "",
            ]
        return "\n".join(lines)


def load_trust(path: Path, signed: bool = True) -> Trust:
    """Parse a trust file; any problem (an unsigned or altered file included) is one InputError line."""
    data = read_toml(path, "trust file")
    if data.get("schema_version", TRUST_SCHEMA_VERSION) != TRUST_SCHEMA_VERSION:
        raise InputError(f"{path}: unsupported schema_version {data.get('schema_version')}")
    try:
        trust = Trust.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: {loc}: {first['msg'].removeprefix('Value error, ')}") from None
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    problem = trust.signature_problem() if signed else None
    if problem:
        raise InputError(f"{path}: {problem}")
    return trust


def save_trust(trust: Trust, path: Path, signer: Ed25519PrivateKey) -> Path:
    """Sign `trust` with an admin anchor and write it atomically."""
    return write_text_atomic(Path(path), trust.sign(signer).to_toml(), mode=0o644)


@dataclass
class KeyState:
    public_key: bytes
    roles: frozenset[str]
    name: str = ""
    revoked_at: int | None = None
    added_at: int | None = None  # None: an anchor from the trust file


@dataclass
class KeyRing:
    """Key state replayed over the ledger in index order; `check` says why an entry is not allowed.

    A `key.added` takes effect once `key_quorum` distinct admins have signed the same addition;
    until then it is pending. Revocation needs one admin (it only removes power).
    """

    anchors: Trust | None = None
    keys: dict[str, KeyState] = field(default_factory=dict)
    pending: dict[str, set[str]] = field(default_factory=dict)  # addition digest -> admins who signed
    size: int = 0
    recorded_quorum: int | None = None
    """The key quorum the log's genesis entry recorded (None in logs made before it was recorded)."""
    policy_quorum: bool = False
    """The genesis entry says policies are adopted by the key quorum too (False in logs made before)."""
    init_size: int | None = None
    """The genesis and the trust-file keys recorded with it (None in logs made before it was recorded)."""
    genesis_signer: str = ""
    """The key that signed the genesis: the only one that records anchors in the batch after it."""

    @property
    def records_signers(self) -> bool:
        """The log recorded every trust-file key at its genesis (every log made since it recorded its
        quorum): a key only a trust file lists was put there by whoever last re-signed the file, and
        signs nothing."""
        return self.recorded_quorum is not None or self.init_size is not None

    @property
    def strict(self) -> bool:
        """The log's genesis records its anchors, as every log made since does: rules that logs made before
        could break (and would then fail verification for good) hold in it."""
        return self.init_size is not None

    def fork(self) -> KeyRing:
        """A copy that appends may change and then drop: what `apply` changes in place is copied."""
        forked = copy.copy(self)
        forked.keys = {kid: copy.copy(state) for kid, state in self.keys.items()}
        forked.pending = {addition: set(admins) for addition, admins in self.pending.items()}
        return forked

    def __post_init__(self) -> None:
        for k in self.anchors.keys if self.anchors else []:
            self.keys[k.key_id] = KeyState(_raw(k.public_key), frozenset(k.roles), k.name)
        self._apply_known_revocations()

    def _apply_known_revocations(self) -> None:
        """Revocations the trust file remembers hold even if the ledger lost them (truncation)."""
        for r in self.anchors.revoked if self.anchors else []:
            state = self.keys.get(r.key_id)
            if state is not None and (state.revoked_at is None or state.revoked_at > r.at):
                state.revoked_at = r.at

    @property
    def adopting_quorum(self) -> int:
        """How many admins must sign a policy's adoption before gates may judge by it: the key quorum where
        the log's genesis or the trust file says so."""
        asked = self.policy_quorum or (self.anchors is not None and self.anchors.policy_quorum is True)
        return self.quorum if asked else 1

    @property
    def quorum(self) -> int:
        """The stricter of the trust file's quorum and the one the log recorded: a file re-signed with a
        lower quorum lets no single admin add keys (and `verify` names the mismatch)."""
        return max(self.anchors.key_quorum if self.anchors else 1, self.recorded_quorum or 1)

    def public_key(self, kid: str) -> bytes | None:
        state = self.keys.get(kid)
        return state.public_key if state else None

    def active(self, kid: str, index: int) -> KeyState | None:
        state = self.keys.get(kid)
        if state is None or (state.revoked_at is not None and state.revoked_at <= index):
            return None
        return None if self._unrecorded(state, index) else state

    def _unrecorded(self, state: KeyState, index: int) -> bool:
        """A trust-file key this ledger never recorded, past its genesis batch (a revocation dated far ahead
        in the file kept one from `verify`'s notice while it co-signed as a second admin)."""
        return self.records_signers and state.added_at is None and index >= (self.init_size or 1)

    def label(self, kid: str) -> str:
        state = self.keys.get(kid)
        return _label(kid, state) if state else kid[:16]

    def has_role(self, kid: str, role: str, index: int) -> bool:
        state = self.active(kid, index)
        return state is not None and role in state.roles

    def keys_with(self, role: str, index: int) -> dict[str, bytes]:
        """Public keys (by id) that hold `role` and are not revoked at `index`."""
        return {kid: s.public_key for kid, s in self.keys.items() if self.has_role(kid, role, max(index, 0))}

    def recorded(self, kid: str) -> bool:
        """The ledger itself recorded this key (a `key.added` entry), not only a trust file."""
        state = self.keys.get(kid)
        return state is not None and state.added_at is not None

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
        if state.revoked_at is not None and state.revoked_at <= index:
            return f"signed by key {_label(signer, state)} revoked at entry {state.revoked_at}"
        if self._unrecorded(state, index):
            return f"signed by key {_label(signer, state)}, which only the trust file lists: this ledger never added it"
        genesis = self._genesis_refusal(index, signer, type_name, body)
        if genesis:
            return genesis
        allowed = roles_for(type_name)
        if type_name in ENTRY_TYPES and not state.roles & allowed:
            return (
                f"key {_label(signer, state)} with roles {','.join(sorted(state.roles))} may not sign "
                f"{type_name} (needs {' or '.join(sorted(allowed))})"
            )
        if type_name == "key.added":
            return self._addition_refusal(index, signer, body)
        if type_name == "key.revoked" and body["key_id"] not in self.keys:
            return f"revokes unknown key {body['key_id'][:16]}"
        return None

    def _genesis_refusal(self, index: int, signer: str, type_name: str, body: dict[str, Any]) -> str | None:
        """Inside the batch the genesis says records its anchors, only the genesis key recording a trust-file
        key with its roles (a genesis claiming more anchors than it recorded let one admin record, alone, a
        key added to the trust file much later)."""
        if self.init_size is None or not 0 < index < self.init_size or self.anchors is None:
            return None
        anchor = self.keys.get(body.get("key_id", "")) if type_name == "key.added" else None
        if signer != self.genesis_signer or anchor is None or anchor.roles != frozenset(body["roles"]):
            return (
                f"inside the genesis batch of {self.init_size - 1} trust-file keys, an entry that does not record "
                "one of them: the genesis claims anchors it did not record, or the trust file is not this log's"
            )
        return None

    def _addition_refusal(self, index: int, signer: str, body: dict[str, Any]) -> str | None:
        if index != 0 and any(body.get(f) is not None for f in ("key_quorum", "policy_quorum", "anchors")):
            return "only the genesis entry records the key quorum, its anchors and whether policies need it"
        target = self.keys.get(body["key_id"])
        if target and target.revoked_at is not None and target.revoked_at <= index:
            return f"key {body['key_id'][:16]} was revoked at entry {target.revoked_at}; it cannot return"
        if signer in self.pending.get(_addition(body), set()):
            return "this admin already signed this key addition; another admin must co-sign it"
        name = body.get("name", "")
        clash = [
            kid
            for kid, s in self.keys.items()
            if name and s.name == name and kid != body["key_id"] and s.revoked_at is None
        ]
        if clash:
            return f"name {name!r} is already held by key {clash[0][:16]}; names identify approvers"
        return None

    def apply(self, index: int, type_name: str, body: dict[str, Any], signer: str = "") -> None:
        """Record the effect of an accepted entry."""
        if type_name == "key.added":
            if index == 0:
                self.recorded_quorum = body.get("key_quorum")
                self.genesis_signer = signer
                self.policy_quorum = body.get("policy_quorum") is True
                self.init_size = 1 + body["anchors"] if body.get("anchors") is not None else None
            existing = self.keys.get(body["key_id"])
            in_init = self.init_size is None or index < self.init_size
            if existing is not None and existing.roles == frozenset(body["roles"]) and in_init:
                if existing.added_at is None:  # an anchor, now also recorded by the ledger itself
                    existing.added_at = index
                self.size = index + 1
                return
            signers = self.pending.setdefault(_addition(body), set())
            signers.add(signer)
            # an admin revoked since co-signing no longer speaks for the addition
            live = {s for s in signers if self.active(s, index) is not None}
            if len(live) >= self.quorum or (index == 0 and self.anchors is None):
                self.keys[body["key_id"]] = KeyState(
                    _raw(body["public_key"]), frozenset(body["roles"]), body.get("name", ""), None, index
                )
                self.pending.pop(_addition(body), None)
                self._apply_known_revocations()
            genesis = self.keys.get(body["key_id"]) if index == 0 else None
            if genesis is not None and genesis.added_at is None:
                # the genesis records its own signer (an anchor the file gives more roles than the genesis
                # names, under a quorum, stayed pending, and could then sign nothing), pending no longer
                genesis.added_at = 0
                self.pending.pop(_addition(body), None)
        elif type_name == "key.revoked" and body["key_id"] in self.keys:
            state = self.keys[body["key_id"]]
            if state.revoked_at is None or state.revoked_at > index:
                state.revoked_at = index
        self.size = index + 1


def _addition(body: dict[str, Any]) -> str:
    return sha256_hex(canonical_json({k: body.get(k) for k in ("key_id", "public_key", "roles", "name")}))


def _raw(b64: str) -> bytes:
    return public_bytes(public_key_from_b64(b64))


def _self_signed_admin(signer: str, type_name: str, body: dict[str, Any]) -> bool:
    return type_name == "key.added" and body.get("key_id") == signer and "admin" in body.get("roles", [])


def _label(kid: str, state: KeyState) -> str:
    return f"{state.name} ({kid[:16]})" if state.name else kid[:16]
