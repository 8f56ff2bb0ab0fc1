"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verifiers.

Leaves are raw bytes; the tree hashes them with domain separation (0x00 for leaves, 0x01 for
interior nodes) so a leaf can never pass for a node. Proofs are built from hashes of *perfect*
subtrees (aligned, power-of-two sized), so the same code serves an in-memory list of leaves and a
database that stores those subtree hashes: a storage backend implements `NodeSource` and gets
O(log n) proofs without reading the leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

EMPTY_ROOT = hashlib.sha256(b"").digest()

# Fetches hashes of perfect subtrees, keyed by (level, index): leaves [index·2^level, (index+1)·2^level).
NodeSource = Callable[[Sequence[tuple[int, int]]], dict[tuple[int, int], bytes]]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """Largest power of two strictly smaller than `size` (RFC 6962 §2.1's k)."""
    return 1 << ((size - 1).bit_length() - 1)


def _perfect_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """The perfect subtrees that make up MTH(D[lo:hi]), left to right.

    Valid for the ranges RFC 6962 recursion produces: `lo` is a multiple of the largest one.
    """
    nodes = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Combine the perfect subtree hashes of one range, right to left, into its MTH."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]) as leaf ranges, nearest the leaf first."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return ranges[::-1]


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], true) as leaf ranges, in proof order."""
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while True:
        if m == hi - lo:
            if not complete:
                ranges.append((lo, hi))
            break
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    return ranges[::-1]


def _hash_ranges(ranges: list[tuple[int, int]], source: NodeSource) -> list[bytes]:
    per_range = [_perfect_subtrees(lo, hi) for lo, hi in ranges]
    found = source(sorted({n for nodes in per_range for n in nodes}))
    return [_fold([found[n] for n in nodes]) for nodes in per_range]


def _list_source(leaves: Sequence[bytes]) -> NodeSource:
    hashes = [leaf_hash(x) for x in leaves]

    def source(keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {(lvl, i): _fold(_level_hashes(hashes[i << lvl : (i + 1) << lvl])) for lvl, i in keys}

    return source


def _level_hashes(hashes: Sequence[bytes]) -> list[bytes]:
    """Reduce a power-of-two run of leaf hashes to its single root (as a one-element list)."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[j], level[j + 1]) for j in range(0, len(level), 2)]
    return level


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of raw leaves; the empty tree's root is SHA-256 of nothing."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf_hash(leaf))
    return frontier.root()


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    _check_index(index, len(leaves))
    return inclusion_proof_from(_list_source(leaves), index, len(leaves))


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    if not 0 <= old_size <= len(leaves):
        raise ValueError(f"old size {old_size} is outside 0..{len(leaves)}")
    return consistency_proof_from(_list_source(leaves), old_size, len(leaves))


def inclusion_proof_from(source: NodeSource, index: int, size: int) -> list[bytes]:
    """Inclusion proof from stored perfect-subtree hashes: O(log n) nodes, one fetch."""
    _check_index(index, size)
    return _hash_ranges(_inclusion_ranges(index, size), source)


def consistency_proof_from(source: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    if not 0 <= old_size <= new_size:
        raise ValueError(f"cannot prove consistency from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    return _hash_ranges(_consistency_ranges(old_size, new_size), source)


def root_from(source: NodeSource, size: int) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return _hash_ranges([(0, size)], source)[0]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 for the raw leaf `leaf`."""
    return verify_inclusion_hash(leaf_hash(leaf), index, size, proof, root)


def verify_inclusion_hash(
    leaf_digest: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_digest
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: the tree of `new_size` extends the tree of `old_size` unchanged."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


@dataclass
class Frontier:
    """The compact range [0, size): one perfect subtree hash per set bit of `size`, largest first.

    Appending a leaf touches O(log n) hashes and reports the subtree hashes it completed, so a
    store can persist them for proofs without ever recomputing the tree.
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def append(self, leaf_digest: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the (level, index, hash) of every perfect subtree it completed."""
        index = self.size
        created = [(0, index, leaf_digest)]
        self.hashes.append(leaf_digest)
        level = 0
        while (index >> level) & 1:
            right, left = self.hashes.pop(), self.hashes.pop()
            level += 1
            merged = node_hash(left, right)
            self.hashes.append(merged)
            created.append((level, index >> level, merged))
        self.size += 1
        return created

    def root(self) -> bytes:
        return _fold(self.hashes) if self.hashes else EMPTY_ROOT

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        count = size.bit_count()
        if len(data) != 32 * count:
            raise ValueError(f"frontier of size {size} needs {count} hashes, got {len(data) / 32:g}")
        return cls(size, [data[i : i + 32] for i in range(0, len(data), 32)])
