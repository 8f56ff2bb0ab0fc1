"""Full verification of a ledger from its entry bytes alone.

Nothing stored beside the bytes is believed: each entry is parsed strictly, its index and
previous-entry hash are checked against its position, its signer against the key ring replayed
from the trust anchors and earlier key entries, its signature against the signer's key, what it
does against the governance rules (`governance.py`: no forbidden promotion, no second audit), and
the Merkle root is recomputed. Parsing and signature checks, nearly all of the cost, run on every core
(`chunks.py`); this process hashes, chains and replays the key ring, in index order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from clgate.ledger.checkpoint import CheckpointNote
from clgate.ledger.chunks import ChunkParser, Parsed, Pending
from clgate.ledger.dsse import Envelope
from clgate.ledger.entries import GENESIS_PREV
from clgate.ledger.governance import Governance
from clgate.ledger.merkle import Frontier, leaf_hash, verify_consistency
from clgate.ledger.trust import KeyRing, Trust


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located at an entry index (None: the log as a whole)."""

    index: int | None
    message: str

    def __str__(self) -> str:
        return f"entry {self.index}: {self.message}" if self.index is not None else f"log: {self.message}"

    def sort_key(self) -> tuple[bool, int]:
        """Entry problems in index order first, then those of the log as a whole (as found)."""
        return (self.index is None, self.index or 0)


@dataclass
class Report:
    size: int
    root: bytes
    log_id: str
    state: Governance
    problems: list[Problem] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=dict)
    frontier: Frontier = field(default_factory=Frontier)
    nodes: dict[tuple[int, int], bytes] = field(default_factory=dict)
    last_hash: bytes = b""
    checkpoints: list[CheckpointNote] = field(default_factory=list)  # the stored ones this report checked

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def ring(self) -> KeyRing:
        return self.state.ring

    def claim_problems(self, root_at: Callable[[int], bytes]) -> list[Problem]:
        """Witnessed checkpoints cited by promotions must name the log's real root at their size."""
        return [
            Problem(claim.index, f"the promotion's checkpoint (size {claim.size}) is not this log's")
            for claim in self.state.claims
            if claim.size > self.size or root_at(claim.size) != claim.root
        ]


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
    state = Governance.start(trust)
    frontier = Frontier()
    want_roots = set(root_sizes)
    roots: dict[int, bytes] = {0: frontier.root()} if 0 in want_roots else {}
    problems: list[Problem] = []
    prev_hash, expected, log_id = bytes.fromhex(GENESIS_PREV), 0, ""
    with ChunkParser(state.ring, workers) as parser:
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
                log_id = state.log_id = digest.hex()
            for pending, parsed in parser.add((stored_idx, leaf, prev_hash)):
                problems += _check_chunk(pending, parsed, state)
            prev_hash = digest
        for pending, parsed in parser.finish():
            problems += _check_chunk(pending, parsed, state)
    last = prev_hash if frontier.size else b""
    return Report(
        frontier.size,
        frontier.root(),
        log_id,
        state,
        sorted(problems, key=Problem.sort_key),
        roots,
        frontier,
        nodes,
        last,
    )


def _check_chunk(pending: list[Pending], parsed: list[Parsed | str], state: Governance) -> list[Problem]:
    problems = []
    for (index, leaf, prev_hash), entry in zip(pending, parsed, strict=True):
        problem = _check_entry(index, leaf, prev_hash, entry, state)
        if problem:
            problems.append(Problem(index, problem))
    return problems


def _check_entry(
    index: int, leaf: bytes, prev_hash: bytes, entry: Parsed | str, state: Governance
) -> str | None:
    """What is wrong with one parsed entry at its position, in index order; accepted entries update `state`."""
    if isinstance(entry, str):
        return entry
    if entry.index != index:
        return f"payload says index {entry.index} (entries reordered, replayed or deleted)"
    if entry.prev != prev_hash.hex():
        return "previous-entry hash does not match (an earlier entry was changed, removed or reordered)"
    if entry.keyid != entry.signer:
        return "envelope keyid does not match the payload's signer"
    if entry.body is None:  # changes no state: only who signed it matters
        refusal = state.ring.check(index, entry.signer, entry.type, {})
        if refusal:
            return refusal
    signature_ok = entry.signature_ok
    if signature_ok is None:  # signed by a key added in a chunk still being parsed when this one was sent
        public = state.ring.public_key(entry.signer)
        signature_ok = public is not None and Envelope.from_bytes(leaf).verify(public)
    if not signature_ok:
        return "signature does not verify"
    if entry.body is None:
        state.ring.size = index + 1
        return None
    return state.step(index, entry.signer, entry.type, entry.subject, entry.body, entry.timestamp)


