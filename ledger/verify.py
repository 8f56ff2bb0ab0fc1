"""Full verification of a ledger from its entry bytes alone.

Nothing stored beside the bytes is believed: each entry is parsed strictly, its index and
previous-entry hash are checked against its position, its signer against the key ring replayed
from the trust anchors and earlier key entries, its signature against the signer's key, and the
Merkle root is recomputed. Parsing and signature checks, nearly all of the cost, run on every core
(`chunks.py`); this process hashes, chains and replays the key ring, in index order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from clgate.ledger.checkpoint import Checkpoint
from clgate.ledger.chunks import ChunkParser, Parsed, Pending
from clgate.ledger.dsse import Envelope
from clgate.ledger.entries import GENESIS_PREV
from clgate.ledger.merkle import Frontier, leaf_hash, verify_consistency
from clgate.ledger.trust import KeyRing, Trust


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong, located at an entry index (None: the log as a whole)."""

    index: int | None
    message: str

    def __str__(self) -> str:
        return f"entry {self.index}: {self.message}" if self.index is not None else f"log: {self.message}"


@dataclass
class Report:
    size: int
    root: bytes
    log_id: str
    ring: KeyRing
    problems: list[Problem] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=dict)
    frontier: Frontier = field(default_factory=Frontier)
    nodes: dict[tuple[int, int], bytes] = field(default_factory=dict)
    last_hash: bytes = b""

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_leaves(
    leaves: Iterable[tuple[int, bytes]],
    trust: Trust | None = None,
    root_sizes: Iterable[int] = (),
    workers: int | None = None,
    keep_nodes: bool = False,
) -> Report:
    """Verify (stored index, bytes) pairs in stored order.

    `root_sizes` asks for the roots at those sizes; `keep_nodes` for every perfect subtree hash,
    so a store's Merkle nodes can be checked too.
    """
    nodes: dict[tuple[int, int], bytes] = {}
    ring = KeyRing(trust)
    frontier = Frontier()
    want_roots = set(root_sizes)
    roots: dict[int, bytes] = {0: frontier.root()} if 0 in want_roots else {}
    problems: list[Problem] = []
    prev_hash, expected, log_id = bytes.fromhex(GENESIS_PREV), 0, ""
    with ChunkParser(ring, workers) as parser:
        for stored_idx, leaf in leaves:
            if stored_idx != expected:
                problems.append(Problem(expected, f"entries {expected}..{stored_idx - 1} are missing"))
            expected = stored_idx + 1
            digest = leaf_hash(leaf)
            created = frontier.append(digest)
            if keep_nodes:
                nodes.update(((lv, i), h) for lv, i, h in created)
            if frontier.size in want_roots:
                roots[frontier.size] = frontier.root()
            if frontier.size == 1:
                log_id = digest.hex()
            for pending, parsed in parser.add((stored_idx, leaf, prev_hash)):
                problems += _check_chunk(pending, parsed, ring)
            prev_hash = digest
        for pending, parsed in parser.finish():
            problems += _check_chunk(pending, parsed, ring)
    last = prev_hash if frontier.size else b""
    return Report(
        frontier.size, frontier.root(), log_id, ring, sorted(problems), roots, frontier, nodes, last
    )


def _check_chunk(pending: list[Pending], parsed: list[Parsed | str], ring: KeyRing) -> list[Problem]:
    problems = []
    for (index, leaf, prev_hash), entry in zip(pending, parsed, strict=True):
        problem = _check_entry(index, leaf, prev_hash, entry, ring)
        if problem:
            problems.append(Problem(index, problem))
    return problems


def _check_entry(index: int, leaf: bytes, prev_hash: bytes, entry: Parsed | str, ring: KeyRing) -> str | None:
    """What is wrong with one parsed entry at its position, in index order; accepted key entries update `ring`."""
    if isinstance(entry, str):
        return entry
    if entry.index != index:
        return f"payload says index {entry.index} (entries reordered, replayed or deleted)"
    if entry.prev != prev_hash.hex():
        return "previous-entry hash does not match (an earlier entry was changed, removed or reordered)"
    if entry.keyid != entry.signer:
        return "envelope keyid does not match the payload's signer"
    refusal = ring.check(index, entry.signer, entry.type, entry.body or {})
    if refusal:
        return refusal
    signature_ok = entry.signature_ok
    if signature_ok is None:  # signed by a key added in a chunk still being parsed when this one was sent
        public = ring.public_key(entry.signer)
        signature_ok = public is not None and Envelope.from_bytes(leaf).verify(public)
    if not signature_ok:
        return "signature does not verify"
    if entry.body is not None:
        ring.apply(index, entry.type, entry.body)
    else:
        ring.size = index + 1
    return None


def check_since(checkpoint: Checkpoint, report: Report, proof: Sequence[bytes] | None) -> list[Problem]:
    """Problems with a checkpoint against the verified log: bad signature, or the log did not only grow.

    `proof` is a consistency proof from the checkpoint's size to the log's (from the store or a
    bundle); the checkpoint's root is also compared with the root recomputed at its size.
    """
    problems = []
    refusal = checkpoint.check(report.ring)
    if refusal:  # an unauthenticated checkpoint proves nothing about the log either way
        return [Problem(None, refusal)]
    if report.log_id and checkpoint.body.log_id != report.log_id:
        problems.append(Problem(None, "checkpoint belongs to a different log (log_id differs)"))
    if checkpoint.size > report.size:
        problems.append(
            Problem(None, f"log has {report.size} entries but checkpoint saw {checkpoint.size}: truncated")
        )
        return problems
    if proof is not None and not verify_consistency(
        checkpoint.size, report.size, checkpoint.root, report.root, proof
    ):
        problems.append(Problem(None, f"consistency proof from checkpoint size {checkpoint.size} fails"))
    recomputed = report.roots.get(checkpoint.size)
    if recomputed is not None and recomputed != checkpoint.root:
        problems.append(
            Problem(None, f"log was rewritten: root at size {checkpoint.size} differs from the checkpoint")
        )
    return problems
