"""RFC 8785 (JCS) canonical JSON: one byte string per value, so signatures and hashes are stable."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

from clgate.errors import InputError

_INT_MAX = 2**53 - 1
_BMP_MAX = "\uffff"


def canonical_json(value: Any) -> bytes:
    """Serialise `value` per RFC 8785; values JSON cannot carry exactly are refused, not rounded.

    Values made only of strings, safe integers, booleans, null, lists and objects with BMP keys
    (every ledger entry the gate writes) are encoded by `json.dumps`, which yields the same bytes
    as RFC 8785 for them several times faster; anything else (floats above all) goes to `rfc8785`.
    """
    if _plain(value):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate: let rfc8785 refuse it
            pass
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InputError(f"value cannot be canonical JSON: {exc}") from None


def _plain(value: Any) -> bool:
    """True if `json.dumps` encodes `value` exactly as RFC 8785 does.

    Python sorts keys by code point and RFC 8785 by UTF-16 unit: the orders agree while every key
    stays in the Basic Multilingual Plane. Floats and integers past 2**53 are formatted differently.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_INT_MAX <= value <= _INT_MAX
    if kind is dict:
        return all(
            type(k) is str and (k.isascii() or max(k) <= _BMP_MAX) and _plain(v) for k, v in value.items()
        )
    if kind is list:
        return all(_plain(v) for v in value)
    return False


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
