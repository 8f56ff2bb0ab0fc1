"""Full verification of a ledger from its entry bytes alone.

Nothing stored beside the bytes is believed: each entry is parsed strictly, its index and
previous-entry hash are checked against its position, its signer against the key ring replayed
from the trust anchors and earlier key entries, its signature against the signer's key, and the
Merkle root is recomputed. Signature checks, the bulk of the cost, run on every core.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from clgate.errors import IntegrityError
from clgate.ledger.checkpoint import Checkpoint
from clgate.ledger.dsse import ENTRY_PAYLOAD_TYPE, Envelope
from clgate.ledger.entries import GENESIS_PREV, EntryPayload
from clgate.ledger.merkle import Frontier, leaf_hash, verify_consistency
from clgate.ledger.trust import KeyRing, Trust

PARALLEL_MIN = 2000


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
    pending = SignatureChecker(workers)
    prev_hash, expected, log_id = bytes.fromhex(GENESIS_PREV), 0, ""
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
        problem = _check_entry(stored_idx, leaf, prev_hash, ring, pending)
        if problem:
            problems.append(Problem(stored_idx, problem))
        prev_hash = digest
    for position in pending.finish():
        problems.append(Problem(position, "signature does not verify"))
    last = prev_hash if frontier.size else b""
    return Report(
        frontier.size, frontier.root(), log_id, ring, sorted(problems), roots, frontier, nodes, last
    )


def _check_entry(
    index: int,
    leaf: bytes,
    prev_hash: bytes,
    ring: KeyRing,
    pending: SignatureChecker,
) -> str | None:
    try:
        env = Envelope.from_bytes(leaf)
    except IntegrityError as exc:
        return str(exc)
    if env.payload_type != ENTRY_PAYLOAD_TYPE:
        return f"unexpected payloadType {env.payload_type!r}"
    try:
        payload = EntryPayload.model_validate(json.loads(env.payload))
    except (ValueError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "not JSON"
        return f"payload is malformed: {detail}"
    if payload.index != index:
        return f"payload says index {payload.index} (entries reordered, replayed or deleted)"
    if payload.prev != prev_hash.hex():
        return "previous-entry hash does not match (an earlier entry was changed, removed or reordered)"
    if env.keyid != payload.signer:
        return "envelope keyid does not match the payload's signer"
    refusal = ring.check(index, payload.signer, payload.type, payload.body)
    if refusal:
        return refusal
    if payload.type.startswith("key."):
        # Key entries change who may sign later entries: check them before trusting their effect.
        public = ring.public_key(payload.signer) or _genesis_key(payload)
        if not env.verify(Ed25519PublicKey.from_public_bytes(public)):
            return "signature does not verify"
        ring.apply(index, payload.type, payload.body)
        return None
    public = ring.public_key(payload.signer)
    assert public is not None
    pending.add((index, public, env.pae(), env.sig))
    ring.size = index + 1
    return None


def _genesis_key(payload: EntryPayload) -> bytes:
    return base64.b64decode(payload.body["public_key"])


def _check_chunk(chunk: Sequence[tuple[int, bytes, bytes, bytes]]) -> list[int]:
    keys: dict[bytes, Ed25519PublicKey] = {}
    bad = []
    for position, public, message, sig in chunk:
        key = keys.get(public)
        if key is None:
            key = keys[public] = Ed25519PublicKey.from_public_bytes(public)
        try:
            key.verify(sig, message)
        except InvalidSignature:
            bad.append(position)
    return bad


class SignatureChecker:
    """Checks signatures in worker processes while the caller keeps parsing the next entries.

    Chunks go to a process pool (every core) as soon as they fill, so parsing in this process
    overlaps verification in the workers; small ledgers are checked inline.
    """

    def __init__(self, workers: int | None = None, chunk: int = PARALLEL_MIN) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.chunk = chunk
        self.buffer: list[tuple[int, bytes, bytes, bytes]] = []
        self.futures: list[Future[list[int]]] = []
        self.pool: ProcessPoolExecutor | None = None

    def add(self, task: tuple[int, bytes, bytes, bytes]) -> None:
        self.buffer.append(task)
        if len(self.buffer) >= self.chunk and self.workers > 1:
            if self.pool is None:
                methods = multiprocessing.get_all_start_methods()
                context = multiprocessing.get_context("fork" if "fork" in methods else None)
                self.pool = ProcessPoolExecutor(self.workers, mp_context=context)
            self.futures.append(self.pool.submit(_check_chunk, self.buffer))
            self.buffer = []

    def finish(self) -> list[int]:
        """Positions whose signature does not verify."""
        try:
            bad = _check_chunk(self.buffer)
            for future in self.futures:
                bad += future.result()
        finally:
            if self.pool is not None:
                self.pool.shutdown()
        return sorted(bad)


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
