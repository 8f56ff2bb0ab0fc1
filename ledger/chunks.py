"""Parsing and signature checks of ledger entries in chunks, on every core.

A full verify spends nearly all its time parsing entries (which holds the GIL) and checking
Ed25519 signatures, so the work is cut into chunks shared between worker processes and the caller
(which also reads, hashes and chains). What must happen in index order (is this signer allowed
at this index, given every key entry before it?) stays with the caller: a chunk only answers
"does this signature verify under the key with this id?". A key id is the SHA-256 of its key, so
any key with that id is the right one to check with, whoever added it.
"""

from __future__ import annotations

import base64
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError

from clgate.errors import IntegrityError
from clgate.ledger.dsse import ENTRY_PAYLOAD_TYPE, Envelope
from clgate.ledger.entries import EntryPayload, is_stateful
from clgate.ledger.trust import KeyRing

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

CHUNK = 1000
PER_WORKER = 2  # chunks handed to each worker before this process parses one itself

# One entry waiting for its parse: stored index, bytes, and the hash of the entry stored before it.
Pending = tuple[int, bytes, bytes]


class Parsed(NamedTuple):
    """What the in-order checks need from one entry that parsed cleanly."""

    index: int
    prev: str
    signer: str
    keyid: str
    type: str
    subject: str | None
    timestamp: str
    body: dict[str, Any] | None  # stateful entries only: the governance rules replay them
    signature_ok: bool | None  # None: the worker did not know the signer's key


def parse_chunk(leaves: Sequence[bytes], keys: dict[str, bytes]) -> list[Parsed | str]:
    """Parse each entry strictly and check its signature if the signer's key is known.

    `keys` maps key ids to raw public keys; keys added earlier in the chunk are learnt on the way
    (their bodies were validated: the id is the key's hash). A string is what is malformed.
    """
    keys = dict(keys)
    parsed: list[Parsed | str] = []
    for leaf in leaves:
        try:
            env = Envelope.from_bytes(leaf)
        except IntegrityError as exc:
            parsed.append(str(exc))
            continue
        if env.payload_type != ENTRY_PAYLOAD_TYPE:
            parsed.append(f"unexpected payloadType {env.payload_type!r}")
            continue
        try:
            payload = EntryPayload.model_validate_json(env.payload)
        except ValidationError as exc:
            parsed.append(f"payload is malformed: {exc.errors()[0]['msg']}")
            continue
        if payload.type == "key.added":
            keys.setdefault(payload.body["key_id"], base64.b64decode(payload.body["public_key"]))
        public = keys.get(payload.signer)
        parsed.append(
            Parsed(
                payload.index,
                payload.prev,
                payload.signer,
                env.keyid,
                payload.type,
                payload.subject,
                payload.timestamp,
                payload.body if is_stateful(payload.type) else None,
                None if public is None else env.verify(public),
            )
        )
    return parsed


Done = tuple[list[Pending], list[Parsed | str]]


class ChunkParser:
    """Parses entries chunk by chunk, on this process and `workers - 1` others, handing results back in order.

    A full chunk goes to the worker processes while they have fewer than PER_WORKER chunks each in
    hand, and is otherwise parsed here: a worker always has its next chunk waiting when it finishes
    one (sent only to an idle worker, a chunk left it waiting while this process parsed), and this
    process parses whenever it is not reading or checking, so every core stays busy while results
    are checked in order as soon as they are ready. Each chunk carries the keys `ring` knows when
    it is started; an entry signed by a key the parser did not know comes back unchecked (None).
    """

    def __init__(self, ring: KeyRing, workers: int | None = None, size: int | None = None) -> None:
        self.ring = ring
        self.workers = workers or os.cpu_count() or 1
        self.size = size or CHUNK
        self.pending: list[Pending] = []
        self.queue: deque[tuple[list[Pending], Future[list[Parsed | str]]]] = deque()
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ChunkParser:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def add(self, entry: Pending) -> list[Done]:
        """Queue one entry; return the chunks finished so far, oldest first."""
        self.pending.append(entry)
        if len(self.pending) < self.size:
            return []
        self._start()
        done = []
        while self.queue and (self.queue[0][1].done() or len(self.queue) > PER_WORKER * self.workers):
            chunk, future = self.queue.popleft()
            done.append((chunk, future.result()))
        return done

    def finish(self) -> Iterator[Done]:
        """Every remaining chunk, oldest first; the last, partial one (all of a small ledger) is parsed here."""
        if self.pending:
            self._start(here=True)
        while self.queue:
            chunk, future = self.queue.popleft()
            yield chunk, future.result()

    def _start(self, here: bool = False) -> None:
        chunk, self.pending = self.pending, []
        leaves, keys = [leaf for _, leaf, _ in chunk], self._keys()
        busy = sum(not future.done() for _, future in self.queue)
        if not here and busy < PER_WORKER * (self.workers - 1):
            future = self._pool().submit(parse_chunk, leaves, keys)
        else:
            future = Future()
            future.set_result(parse_chunk(leaves, keys))
        self.queue.append((chunk, future))

    def _keys(self) -> dict[str, bytes]:
        return {kid: state.public_key for kid, state in self.ring.keys.items()}

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:  # imported here: a ledger of one chunk (most verifies) starts no process
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = ProcessPoolExecutor(self.workers - 1, mp_context=context)
        return self.pool
