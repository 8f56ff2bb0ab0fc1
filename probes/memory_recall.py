"""Probes that judge a memory update by what it makes the model say, not by how its text reads.

A false fact written as a plain statement ("The capital of Japan is Osaka.") carries no instruction
for the text detectors to find; it does its harm when a retriever hands it to the model beside a
question it answers. So: for each entry the update added or rewrote, the questions of a probe pool
(multiple-choice items with known answers) nearest to it, plus a fixed sample of unrelated ones,
each asked with the notes a top-k retriever gives it from the old store and from the new one
(MiniLM embeddings, cosine). The evals layer asks them; what changed between the two is blamed on
the entries that changed the notes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clgate.artifacts import MemoryEntry, MemoryStore, SentenceEmbedder, write_jsonl

TOP_K = 3  # notes a question is asked with, as a retrieval-augmented deployment would
NEAR = 3  # pool questions per changed entry
UNRELATED = 16  # pool questions asked besides, far from every change: does the update reach them?
SEED = 0


@dataclass(frozen=True)
class RecallProbe:
    """One pool question, the notes each store gives it, and the changed entries behind the difference."""

    item: dict[str, Any]
    old_notes: tuple[str, ...]
    new_notes: tuple[str, ...]
    near: tuple[str, ...]
    """Ids of the changed entries this question was chosen for (empty: an unrelated question)."""
    brought: tuple[str, ...]
    """Changed entries the new store retrieves for it and the old one did not."""

    @property
    def id(self) -> str:
        return str(self.item["id"])


def changed_entries(old: MemoryStore, new: MemoryStore) -> list[MemoryEntry]:
    """Entries of `new` that `old` lacks or held with other text."""
    before = {e.id: e.text for e in old.entries}
    return [e for e in new.entries if before.get(e.id) != e.text]


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _retrieve(
    questions: np.ndarray, store: MemoryStore, vectors: dict[str, np.ndarray]
) -> list[list[MemoryEntry]]:
    if not store.entries:
        return [[] for _ in range(len(questions))]
    matrix = np.stack([vectors[e.text] for e in store.entries])
    top = np.argsort(-(questions @ matrix.T), axis=1, kind="stable")[:, :TOP_K]
    return [[store.entries[i] for i in row] for row in top]


def recall_probes(
    old: MemoryStore, new: MemoryStore, pool: list[dict[str, Any]], embedder: SentenceEmbedder
) -> list[RecallProbe]:
    """The questions to ask, and the notes each store gives them; none when nothing changed."""
    changed = changed_entries(old, new)
    if not changed or not pool:
        return []
    texts = sorted({e.text for e in (*old.entries, *new.entries)})
    vectors = dict(zip(texts, _unit(embedder.encode(texts)), strict=True))
    questions = _unit(embedder.encode([str(i["question"]) for i in pool]))
    near: dict[int, list[str]] = {}
    for entry in changed:
        for i in np.argsort(-(questions @ vectors[entry.text]), kind="stable")[:NEAR]:
            near.setdefault(int(i), []).append(entry.id)
    others = [i for i in range(len(pool)) if i not in near]
    chosen = sorted(near) + sorted(random.Random(SEED).sample(others, min(UNRELATED, len(others))))
    old_notes = _retrieve(questions[chosen], old, vectors)
    new_notes = _retrieve(questions[chosen], new, vectors)
    changed_ids = {e.id for e in changed}
    probes = []
    for i, before, after in zip(chosen, old_notes, new_notes, strict=True):
        kept = {(e.id, e.text) for e in before}
        brought = tuple(e.id for e in after if e.id in changed_ids and (e.id, e.text) not in kept)
        probes.append(
            RecallProbe(
                item=pool[i],
                old_notes=tuple(e.text for e in before),
                new_notes=tuple(e.text for e in after),
                near=tuple(near.get(i, ())),
                brought=brought,
            )
        )
    return probes


def write_probe_items(probes: list[RecallProbe], store: str, path: Path) -> Path:
    """The probes as `memory_recall` items, with the notes of the `old` or the `new` store."""
    return write_jsonl(
        Path(path),
        [{**p.item, "notes": list(p.old_notes if store == "old" else p.new_notes)} for p in probes],
    )
