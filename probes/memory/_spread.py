"""The probe `memory.spread`: content held by several instances' stores, and where it appeared first."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from clgate.artifacts import MemoryEntry, MemoryStore, compute_manifest, load_memory_store
from clgate.errors import InputError
from clgate.measurement import Measurement
from clgate.probes._registry import probe
from clgate.probes.instructions import instruction_score
from clgate.probes.memory._entry import VERSION, has_source, preview
from clgate.probes.memory._report import spread_plot
from clgate.probes.near_copies import NEAR_DUPLICATE_JACCARD, NearCopies, normalise_text

_NEVER = datetime.max.replace(tzinfo=UTC)


def _instance_names(paths: Sequence[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    return stems if len(set(stems)) == len(stems) else [str(p) for p in paths]


def _when(entry: MemoryEntry) -> datetime:
    if entry.created_at is None:
        return _NEVER
    return entry.created_at


@probe(
    "memory.spread",
    VERSION,
    "content found in many instances' memory stores (exact or near-duplicate), and where it appeared first",
    ("stores",),
)
def memetic_spread(
    stores: Sequence[Path],
    *,
    threshold: float = NEAR_DUPLICATE_JACCARD,
    min_instances: int = 2,
    evidence: Path | None = None,
) -> Measurement:
    """Group entries of several instances' stores by (near-)identical content; report what spread where."""
    started = time.perf_counter()
    paths = [Path(p) for p in stores]
    if len(paths) < 2:
        raise InputError("memetic spread needs the memory stores of at least two instances")
    if len({p.resolve() for p in paths}) < len(paths):
        raise InputError("memetic spread: the same store is given twice")
    loaded: list[MemoryStore] = [load_memory_store(p) for p in paths]
    names = _instance_names(paths)
    rows = []
    for cluster in NearCopies([[e.text for e in store.entries] for store in loaded], threshold).clusters():
        members = [(s, loaded[s].entries[i]) for s, i in cluster]
        instances = sorted({s for s, _ in members})
        if len(instances) < min_instances:
            continue
        first_store, first = min(members, key=lambda m: (_when(m[1]), m[0]))
        variants = {normalise_text(e.text) for _, e in members}
        score, rules = instruction_score(first.text)
        rows.append(
            {
                "content": preview(first.text),
                "instances": len(instances),
                "fraction": len(instances) / len(paths),
                "instance_names": [names[s] for s in instances],
                "entries": len(members),
                "exact": len(variants) == 1,
                "variants": len(variants),
                "first_instance": names[first_store],
                "first_entry_id": first.id,
                "first_seen": first.created_at.isoformat() if first.created_at else None,
                "without_source": sum(1 for _, e in members if not has_source(e)),
                "instruction_score": score,
                "instruction_rules": list(rules),
            }
        )
    rows.sort(key=lambda r: (-r["instances"], -r["entries"], r["content"]))
    numbers = {
        "memory.spread.instances": float(len(paths)),
        "memory.spread.entries": float(sum(len(store.entries) for store in loaded)),
        "memory.spread.clusters": float(len(rows)),
        "memory.spread.max_instances": float(max((r["instances"] for r in rows), default=0)),
        "memory.spread.max_fraction": max((r["fraction"] for r in rows), default=0.0),
        "memory.spread.max_instruction_score": max((r["instruction_score"] for r in rows), default=0.0),
    }
    digests = {n: compute_manifest(p).root for n, p in zip(names, paths, strict=True)}
    files = spread_plot(evidence, rows, len(paths)) if evidence else []
    return Measurement(
        numbers=numbers,
        details=rows,
        evidence=files,
        meta={
            "stores": {n: str(p) for n, p in zip(names, paths, strict=True)},
            "store_digests": digests,
            "jaccard_threshold": threshold,
            "min_instances": min_instances,
            "seconds": time.perf_counter() - started,
        },
    )
