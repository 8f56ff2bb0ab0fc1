"""Checkpoints (signed tree heads): size and root of the log at a moment, signed by an admin key.

Handed to an auditor or witness, a checkpoint lets them later demand a consistency proof from its
size to the current one: if the log was rewritten or truncated, no such proof exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clgate.atomic import write_bytes_atomic
from clgate.errors import InputError, IntegrityError
from clgate.ledger.canonical import canonical_json
from clgate.ledger.dsse import CHECKPOINT_PAYLOAD_TYPE, Envelope, sign_envelope
from clgate.ledger.entries import utc_now
from clgate.ledger.keys import key_id
from clgate.ledger.trust import KeyRing

CHECKPOINT_ROLES = frozenset({"admin"})


class CheckpointBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = 1
    log_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    root: str = Field(pattern=r"^[0-9a-f]{64}$")
    timestamp: str
    signer: str = Field(pattern=r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Checkpoint:
    body: CheckpointBody
    envelope: Envelope

    @property
    def size(self) -> int:
        return self.body.size

    @property
    def root(self) -> bytes:
        return bytes.fromhex(self.body.root)

    def to_bytes(self) -> bytes:
        return self.envelope.to_bytes()

    def check(self, ring: KeyRing) -> str | None:
        """None if signed by a key that held `admin` and was not revoked before `size`; else why not."""
        if json.loads(self.envelope.payload) != self.body.model_dump():
            return "checkpoint body does not match its signed payload"
        if self.envelope.keyid != self.body.signer:
            return "checkpoint envelope keyid does not match its signer"
        state = ring.keys.get(self.body.signer)
        if state is None:
            return f"checkpoint signed by unknown key {self.body.signer[:16]}"
        if not state.roles & CHECKPOINT_ROLES:
            return f"checkpoint signed by key {self.body.signer[:16]} without the admin role"
        if state.revoked_at is not None and state.revoked_at < self.size:
            return f"checkpoint signed by key {self.body.signer[:16]} revoked at entry {state.revoked_at}"
        if not self.envelope.verify(state.public_key):
            return "checkpoint signature does not verify (forged or altered)"
        return None


def sign_checkpoint(log_id: str, size: int, root: bytes, signer: Ed25519PrivateKey) -> Checkpoint:
    body = CheckpointBody(
        log_id=log_id, size=size, root=root.hex(), timestamp=utc_now(), signer=key_id(signer.public_key())
    )
    env = sign_envelope(canonical_json(body.model_dump()), CHECKPOINT_PAYLOAD_TYPE, signer)
    return Checkpoint(body, env)


def parse_checkpoint(data: bytes) -> Checkpoint:
    """Parse a checkpoint envelope; the signature is checked separately, against a key ring."""
    env = Envelope.from_bytes(data)
    if env.payload_type != CHECKPOINT_PAYLOAD_TYPE:
        raise IntegrityError(f"not a checkpoint (payloadType {env.payload_type!r})")
    try:
        body = CheckpointBody.model_validate(json.loads(env.payload))
    except (ValueError, ValidationError):
        raise IntegrityError("checkpoint payload is malformed") from None
    return Checkpoint(body, env)


def load_checkpoint(path: Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint file not found: {path}")
    try:
        return parse_checkpoint(path.read_bytes().strip())
    except IntegrityError as exc:
        raise InputError(f"{path}: {exc}") from None


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> Path:
    return write_bytes_atomic(Path(path), checkpoint.to_bytes() + b"\n", mode=0o644)
