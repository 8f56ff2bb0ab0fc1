"""Provenance gaps: entries that cannot say where they came from or when.

An entry with no source cannot be traced to a user or an app, so nobody can be asked about it or
held to it; one from outside the trusted sources (when they are given) is an open door.
"""

from __future__ import annotations

import numpy as np

from clgate.probes.poison._registry import detector
from clgate.probes.poison.memory_context import MemoryContext
from clgate.probes.poison.result import DetectorResult

VERSION = "1"
UNKNOWN = {"", "unknown", "none", "null", "anonymous", "n/a"}


@detector("provenance", "memory", VERSION, "entries with no source, no timestamp, or an untrusted source")
def provenance(ctx: MemoryContext) -> DetectorResult:
    scores, reasons = [], []
    for e in ctx.store.entries:
        gaps, score = [], 0.0
        source = (e.source or "").strip()
        if source.lower() in UNKNOWN:
            gaps.append("no source")
            score += 1.0
        elif ctx.trusted_sources and not any(source.startswith(t) for t in ctx.trusted_sources):
            gaps.append(f"untrusted source {source!r}")
            score += 0.75
        if e.created_at is None:
            gaps.append("no timestamp")
            score += 0.5
        scores.append(score)
        reasons.append(", ".join(gaps) if gaps else f"source {source!r}, created {e.created_at:%Y-%m-%d}")
    return DetectorResult(
        ctx.item_ids,
        np.array(scores),
        reasons,
        0.5,
        "no source (1), untrusted source (0.75), no timestamp (0.5); flagged above 0.5",
    )
