"""Export for outside verifiers: a JSON bundle of the whole log (attestations: `attestations.py`).

The bundle carries every entry's DSSE envelope with its inclusion proof, the tree head, the latest
checkpoint with a consistency proof to the tree head, and the keys the ledger itself recorded.
`verify_bundle` needs nothing else but the verifier's own trust file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clgate.atomic import write_bytes_atomic
from clgate.errors import InputError
from clgate.ledger import merkle
from clgate.ledger.canonical import canonical_json
from clgate.ledger.checkpoint import CheckpointNote, parse_checkpoint
from clgate.ledger.keys import public_key_b64, public_key_from_bytes
from clgate.ledger.seen import SeenHeads
from clgate.ledger.trust import KeyRing, Trust
from clgate.ledger.verify import Problem, Report, check_since, trust_problems, verify_leaves

if TYPE_CHECKING:
    from clgate.ledger.log import Ledger

BUNDLE_FORMAT = "clgate.ledger.bundle"


class BundleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    entry_hash: str
    envelope: dict[str, Any]
    inclusion_proof: list[str]


class Bundle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = BUNDLE_FORMAT
    schema_version: int = 1
    log_id: str
    tree: dict[str, Any]
    checkpoint: str | None = None
    consistency_proof: list[str] = Field(default_factory=list)
    keys: list[dict[str, Any]] = Field(default_factory=list)
    entries: list[BundleEntry]


class _Levels:
    """Every level of the tree in memory: all inclusion proofs of an export in O(n) total."""

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self.levels = [leaf_hashes]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append(
                [merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    def __call__(self, keys: Any) -> dict[tuple[int, int], bytes]:
        return {(lv, i): self.levels[lv][i] for lv, i in keys}


def build_bundle(ledger: Ledger) -> Bundle:
    leaves = list(ledger.store.read())
    if not leaves:
        raise InputError("the ledger is empty: nothing to export")
    hashes = [merkle.leaf_hash(leaf) for _, leaf in leaves]
    levels, size = _Levels(hashes), len(leaves)
    entries = [
        BundleEntry(
            index=idx,
            entry_hash=hashes[pos].hex(),
            envelope=json.loads(leaf),
            inclusion_proof=[h.hex() for h in merkle.inclusion_proof_from(levels, pos, size)],
        )
        for pos, (idx, leaf) in enumerate(leaves)
    ]
    checkpoints = ledger.checkpoints()
    latest = checkpoints[-1] if checkpoints else None
    consistency = []
    if latest and latest.size <= size:
        consistency = [h.hex() for h in merkle.consistency_proof_from(levels, latest.size, size)]
    keys = key_rows(ledger.key_ring())
    return Bundle(
        log_id=hashes[0].hex(),
        tree={"size": size, "root": merkle.root_from(levels, size).hex()},
        checkpoint=latest.to_text() if latest else None,
        consistency_proof=consistency,
        keys=keys,
        entries=entries,
    )


def key_rows(ring: KeyRing) -> list[dict[str, Any]]:
    """The keys the ledger itself recorded, as a bundle lists them for its readers (a verifier recomputes
    them from the entries and names any difference: an edited list gave the pipeline key the admin role)."""
    return [
        {
            "key_id": kid,
            "public_key": public_key_b64(public_key_from_bytes(state.public_key)),
            "roles": sorted(state.roles),
            "name": state.name,
            "revoked_at": state.revoked_at,
        }
        for kid, state in ring.keys.items()
        if ring.recorded(kid)
    ]


def write_bundle(ledger: Ledger, path: Path) -> Bundle:
    bundle = build_bundle(ledger)
    write_bytes_atomic(Path(path), bundle.model_dump_json(indent=1).encode() + b"\n", mode=0o644)
    return bundle


def load_bundle(path: Path) -> Bundle:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"bundle file not found: {path}")
    try:
        bundle = Bundle.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: not a ledger bundle: {loc}: {first['msg']}") from None
    if bundle.format != BUNDLE_FORMAT or bundle.schema_version != 1:
        raise InputError(f"{path}: not a clgate ledger bundle (format {bundle.format!r})")
    return bundle


@dataclass
class BundleCheck:
    report: Report
    problems: list[Problem]


def verify_bundle(
    bundle: Bundle,
    trust: Trust,
    since: CheckpointNote | None = None,
    workers: int | None = None,
    seen: SeenHeads | None = None,
) -> BundleCheck:
    """Everything `Ledger.verify` checks, plus each inclusion proof and the stated tree head.

    `since` is a checkpoint the verifier kept from earlier: the bundle must extend it.
    """
    problems: list[Problem] = []
    leaves: list[tuple[int, bytes]] = []
    for e in bundle.entries:
        try:
            leaves.append((e.index, canonical_json(e.envelope)))
        except InputError as exc:
            problems.append(Problem(e.index, str(exc)))
    cp = _bundle_checkpoint(bundle, problems)
    # the head this verifier remembers is looked up by the log's own id (its first entry's hash), never by
    # the bundle's word for it: an edited `log_id` would find no head, and a cut log would pass as new
    log_id = (
        merkle.leaf_hash(leaves[0][1]).hex()
        if leaves and leaves[0][0] == 0
        else trust.log_id or bundle.log_id
    )
    last_seen = seen.get(log_id) if seen is not None else None
    sizes = [c.size for c in (cp, since, last_seen) if c]
    report = verify_leaves(leaves, trust, sizes, workers)
    problems += report.problems
    if bundle.log_id != report.log_id:
        problems.append(
            Problem(None, f"bundle log_id {bundle.log_id[:16]}… is not its log's ({report.log_id[:16]}…)")
        )
    size, root = bundle.tree.get("size"), str(bundle.tree.get("root", ""))
    if (size, root) != (report.size, report.root.hex()):
        problems.append(Problem(None, f"bundle tree head (size {size}) does not match its entries"))
    for pos, (e, (_, leaf)) in enumerate(zip(bundle.entries, leaves, strict=False)):
        proof = [bytes.fromhex(h) for h in e.inclusion_proof] if _all_hex(e.inclusion_proof) else None
        if proof is None or not merkle.verify_inclusion(leaf, pos, report.size, proof, report.root):
            problems.append(Problem(pos, "inclusion proof does not verify"))
    if cp:
        proof = (
            [bytes.fromhex(h) for h in bundle.consistency_proof] if _all_hex(bundle.consistency_proof) else []
        )
        problems += check_since(cp, report, proof)
    if since:
        problems += check_since(since, report, None)
    if last_seen:
        problems += last_seen.problems(report)
    if report.state.claims:  # roots at past sizes, only when a promotion cites a witnessed checkpoint
        levels = _Levels([merkle.leaf_hash(leaf) for _, leaf in leaves])
        problems += report.claim_problems(lambda size: merkle.root_from(levels, size))
    problems += trust_problems(trust, report)
    problems += _key_list_problems(bundle.keys, report)
    problems = sorted(set(problems), key=Problem.sort_key)
    if not problems and seen is not None and report.size:
        seen.remember(report.log_id, report.size, report.root)
    return BundleCheck(report, problems)


def _key_list_problems(listed: list[dict[str, Any]], report: Report) -> list[Problem]:
    """Every key the entries record must be listed as they record it. Exports made before listed trust-file
    keys too, in ring order, and a verifier's trust file may know a revocation dated past the bundle: neither
    is a difference."""
    rows = {row.get("key_id"): row for row in listed if isinstance(row, dict)}

    def within(row: dict[str, Any]) -> Any:
        at = row.get("revoked_at")
        return at if isinstance(at, int) and at < report.size else None

    for want in key_rows(report.ring):
        got = rows.get(want["key_id"], {})
        if any(got.get(f) != want[f] for f in ("public_key", "roles", "name")) or within(got) != within(want):
            return [
                Problem(None, f"the bundle's keys section misstates key {want['name'] or want['key_id'][:16]} "
                        "(its roles, name or revocation are not what the entries record, or it is left out)")
            ]  # fmt: skip
    return []


def _bundle_checkpoint(bundle: Bundle, problems: list[Problem]) -> CheckpointNote | None:
    if bundle.checkpoint is None:
        return None
    try:
        return parse_checkpoint(bundle.checkpoint.encode())
    except InputError as exc:
        problems.append(Problem(None, f"checkpoint: {exc}"))
        return None


def _all_hex(values: list[str]) -> bool:
    return all(re.fullmatch(r"[0-9a-f]{64}", v) for v in values)
