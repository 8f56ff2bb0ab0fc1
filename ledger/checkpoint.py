"""Checkpoints (signed tree heads) and witness cosignatures, in the C2SP formats.

A checkpoint is a C2SP signed note (c2sp.org/tlog-checkpoint): the log's origin, its size and its
base64 root, signed by a `gate` key of the log (Ed25519 note signature, type 0x01). Witnesses
cosign it (c2sp.org/tlog-cosignature, `cosignature/v1`, type 0x04) after checking that the log
only grew since the last checkpoint they saw. Handed to an auditor or witness, a checkpoint lets
them later demand a consistency proof from its size: if the log was rewritten or truncated, none
exists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clgate.atomic import write_bytes_atomic
from clgate.errors import InputError
from clgate.ledger.dsse import verify_signature
from clgate.ledger.keys import public_bytes

ORIGIN_PREFIX = "clgate.dev/ledger/"
_DASH = "\u2014 "
_ED25519, _COSIGNATURE = b"\x01", b"\x04"
_COSIGN_HEADER = "cosignature/v1\n"
MAX_SIGNATURES = 64


def log_origin(log_id: str) -> str:
    """The checkpoint origin line of a ledger: its log id under clgate's namespace."""
    return ORIGIN_PREFIX + log_id


def note_key_hash(name: str, kind: bytes, public_key: bytes) -> bytes:
    """C2SP signed-note key ID: SHA-256(name || 0x0A || type || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + kind + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hash: bytes
    signature: bytes  # for cosignatures: 8-byte big-endian timestamp || Ed25519 signature

    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_hash + self.signature).decode()}\n"


@dataclass(frozen=True)
class CheckpointNote:
    """A checkpoint's note text and every signature line on it (the log's and witnesses')."""

    origin: str
    size: int
    root: bytes
    signatures: tuple[NoteSignature, ...] = ()

    @property
    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @property
    def log_id(self) -> str:
        return self.origin.removeprefix(ORIGIN_PREFIX)

    def to_text(self) -> str:
        return self.body + "\n" + "".join(s.line() for s in self.signatures)

    def to_bytes(self) -> bytes:
        return self.to_text().encode()

    @classmethod
    def parse(cls, text: str) -> CheckpointNote:
        """Parse a signed note; ValueError saying what is malformed. Signatures are checked apart."""
        if any(ord(c) < 0x20 and c != "\n" for c in text):
            raise ValueError("a signed note may not contain control characters")
        body, sep, sigs = text.rpartition("\n\n")
        lines = body.split("\n")
        if not sep or len(lines) != 3:
            raise ValueError("not a checkpoint note (origin, size, root, blank line, signatures)")
        origin, size, root = lines[:3]
        if not origin or not size.isdigit() or (size != "0" and size.startswith("0")):
            raise ValueError("checkpoint origin or size line is malformed")
        try:
            root_bytes = base64.b64decode(root, validate=True)
        except binascii.Error:
            raise ValueError("checkpoint root is not base64") from None
        if len(root_bytes) != 32:
            raise ValueError("checkpoint root is not 32 bytes")
        signatures = []
        for line in sigs.split("\n")[:-1] if sigs.endswith("\n") else [None]:
            if line is None or not line.startswith(_DASH) or line.count(" ") != 2:
                raise ValueError("malformed signature line")
            name, b64 = line[len(_DASH) :].split(" ")
            try:
                raw = base64.b64decode(b64, validate=True)
            except binascii.Error:
                raise ValueError("signature is not base64") from None
            if len(raw) < 5:
                raise ValueError("signature is too short")
            signatures.append(NoteSignature(name, raw[:4], raw[4:]))
        if not signatures or len(signatures) > MAX_SIGNATURES:
            raise ValueError(f"a note carries 1 to {MAX_SIGNATURES} signatures")
        return cls(origin, int(size), root_bytes, tuple(signatures))

    def _log_signed(self, sig: NoteSignature, public: bytes) -> bool:
        return (
            sig.name == self.origin
            and sig.key_hash == note_key_hash(self.origin, _ED25519, public)
            and verify_signature(public, sig.signature, self.body.encode())
        )

    def _cosigned_by(self, sig: NoteSignature, public: bytes, name: str) -> bool:
        return (
            sig.name == name
            and sig.key_hash == note_key_hash(name, _COSIGNATURE, public)
            and len(sig.signature) == 72
            and verify_signature(public, sig.signature[8:], self._cosigned(sig.signature[:8]))
        )

    def signer(self, keys: dict[str, bytes]) -> str | None:
        """The id of the key in `keys` whose note signature (name = origin) verifies, if any."""
        for sig in self.signatures:
            for kid, public in keys.items():
                if self._log_signed(sig, public):
                    return kid
        return None

    def signed_by_any(self, keys: dict[str, bytes]) -> bool:
        return self.signer(keys) is not None

    def cosigners(self, keys: dict[str, bytes], names: dict[str, str]) -> int:
        """How many distinct keys of `keys` (named by `names`) made a valid cosignature/v1 on this note."""
        return len(
            {
                kid
                for sig in self.signatures
                for kid, public in keys.items()
                if self._cosigned_by(sig, public, names.get(kid, ""))
            }
        )

    def verifies(
        self,
        sig: NoteSignature,
        log_keys: dict[str, bytes],
        witnesses: dict[str, bytes],
        names: dict[str, str],
    ) -> bool:
        """`sig` is the log's signature or a witness's cosignature, by one of these keys."""
        return any(self._log_signed(sig, k) for k in log_keys.values()) or any(
            self._cosigned_by(sig, k, names.get(kid, "")) for kid, k in witnesses.items()
        )

    def _cosigned(self, timestamp: bytes) -> bytes:
        return f"{_COSIGN_HEADER}time {int.from_bytes(timestamp, 'big')}\n{self.body}".encode()

    def merged(self, other: CheckpointNote) -> CheckpointNote:
        """The same checkpoint with both notes' signatures (cosignatures arrive one by one)."""
        if other.body != self.body:
            raise ValueError("cannot merge signatures of different checkpoints")
        extra = tuple(s for s in other.signatures if s not in self.signatures)
        return replace(self, signatures=self.signatures + extra)

    def check(self, gate_keys: dict[str, bytes], log_id: str | None) -> str | None:
        """None if this checkpoint is of log `log_id` and signed by one of `gate_keys`; else why not."""
        if log_id and self.origin != log_origin(log_id):
            return "checkpoint belongs to a different log (origin differs)"
        if not self.signed_by_any(gate_keys):
            return "checkpoint is not signed by a gate key of this log (forged or altered)"
        return None


