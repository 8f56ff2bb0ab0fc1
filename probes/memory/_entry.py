"""One memory entry as the memory probes report it: content hash, provenance, preview, what changed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from clgate.artifacts import MemoryEntry
from clgate.probes.instructions import instruction_score

VERSION = "2"  # 2: scope and expiry (entries made persistent, expiries extended)
TEXT_PREVIEW = 300


def content_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def has_source(entry: MemoryEntry) -> bool:
    return bool((entry.source or "").strip())


def preview(text: str) -> str:
    return text if len(text) <= TEXT_PREVIEW else text[: TEXT_PREVIEW - 1] + "…"


def entry_row(
    entry: MemoryEntry, status: str, changed: Sequence[str] = (), prior: MemoryEntry | None = None
) -> dict[str, Any]:
    score, rules = instruction_score(entry.text)
    lapsed_later = prior is not None and prior.expires_at is not None
    return {
        "id": entry.id,
        "status": status,
        "changed": list(changed),
        "text": preview(entry.text),
        "content_hash": content_hash(entry.text),
        "source": entry.source,
        "has_source": has_source(entry),
        "created_at": entry.created_at.isoformat() if entry.created_at else None,
        "scope": entry.scope,
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
        # a conversation's note made long-term memory by this update
        "made_persistent": prior is not None and prior.scope == "session" and entry.scope == "persistent",
        # an expiry this update removed or moved later: a note that was to lapse lives on
        "expiry_extended": lapsed_later and (entry.expires_at is None or entry.expires_at > prior.expires_at),
        "instruction_score": score,
        "instruction_rules": list(rules),
        "nn_distance": None,
    }


def changed_fields(a: MemoryEntry, b: MemoryEntry) -> list[str]:
    fields = ("text", "source", "metadata", "created_at", "scope", "expires_at")
    return [f for f in fields if getattr(a, f) != getattr(b, f)]