def stray_signatures(checkpoint: CheckpointNote, report: Report) -> list[Problem]:
    """A stored checkpoint carries only signatures that verify: the log's and its witnesses'.

    (C2SP verifiers ignore unknown signatures on notes they receive; what this ledger stored
    itself must all check out, or it was altered.)"""
    gate = report.ring.keys_with("gate", checkpoint.size - 1)
    # any key the ledger knows: a witness revoked (or given other roles) since it cosigned left a true
    # signature behind; whether a cosignature counts for a promotion is the promotion rules' question
    witnesses = {kid: state.public_key for kid, state in report.ring.keys.items()}
    names = {kid: report.ring.keys[kid].name for kid in witnesses}
    bad = [s.name for s in checkpoint.signatures if not checkpoint.verifies(s, gate, witnesses, names)]
    return [
        Problem(
            None, f"checkpoint of size {checkpoint.size} carries a signature that does not verify ({name})"
        )
        for name in bad
    ]


def check_since(checkpoint: CheckpointNote, report: Report, proof: Sequence[bytes] | None) -> list[Problem]:
    """Problems with a checkpoint against the verified log: bad signature, or the log did not only grow.

    `proof` is a consistency proof from the checkpoint's size to the log's (from the store or a
    bundle); the checkpoint's root is also compared with the root recomputed at its size.
    """
    problems = []
    gate_keys = {
        kid: s.public_key
        for kid, s in report.ring.keys.items()
        if report.ring.has_role(kid, "gate", max(checkpoint.size - 1, 0))
    }
    refusal = checkpoint.check(gate_keys, report.log_id or None)
    if refusal:  # an unauthenticated checkpoint proves nothing about the log either way
        return [Problem(None, refusal)]
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


def trust_problems(trust: Trust | None, report: Report) -> list[Problem]:
    """A trust file must belong to this log, keep the key quorum it recorded, and be signed by an admin key
    this ledger recorded."""
    if trust is None:
        return []
    if report.size == 0:  # a file bound to a log was written after its genesis: the log had entries
        return (
            [Problem(None, f"the trust file belongs to log {trust.log_id[:16]}…, but this ledger is empty: "
                     "its entries were removed")]
            if trust.log_id else []
        )  # fmt: skip
    problems = []
    if trust.log_id and report.log_id and trust.log_id != report.log_id:
        problems.append(
            Problem(
                None,
                f"the trust file belongs to log {trust.log_id[:16]}…, this ledger is {report.log_id[:16]}…",
            )
        )
    signature = trust.signature
    ring = report.ring
    if ring.recorded_quorum is not None:  # a log that records its quorum also recorded every anchor
        if trust.key_quorum < ring.recorded_quorum:
            problems.append(
                Problem(
                    None,
                    f"the trust file says key_quorum = {trust.key_quorum}, but the log recorded "
                    f"{ring.recorded_quorum} at its genesis: the file was re-signed with a lower quorum",
                )
            )
        problems += [
            Problem(None, f"trust-file key {ring.label(k.key_id)} was never added by this ledger: one admin "
                    "re-signed the file with a key of its own")
            for k in trust.keys
            if trust.revoked_at(k.key_id) is None and not ring.recorded(k.key_id)
        ]  # fmt: skip
    if signature is not None and not (
        ring.recorded(signature.key_id) and ring.has_role(signature.key_id, "admin", max(report.size - 1, 0))
    ):
        problems.append(
            Problem(
                None, f"the trust file is signed by key {signature.key_id[:16]}, not an admin of this ledger"
            )
        )
    return problems
