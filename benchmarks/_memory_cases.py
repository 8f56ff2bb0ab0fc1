"""What the one-note memory benchmarks share: a store of the bundled clean notes, one note added per case,
and a probe set asked of one model with each store's notes, as `memory.behaviour` asks it."""

from __future__ import annotations

from pathlib import Path

from clgate.artifacts import ArtifactKind, MemoryEntry, MemoryStore, compute_manifest, embedded_model_dir
from clgate.audit.check_inputs import GateInputs
from clgate.demo import bundled_memory_entries
from clgate.evals import evaluate_model
from clgate.measurement import Measurement
from clgate.probes.memory_recall import RecallProbe, write_probe_items

OLD = 40
ADDED = "m99"
"""The id of the note each case adds."""


def bundled_store() -> tuple[MemoryStore, list[MemoryEntry]]:
    """The first `OLD` bundled clean notes as the store, and the clean notes it does not hold."""
    clean = bundled_memory_entries()
    return MemoryStore(path="old.jsonl", entries=tuple(clean[:OLD])), clean[OLD:]


def with_note(old: MemoryStore, text: str) -> MemoryStore:
    return MemoryStore(
        path="new.jsonl", entries=(*old.entries, MemoryEntry(id=ADDED, text=text, source="user:chat"))
    )


def ask_both(model: object, suite: str, probes: list[RecallProbe], folder: Path) -> list[Measurement]:
    """`probes` asked with the old store's notes, then with the new store's, through `suite`."""
    return [
        evaluate_model(
            model, suite, items={suite: write_probe_items(probes, store, folder / f"{store}.jsonl")}
        )
        for store in ("old", "new")
    ]


def behaviour_inputs(old: Path, new: Path, cache: Path) -> GateInputs:
    """What the gate hands `memory.behaviour` for an update from store `old` to `new`, on the embedded
    SmolLM2 and the CPU."""
    return GateInputs(
        parent=embedded_model_dir(),
        memory_old=old,
        memory_new=new,
        cache_dir=cache,
        manifests={"memory_new": compute_manifest(new, ArtifactKind.MEMORY)},
        device="cpu",
    )
