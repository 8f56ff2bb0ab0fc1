"""The probe `memory`: two snapshots of one store, entry by entry, with their counts and drift."""

from __future__ import annotations

import time
from pathlib import Path

from clgate.artifacts import Manifest, SentenceEmbedder, compute_manifest, load_memory_store
from clgate.measurement import Measurement
from clgate.probes._registry import probe
from clgate.probes.instructions import INSTRUCTION_RULES
from clgate.probes.memory._drift import drift
from clgate.probes.memory._entry import VERSION, changed_fields, entry_row
from clgate.probes.memory._metrics import INSTRUCTION_LIKE, diff_numbers
from clgate.probes.memory._report import diff_plots


def _digest(path: Path, manifest: Manifest | None) -> str:
    return (manifest or compute_manifest(path)).root


@probe(
    "memory",
    VERSION,
    "added/removed/edited entries, provenance gaps, semantic drift and instruction-like content",
    ("old", "new"),
)
def memory_diff(
    old: Path,
    new: Path,
    *,
    old_manifest: Manifest | None = None,
    new_manifest: Manifest | None = None,
    embedder: SentenceEmbedder | None = None,
    evidence: Path | None = None,
) -> Measurement:
    """Compare two snapshots of one memory store (JSONL or SQLite)."""
    started = time.perf_counter()
    before, after = load_memory_store(Path(old)), load_memory_store(Path(new))
    old_by_id = before.by_id()
    new_ids = {e.id for e in after.entries}
    rows, fresh = [], []
    for i, entry in enumerate(after.entries):
        prior = old_by_id.get(entry.id)
        if prior is None:
            rows.append(entry_row(entry, "added"))
            fresh.append(i)
        else:
            changed = changed_fields(prior, entry)
            rows.append(entry_row(entry, "edited" if changed else "unchanged", changed, prior))
            if "text" in changed:
                fresh.append(i)
    rows += [entry_row(e, "removed") for e in before.entries if e.id not in new_ids]
    shift, nn = drift(before.entries, after.entries, fresh, embedder)
    for i, distance in nn.items():
        rows[i]["nn_distance"] = distance
    numbers = diff_numbers(rows, len(before.entries)) | shift
    files = diff_plots(evidence, rows, f"memory diff: {new}") if evidence else []
    return Measurement(
        parent=_digest(Path(old), old_manifest),
        candidate=_digest(Path(new), new_manifest),
        numbers=numbers,
        details=rows,
        evidence=files,
        meta={
            "old_path": str(old),
            "new_path": str(new),
            "instruction_like_at": INSTRUCTION_LIKE,
            "rules": {rule.name: rule.weight for rule in INSTRUCTION_RULES},
            "seconds": time.perf_counter() - started,
        },
    )
