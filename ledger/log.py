"""`Ledger`: the API the gate uses: open, append signed entries, read them, prove, verify, export."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clgate.errors import InputError, IntegrityError
from clgate.ledger import merkle
from clgate.ledger.canonical import canonical_json
from clgate.ledger.checkpoint import CheckpointNote, parse_checkpoint, sign_checkpoint
from clgate.ledger.dsse import ENTRY_PAYLOAD_TYPE, Envelope, sign_envelope
from clgate.ledger.entries import (
    GENESIS_PREV,
    EntryBody,
    EntryDraft,
    EntryPayload,
    is_stateful,
    make_draft,
    utc_now,
)
from clgate.ledger.governance import Governance
from clgate.ledger.keys import key_id, public_key_b64
from clgate.ledger.rows import EntryReader, Head, Prepared
from clgate.ledger.seen import SeenHeads
from clgate.ledger.trust import KeyRing, Trust, load_trust
from clgate.ledger.verify import (
    Problem,
    Report,
    check_since,
    stray_signatures,
    trust_problems,
    verify_leaves,
)

if TYPE_CHECKING:
    from clgate.ledger.store import Store


class AppendRefused(InputError):
    """The signer may not append this entry (unknown, revoked, or lacks the role)."""


@dataclass(frozen=True)
class LedgerEntry:
    """One stored entry: its position, its hash (the RFC 6962 leaf hash), what it says, its bytes."""

    index: int
    entry_hash: str
    payload: EntryPayload
    envelope: Envelope
    leaf: bytes

    @property
    def type(self) -> str:
        return self.payload.type

    @property
    def subject(self) -> str | None:
        return self.payload.subject

    @property
    def body(self) -> dict[str, Any]:
        return self.payload.body

    @property
    def signer(self) -> str:
        return self.payload.signer

    @property
    def timestamp(self) -> str:
        return self.payload.timestamp


def parse_entry(index: int, leaf: bytes) -> LedgerEntry:
    """Parse stored bytes (no signature check: that is `verify`'s job); IntegrityError if malformed."""
    env = Envelope.from_bytes(leaf)
    if env.payload_type != ENTRY_PAYLOAD_TYPE:
        raise IntegrityError(f"entry {index}: unexpected payloadType {env.payload_type!r}")
    try:
        payload = EntryPayload.model_validate_json(env.payload)
    except ValueError:
        raise IntegrityError(f"entry {index}: payload is malformed") from None
    return LedgerEntry(index, merkle.leaf_hash(leaf).hex(), payload, env, leaf)


class Ledger:
    """A signed, append-only, Merkle-logged ledger in a SQL database.

    `trust` (anchor keys) decides who may append; without it the ledger's own genesis admin key is
    trusted on first use (the CLI and the audit layer always pass one). Every append is checked
    against the governance rules inside its transaction. The database is never trusted by `verify`.
    """

    def __init__(self, store: Store, trust: Trust | None = None) -> None:
        self.store = store
        self.trust = trust
        self._state = Governance.start(trust)
        self._tip = ""
        """The hash of the last entry `_state` holds (hex; "" before any): the head every append builds on."""

    @classmethod
    def open(cls, target: str | Path, trust: Trust | Path | None = None) -> Ledger:
        """Open an existing ledger: a SQLite path or a `postgresql+psycopg://` URL."""
        from clgate.ledger.store import Store  # SQLAlchemy only once a database is opened

        return cls(Store.open(target), _as_trust(trust))

    @classmethod
    def init(
        cls,
        target: str | Path,
        admin: Ed25519PrivateKey,
        trust: Trust | Path | None = None,
        admin_name: str = "admin",
    ) -> Ledger:
        """Create a ledger whose first entries register the admin key and every trust-file key.

        Entry 0 is `key.added` for the admin, signed by itself: the genesis a verifier checks
        against its trust file. All are written in one transaction; re-running on an initialised
        ledger is refused.
        """
        trust = _as_trust(trust)
        admin_id = key_id(admin.public_key())
        anchor = trust.by_id().get(admin_id) if trust else None
        if trust is not None:  # checked before the database is made: a refused init leaves none behind
            if trust.log_id:
                raise InputError(
                    f"the trust file is already bound to log {trust.log_id[:16]}…; start from a new one"
                )
            if anchor is None or "admin" not in anchor.roles:
                raise InputError("the admin key must be listed in the trust file with the admin role")
            admins = sum("admin" in k.roles for k in trust.keys)
            if trust.key_quorum > admins:
                raise InputError(
                    f"key_quorum = {trust.key_quorum}, but the trust file lists {admins} admin key(s): no key "
                    "could ever be added"
                )
        from clgate.ledger.store import Store

        store = Store.open(target, create=True)
        if store.head().size:
            raise InputError(f"{store.label} already holds a ledger")
        ledger = cls(store, trust)
        genesis = _key_added(
            admin.public_key(), anchor.roles if anchor else ["admin"], anchor.name if anchor else admin_name
        )
        recorded = {"key_quorum": trust.key_quorum} if trust is not None else {}
        drafts = [
            EntryDraft(
                type="key.added",
                subject=k.key_id,
                body={"key_id": k.key_id, "public_key": k.public_key, "roles": k.roles, "name": k.name},
            )
            for k in (trust.keys if trust else [])
            if k.key_id != admin_id
        ]
        recorded |= {"anchors": len(drafts), "policy_quorum": True}
        genesis = genesis.model_copy(update={"body": {**genesis.body, **recorded}})
        ledger.append_many([genesis, *drafts], admin)
        return ledger

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # writing

    def append(
        self,
        entry: EntryDraft | EntryBody | Mapping[str, Any],
        signer: Ed25519PrivateKey,
        subject: str | None = None,
    ) -> LedgerEntry:
        """Sign and append one entry in one transaction; refused (AppendRefused) if the key may not."""
        return self.append_many([make_draft(entry, subject)], signer)[0]

    def append_many(
        self, entries: Sequence[EntryDraft | EntryBody | Mapping[str, Any]], signer: Ed25519PrivateKey
    ) -> list[LedgerEntry]:
        """Sign and append entries in order in one transaction: all are written, or none.

        One commit for the lot is what makes bulk writers fast (a commit costs more than the rest
        of an append). Each entry is checked against the key ring as it stands after the entries
        before it, so a batch may add a key and use it; any refusal writes nothing.
        """
        drafts = []
        for n, entry in enumerate(entries):
            try:
                drafts.append(make_draft(entry))
            except InputError as exc:
                raise InputError(f"{exc}{_in_batch(n, len(entries))}") from None
        if not drafts:
            return []
        signer_id = key_id(signer.public_key())
        built: dict[str, Any] = {}

        def build(head: Head, read_entries: EntryReader) -> list[Prepared]:
            self._catch_up(head, read_entries)
            state = self._state.fork()  # a refused, failed or retried append leaves the live state as it was
            prev = head.last_hash.hex() if head.size else GENESIS_PREV
            statements, envelopes, prepared = [], [], []
            for index, draft in enumerate(drafts, start=head.size):
                timestamp = utc_now()
                claims = len(state.claims)
                refusal = state.step(index, signer_id, draft.type, draft.subject, draft.body, timestamp)
                refusal = refusal or self._claims_refusal(state, claims)
                if refusal:
                    raise AppendRefused(f"refused: {refusal}{_in_batch(index - head.size, len(drafts))}")
                statement = {
                    "schema_version": 1,
                    "index": index,
                    "timestamp": timestamp,
                    "type": draft.type,
                    "subject": draft.subject,
                    "body": draft.body,
                    "signer": signer_id,
                    "prev": prev,
                }
                env = sign_envelope(canonical_json(statement), ENTRY_PAYLOAD_TYPE, signer, signer_id)
                leaf = env.to_bytes()
                if index == 0:
                    state.log_id = merkle.leaf_hash(leaf).hex()
                prev = merkle.leaf_hash(leaf).hex()
                statements.append(statement)
                envelopes.append(env)
                prepared.append(Prepared(leaf, draft.type, signer_id, statement["timestamp"]))
            built.update(state=state, statements=statements, envelopes=envelopes, prepared=prepared)
            return prepared

        head, digests = self.store.append(build)
        self._state, self._tip = built["state"], head.last_hash.hex()
        self._state.ring.size = head.size
        first = head.size - len(drafts)
        return [
            LedgerEntry(first + n, digest.hex(), EntryPayload.model_construct(**statement), env, p.leaf)
            for n, (digest, statement, env, p) in enumerate(
                zip(digests, built["statements"], built["envelopes"], built["prepared"], strict=True)
            )
        ]

    def _claims_refusal(self, state: Governance, before: int) -> str | None:
        """A promotion citing a witnessed checkpoint must cite this log's real root at that size."""
        for claim in state.claims[before:]:
            if merkle.root_from(self.store.nodes, claim.size) != claim.root:
                return f"the promotion's checkpoint (size {claim.size}) is not this log's"
        return None

    def _catch_up(self, head: Head, read_entries: EntryReader) -> None:
        """Replay stateful entries appended since we last looked (by any process), checking each one.

        The database is not trusted: an entry that does not verify, or that the governance rules
        forbid, stops every append until `clgate ledger verify` has been run and the cause found. Which
        entries are stateful is read from each one's signed type, never from the database's columns. Nor
        is its head: one cut back below what this process read (or whose last entry changed) would have
        its next entry signed onto a fork that left out entries its rules counted.
        """
        size = head.size
        if size < self._state.size or (
            size == self._state.size and size and self._tip not in ("", head.last_hash.hex())
        ):
            raise IntegrityError(
                f"the ledger's head (size {size}) is not the {self._state.size} entries this process read: "
                "entries were removed or rewritten; run `clgate ledger verify`"
            )
        if self._state.size == size:
            return
        # replayed into a fork: an entry refused halfway leaves the state as it was
        state = self._state.fork()
        if not state.log_id and size:
            state.log_id = self.log_id()
        start, prev = state.size, GENESIS_PREV
        for index, leaf in read_entries(max(start - 1, 0)):
            if index >= size:
                break
            entry = parse_entry(index, leaf)
            if index < start:  # the last entry replayed before: the chain goes on from it
                if self._tip and entry.entry_hash != self._tip:
                    raise IntegrityError(
                        f"entry {index} changed since this process read it; run `clgate ledger verify`"
                    )
                prev = entry.entry_hash
                continue
            if index != start or entry.payload.index != index or entry.payload.prev != prev:
                raise IntegrityError(
                    f"entry {start} is missing, or out of its place in the chain; run `clgate ledger verify`"
                )
            start, prev = index + 1, entry.entry_hash
            if not is_stateful(entry.type):
                continue
            public = state.ring.public_key(entry.signer) or (
                _b64(entry.body["public_key"]) if index == 0 and entry.type == "key.added" else None
            )
            if public is None or not entry.envelope.verify(public):
                raise IntegrityError(f"entry {index} does not verify; run `clgate ledger verify`")
            refusal = state.step(index, entry.signer, entry.type, entry.subject, entry.body, entry.timestamp)
            if refusal:
                raise IntegrityError(
                    f"entry {index} breaks the ledger's rules ({refusal}); run `clgate ledger verify`"
                )
        if start < size:
            raise IntegrityError(f"entries {start}..{size - 1} are missing; run `clgate ledger verify`")
        state.ring.size = size
        self._state, self._tip = state, prev

    def governance(self) -> Governance:
        """Keys, policies, updates and deployments as of now (stateful entries replayed, signatures checked)."""
        self._catch_up(self.store.head(), self.store.read)
        return self._state

    def checkpoint(self, signer: Ed25519PrivateKey) -> CheckpointNote:
        """Sign the current tree head (a gate key), store it, and return it (save it with `save_checkpoint`)."""
        head = self.store.head()
        if head.size == 0:
            raise InputError("cannot checkpoint an empty ledger")
        ring = self.governance().ring
        signer_id = key_id(signer.public_key())
        if not ring.has_role(signer_id, "gate", head.size - 1):
            raise AppendRefused(f"refused: checkpoints are signed by a gate key, not {ring.label(signer_id)}")
        cp = sign_checkpoint(self.log_id(), head.size, head.root, signer)
        self.store.add_checkpoint(head.size, cp.to_bytes())
        return cp

    def add_cosignature(self, note: CheckpointNote) -> CheckpointNote:
        """Store a witness's cosigned copy of one of this log's checkpoints; returns all its signatures."""
        stored = {cp.body: cp for cp in self.checkpoints()}.get(note.body)
        if stored is None:
            raise InputError("the cosigned checkpoint is not one this ledger issued")
        self.store.add_checkpoint(note.size, note.to_bytes())
        return stored.merged(note)

    # reading

    def __len__(self) -> int:
        return self.store.head().size

    def __iter__(self) -> Iterator[LedgerEntry]:
        return self.entries()

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[LedgerEntry]:
        for index, leaf in self.store.read(start, stop):
            yield parse_entry(index, leaf)

    def get(self, index: int) -> LedgerEntry:
        leaf = self.store.get(index)
        if leaf is None:
            raise InputError(f"no entry {index} (ledger has {len(self)})")
        return parse_entry(index, leaf)

    __getitem__ = get

    def find(self, entry_type: str | None = None, subject: str | None = None) -> Iterator[LedgerEntry]:
        """Entries of a type (about a subject), chosen by what each entry signed: the database's unsigned
        `entry_type` column could hide a relabelled one."""
        for index, leaf in self.store.read():
            entry = parse_entry(index, leaf)
            if (entry_type is None or entry.type == entry_type) and (
                subject is None or entry.subject == subject
            ):
                yield entry

    def log_id(self) -> str:
        """The hash of entry 0: names this log in checkpoints and bundles."""
        leaf = self.store.get(0)
        if leaf is None:
            raise InputError("the ledger is empty")
        return merkle.leaf_hash(leaf).hex()

    def key_ring(self) -> KeyRing:
        """Keys and roles in effect now (from anchors and the ledger's key entries)."""
        return self.governance().ring

    def checkpoints(self) -> list[CheckpointNote]:
        """Stored checkpoints by size, each with every signature stored for it (log and witnesses)."""
        merged: dict[str, CheckpointNote] = {}
        for size, data in self.store.checkpoints():
            try:
                note = parse_checkpoint(data)
            except InputError as exc:
                raise IntegrityError(f"stored checkpoint of size {size} is malformed ({exc})") from None
            merged[note.body] = merged[note.body].merged(note) if note.body in merged else note
        return sorted(merged.values(), key=lambda cp: cp.size)

    # proofs

    def root(self, size: int | None = None) -> bytes:
        head = self.store.head()
        if size is None or size == head.size:
            return head.root
        self._check_size(size, head.size)
        return merkle.root_from(self.store.nodes, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Proof that entry `index` is in the tree of `size` (default: now); O(log n), one query."""
        size = self._check_size(size, len(self))
        if not 0 <= index < size:
            raise InputError(f"no entry {index} in a tree of size {size}")
        return merkle.inclusion_proof_from(self.store.nodes, index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self._check_size(new_size, len(self))
        if not 0 <= old_size <= new_size:
            raise InputError(f"cannot prove consistency from size {old_size} to {new_size}")
        return merkle.consistency_proof_from(self.store.nodes, old_size, new_size)

    @staticmethod
    def _check_size(size: int | None, current: int) -> int:
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InputError(f"tree size {size} is outside 0..{current}")
        return size

    # verification

    def verify(
        self,
        trust: Trust | Path | None = None,
        since: CheckpointNote | None = None,
        workers: int | None = None,
        seen: SeenHeads | None = None,
    ) -> list[Problem]:
        """Every problem found recomputing the ledger from its bytes (empty list: clean)."""
        return self.verify_report(trust, since, workers, seen).problems

    def verify_report(
        self,
        trust: Trust | Path | None = None,
        since: CheckpointNote | None = None,
        workers: int | None = None,
        seen: SeenHeads | None = None,
    ) -> Report:
        """Verify everything from the entry bytes; with `seen`, also that the log only grew since
        this verifier last verified it, and remember the head on success."""
        trust = _as_trust(trust) or self.trust
        try:
            stored, unreadable = self.checkpoints(), []
        except IntegrityError as exc:
            stored, unreadable = [], [Problem(None, str(exc))]
        last_seen = seen.get(self.log_id()) if seen is not None and len(self) else None
        sizes = {cp.size for cp in stored} | ({since.size} if since else set())
        sizes |= {last_seen.size} if last_seen else set()
        # The head first, then only the entries below it: those are committed; what other writers append
        # meanwhile is the next verify's. (Entries read first and the head after made a verify racing an
        # append report the new entry as forged.) Rows past the head no append made: read them all, to
        # say what they are.
        head = self.store.head()
        report = verify_leaves(self.store.read(stop=head.size), trust, sizes, workers, keep_nodes=True)
        now = self.store.head().size
        past = [i for i, _ in self.store.read(start=now)]
        now = self.store.head().size if past else now  # rows appended since `now` was read are not strays
        if [i for i in past if i >= now]:
            report = verify_leaves(self.store.read(), trust, sizes, workers, keep_nodes=True)
            head = self.store.head()
        report.problems.extend(unreadable)
        head_last = head.last_hash if head.size else b""
        if (head.size, head.root, head.frontier.hashes, head_last) != (
            report.size,
            report.root,
            report.frontier.hashes,
            report.last_hash,
        ):
            report.problems.append(
                Problem(
                    None,
                    f"stored tree head (size {head.size}, root {head.root.hex()[:16]}) does not match the "
                    f"entries (size {report.size}, root {report.root.hex()[:16]}): entries removed or altered",
                )
            )
        report.problems.extend(self._check_nodes(report.nodes, head.size))
        unique = {cp.to_bytes(): cp for cp in [*stored, *([since] if since else [])]}
        for cp in unique.values():
            proof = None
            if cp.size <= report.size and report.size == head.size:
                try:
                    proof = merkle.consistency_proof_from(self.store.nodes, cp.size, report.size)
                except IntegrityError as exc:
                    report.problems.append(Problem(None, str(exc)))
            report.problems.extend(check_since(cp, report, proof))
        for cp in stored:
            report.problems.extend(stray_signatures(cp, report))
        report.checkpoints = stored
        report.problems.extend(report.claim_problems(lambda size: merkle.root_from(_nodes_of(report), size)))
        report.problems.extend(trust_problems(trust, report))
        if last_seen is not None:
            report.problems.extend(last_seen.problems(report))
        report.problems.sort(key=Problem.sort_key)
        if report.ok and report.size == head.size and trust is self.trust:
            self._state, self._tip = report.state, report.last_hash.hex()
        if report.ok and seen is not None and report.size:
            seen.remember(report.log_id, report.size, report.root)
        return report

    def _check_nodes(self, expected: dict[tuple[int, int], bytes], size: int) -> list[Problem]:
        """Stored Merkle nodes must be exactly the recomputed ones, or proofs served from them lie. Those over
        leaves past `size` but within the head read after them were appended while this verify read: the
        next verify checks them."""
        stored = list(self.store.all_nodes())
        now = self.store.head().size
        seen, wrong = 0, []
        for level, idx, digest in stored:
            if size < (idx + 1) << level <= now:
                continue
            seen += 1
            if expected.get((level, idx)) != digest:
                wrong.append((level, idx))
        if wrong:
            first = min(wrong)
            return [
                Problem(
                    None,
                    f"{len(wrong)} stored Merkle node(s) wrong, first at level {first[0]}, index {first[1]}",
                )
            ]
        if seen != len(expected):
            return [Problem(None, f"store holds {seen} Merkle nodes, the entries make {len(expected)}")]
        return []


def _nodes_of(report: Report) -> merkle.NodeSource:
    return lambda keys: {k: report.nodes[k] for k in keys}


def _as_trust(trust: Trust | Path | str | None) -> Trust | None:
    if trust is None or isinstance(trust, Trust):
        return trust
    return load_trust(Path(trust))


def _in_batch(position: int, size: int) -> str:
    return f" (entry {position} of the batch)" if size > 1 else ""


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _key_added(public_key: Ed25519PublicKey, roles: list[str], name: str) -> EntryDraft:
    kid = key_id(public_key)
    body = {"key_id": kid, "public_key": public_key_b64(public_key), "roles": roles, "name": name}
    return EntryDraft(type="key.added", subject=kid, body=body)
