"""Ed25519 key files and key ids.

A key id is SHA-256 of the raw 32-byte public key, so anyone holding the public key can check a
claimed id without trusting whoever stated it. Private keys are PKCS#8 PEM, mode 0600, optionally
encrypted with a passphrase.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path
from typing import Literal, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clgate.atomic import write_bytes_atomic
from clgate.errors import InputError
from clgate.pem import read_key_file, read_private_key

# Least privilege, one job each: the training job proposes (pipeline), the gate service judges and
# signs checkpoints (gate), people review (auditor) and deploy (approver), witnesses cosign
# checkpoints, and admins manage keys and policies and nothing else.
Role = Literal["pipeline", "gate", "auditor", "approver", "admin", "witness"]
ROLES: tuple[str, ...] = get_args(Role)

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(*_RAW)


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_bytes(public_key)).hexdigest()


def public_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != 32:
        raise InputError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    try:
        return public_key_from_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise InputError("public key is not base64 of 32 raw Ed25519 bytes") from None


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    return base64.b64encode(public_bytes(public_key)).decode()


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


PASSPHRASE_ENV = "CLGATE_KEY_PASSPHRASE"


def passphrase_from_env(variable: str | None = None) -> str | None:
    """One convention for every command that signs: a key's passphrase comes from an environment
    variable, `$CLGATE_KEY_PASSPHRASE` (unset: an unencrypted key) unless `variable` names another,
    which must then be set; never from an argument, where `ps` and shell history would show it."""
    if variable is None:
        return os.environ.get(PASSPHRASE_ENV)
    if variable not in os.environ:
        raise InputError(f"environment variable {variable} (the passphrase) is not set")
    return os.environ[variable]


def save_private_key(key: Ed25519PrivateKey, path: Path, passphrase: str | None = None) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return write_bytes_atomic(Path(path), pem, mode=0o600)


def save_public_key(public_key: Ed25519PublicKey, path: Path) -> Path:
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return write_bytes_atomic(Path(path), pem, mode=0o644)


def load_private_key(path: Path, passphrase: str | None = None) -> Ed25519PrivateKey:
    """Load a PEM private key; a wrong or missing passphrase is an InputError, not a traceback."""
    key = read_private_key(path, passphrase)
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path}: not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Load a public key from a PEM file (public or private: the public half is taken)."""
    data = read_key_file(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except UnsupportedAlgorithm:
        raise InputError(f"{path}: not an Ed25519 key") from None
    except ValueError:
        if b"PRIVATE KEY" in data and b"ENCRYPTED" not in data:
            return load_private_key(path).public_key()
        raise InputError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path}: not an Ed25519 key")
    return key
