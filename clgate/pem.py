"""PEM private key files of any kind: a missing file, a missing or wrong passphrase is one line, not a traceback.

Shared by the ledger's Ed25519 keys and the EC keys that sign OpenSSF model signatures; each caller
checks the kind of key it needs.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from clgate.errors import InputError


def read_key_file(path: Path, what: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}")
    return path.read_bytes()


def read_private_key(path: Path, passphrase: str | None = None) -> PrivateKeyTypes:
    """Load a PEM private key; a wrong or missing passphrase is an InputError."""
    data = read_key_file(path, "private key")
    try:
        return serialization.load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except TypeError:
        if passphrase:  # one variable serves every key a command reads: an unencrypted one needs none
            return serialization.load_pem_private_key(data, None)
        raise InputError(f"{path}: key is encrypted; give its passphrase") from None
    except UnsupportedAlgorithm:
        raise InputError(f"{path}: a kind of key clgate does not read") from None
    except ValueError:
        if passphrase and b"ENCRYPTED" in data:
            raise InputError(f"{path}: wrong passphrase") from None
        raise InputError(f"{path}: not a PEM private key") from None