def sign_checkpoint(log_id: str, size: int, root: bytes, signer: Ed25519PrivateKey) -> CheckpointNote:
    """A checkpoint note of the log at `size`, signed by the log's (gate) key."""
    origin = log_origin(log_id)
    note = CheckpointNote(origin, size, root)
    public = public_bytes(signer.public_key())
    sig = NoteSignature(origin, note_key_hash(origin, _ED25519, public), signer.sign(note.body.encode()))
    return replace(note, signatures=(sig,))


def cosign(
    note: CheckpointNote, signer: Ed25519PrivateKey, name: str, at: int | None = None
) -> CheckpointNote:
    """`note` with a cosignature/v1 by `signer` under `name` (a witness's schema-less URL)."""
    if not name or any(c.isspace() or c == "+" for c in name):
        raise InputError(f"witness name {name!r} must be non-empty, without spaces or '+'")
    stamp = int(time.time() if at is None else at).to_bytes(8, "big")
    public = public_bytes(signer.public_key())
    sig = signer.sign(note._cosigned(stamp))
    line = NoteSignature(name, note_key_hash(name, _COSIGNATURE, public), stamp + sig)
    return replace(note, signatures=(*note.signatures, line))


def parse_checkpoint(data: bytes) -> CheckpointNote:
    try:
        return CheckpointNote.parse(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"not a checkpoint: {exc}") from None


def load_checkpoint(path: Path) -> CheckpointNote:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint file not found: {path}")
    try:
        return parse_checkpoint(path.read_bytes())
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def save_checkpoint(note: CheckpointNote, path: Path) -> Path:
    return write_bytes_atomic(Path(path), note.to_bytes(), mode=0o644)
