"""The memory diff's counts: entries by status, provenance gaps, persistence, instruction-like content."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

INSTRUCTION_LIKE = 0.5  # the score at which `memory.instruction_like` counts an entry (one strong cue)


def diff_numbers(rows: list[dict[str, Any]], n_old: int) -> dict[str, float]:
    current = [r for r in rows if r["status"] != "removed"]
    fresh = [r for r in current if r["status"] == "added" or "text" in r["changed"]]
    hashes = [r["content_hash"] for r in current]

    def count(rs: Iterable[dict[str, Any]], pred: Callable[[dict[str, Any]], bool]) -> float:
        return float(sum(1 for r in rs if pred(r)))

    return {
        "memory.entries_old": float(n_old),
        "memory.entries_new": float(len(current)),
        "memory.added": count(rows, lambda r: r["status"] == "added"),
        "memory.removed": count(rows, lambda r: r["status"] == "removed"),
        "memory.edited": count(rows, lambda r: r["status"] == "edited"),
        "memory.unchanged": count(rows, lambda r: r["status"] == "unchanged"),
        "memory.without_source": count(current, lambda r: not r["has_source"]),
        "memory.new_without_source": count(fresh, lambda r: not r["has_source"]),
        "memory.made_persistent": count(current, lambda r: r["made_persistent"]),
        "memory.made_persistent_without_source": count(
            current, lambda r: r["made_persistent"] and not r["has_source"]
        ),
        "memory.expiry_extended": count(current, lambda r: r["expiry_extended"]),
        "memory.duplicate_content": float(len(hashes) - len(set(hashes))),
        "memory.instruction_like": count(current, lambda r: r["instruction_score"] >= INSTRUCTION_LIKE),
        "memory.new_instruction_like": count(fresh, lambda r: r["instruction_score"] >= INSTRUCTION_LIKE),
        "memory.max_instruction_score": max((r["instruction_score"] for r in current), default=0.0),
        "memory.new_max_instruction_score": max((r["instruction_score"] for r in fresh), default=0.0),
    }
