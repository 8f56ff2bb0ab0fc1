"""What a memory detector gets: the store, the queries to probe retrieval with, other instances' stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from clgate.artifacts import MemoryStore


@dataclass
class MemoryContext:
    store: MemoryStore
    queries: list[str] = field(default_factory=list)
    others: list[MemoryStore] = field(default_factory=list)
    embedder: Any = None
    trusted_sources: tuple[str, ...] = ()

    @property
    def item_ids(self) -> list[str]:
        return [e.id for e in self.store.entries]

    def _encoder(self) -> Any:
        if self.embedder is None:
            from clgate.artifacts import SentenceEmbedder

            self.embedder = SentenceEmbedder()
        return self.embedder

    @cached_property
    def entry_embeddings(self) -> np.ndarray:
        return self._encoder().encode([e.text for e in self.store.entries])

    @cached_property
    def query_embeddings(self) -> np.ndarray:
        return self._encoder().encode(self.queries)
