"""Near-copies across memory stores: the one index behind the probe `memory.spread` and the poisoning
detector `spread`.

Organic memories are personal and differ between instances; a poisoned entry that propagates (a
memetic payload copied from store to store) turns up near-verbatim in many of them. Texts are
normalised first (what a copy keeps); MinHash LSH proposes candidates and their estimated Jaccard
confirms them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from datasketch import MinHashLSH

from clgate.probes.instructions import ZERO_WIDTH
from clgate.probes.shingles import NUM_PERM, char_shingles, minhash

NEAR_DUPLICATE_JACCARD = 0.8


def normalise_text(text: str) -> str:
    """NFKC, invisible characters dropped, lower case, whitespace collapsed: what a copy keeps."""
    text = re.sub(f"[{ZERO_WIDTH}]", "", unicodedata.normalize("NFKC", text))
    return " ".join(text.lower().split())


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)


class NearCopies:
    """The texts of several stores, each distinct normalised text linked to its near-copies."""

    def __init__(self, stores: Sequence[Sequence[str]], threshold: float = NEAR_DUPLICATE_JACCARD) -> None:
        self._keys = [[normalise_text(t) for t in texts] for texts in stores]
        distinct = sorted({k for keys in self._keys for k in keys})
        self._index = {k: i for i, k in enumerate(distinct)}
        hashes = [minhash(char_shingles(k)) for k in distinct]
        lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        for i, h in enumerate(hashes):
            lsh.insert(i, h, check_duplication=False)
        # LSH candidates confirmed by estimated Jaccard; each text is its own near-copy
        self._near = [[j for j in lsh.query(h) if h.jaccard(hashes[j]) >= threshold] for h in hashes]

    def clusters(self) -> list[list[tuple[int, int]]]:
        """Every text as (store, position), grouped with its near-copies taken transitively (a chain of
        small edits stays one group); groups in the order their first text appears."""
        groups = _UnionFind(len(self._near))
        for i, near in enumerate(self._near):
            for j in near:
                groups.union(i, j)
        clusters: dict[int, list[tuple[int, int]]] = {}
        for s, keys in enumerate(self._keys):
            for i, key in enumerate(keys):
                clusters.setdefault(groups.find(self._index[key]), []).append((s, i))
        return list(clusters.values())

    def holders(self, store: int) -> list[set[int]]:
        """For each text of `store`, the other stores holding a near-copy of it."""
        held_by: list[set[int]] = [set() for _ in self._near]
        for s, keys in enumerate(self._keys):
            for key in keys:
                held_by[self._index[key]].add(s)
        return [
            set().union(*(held_by[j] for j in self._near[self._index[key]])) - {store}
            for key in self._keys[store]
        ]
