"""RFC 8785 (JCS) canonical JSON: one byte string per value, so signatures and hashes are stable."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from clgate.errors import InputError


def canonical_json(value: Any) -> bytes:
    """Serialise `value` per RFC 8785; values JSON cannot carry exactly are refused, not rounded."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InputError(f"value cannot be canonical JSON: {exc}") from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
