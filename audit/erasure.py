"""Erasure of a data subject's data from a deployment (GDPR Art. 17), provable from the ledger alone.

`request_erasure` finds every entry of the deployed memory and every training record of the updates
the deployment promoted that carry the subject's identifier (or match a pattern), writes the memory
store without those entries, and records `erasure.requested`: the entry ids, the updates trained on
it (which the ledger then never deploys again) and a salted digest of the identifier, never the
identifier itself. The new store goes through the gate as any memory update. `finish_erasure`, once
it is promoted, scans the deployed store afresh and records `erasure.done`, which the ledger accepts
only if that store is the memory promoted after the request and no update trained on the data runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clgate.artifacts import (
    ArtifactKind,
    DatasetRecord,
    MemoryEntry,
    compute_manifest,
    iter_dataset,
    load_memory_store,
    write_memory_store,
)
from clgate.audit.journal import Journal
from clgate.audit.state import LedgerState
from clgate.errors import IncompleteError, InputError
from clgate.ledger import ErasureDone, ErasureRequest, ErasureState, TrainedOn, UpdateState


@dataclass(frozen=True)
class Matcher:
    """What marks the subject's data: an identifier (a user id, an e-mail address: found case-insensitively
    anywhere in an entry's text, source or metadata) or a regular expression."""

    kind: Literal["subject", "pattern"]
    value: str

    @classmethod
    def of(cls, subject: str | None, pattern: str | None) -> Matcher:
        if (subject is None) == (pattern is None):
            raise InputError("give exactly one of --subject or --pattern")
        if subject is not None:
            if not subject.strip():
                raise InputError("--subject is empty")
            return cls("subject", subject)
        assert pattern is not None
        try:
            compiled = re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:  # x{99999999999}, deep nesting
            raise InputError(f"--pattern is not a regular expression: {exc}") from None
        if compiled.search(""):  # an entry with no source or metadata has an empty text to search
            raise InputError(f"--pattern {pattern!r} matches an empty text, so it would mark every entry")
        return cls("pattern", pattern)

    def carries(self, texts: Iterable[str]) -> bool:
        if self.kind == "subject":
            needle = self.value.casefold()
            return any(needle in t.casefold() for t in texts)
        compiled = re.compile(self.value)
        return any(_search(compiled, t) for t in texts)

    def digest(self, salt: str) -> str:
        """What the ledger keeps of the matcher: whoever holds it can show which request it made."""
        return "sha256:" + hashlib.sha256(f"{salt}\0{self.kind}\0{self.value}".encode()).hexdigest()


SEARCH_LIMIT_S = 10.0


def _search(compiled: re.Pattern[str], text: str) -> bool:
    """Whether `compiled` matches in `text`, in at most SEARCH_LIMIT_S: a pattern that backtracks without
    end (`(.*.*)*Z$`) would otherwise hang the command. Python's regex engine has no time limit of its own,
    but a signal interrupts it; off the main thread (no signals there) the search runs unlimited."""
    if threading.current_thread() is not threading.main_thread():
        return compiled.search(text) is not None

    def expire(signum: int, frame: object) -> None:
        raise InputError(
            f"--pattern {compiled.pattern!r} ran over {SEARCH_LIMIT_S:g} s on one text (it backtracks without "
            "end): write it without nested repetition"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, SEARCH_LIMIT_S)
    try:
        return compiled.search(text) is not None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def entry_texts(entry: MemoryEntry) -> list[str]:
    return [entry.text, entry.source or "", json.dumps(entry.metadata, sort_keys=True, ensure_ascii=False)]


def record_texts(record: DatasetRecord) -> list[str]:
    return [m.content for m in record.messages] + [
        json.dumps(record.metadata, sort_keys=True, ensure_ascii=False)
    ]


@dataclass(frozen=True)
class DeployedMemory:
    """The memory a deployment runs, and the store read for it (the promoted file, or the live one given)."""

    update: UpdateState
    path: Path
    digest: str
    entries: tuple[MemoryEntry, ...]


def deployed_memory(state: LedgerState, deployment: str, path: Path | None) -> DeployedMemory | None:
    update = state.deployed_update("memory", deployment)
    if update is None:
        if path is not None:
            raise InputError(f"deployment {deployment!r} has no memory promoted; --memory does not apply")
        return None
    path = Path(path or update.proposal.artifacts["memory_new"].uri)
    if not path.is_file():
        raise InputError(
            f"cannot find the deployed memory store of {deployment!r} at {path} (give it with --memory)"
        )
    store = load_memory_store(path)
    return DeployedMemory(update, path, compute_manifest(path, ArtifactKind.MEMORY).root, store.entries)


def trained_on(state: LedgerState, deployment: str, matcher: Matcher) -> list[TrainedOn]:
    """Every update `deployment` ever promoted whose training data carries the subject's data, read back from
    where its proposal recorded it; data no longer there as proposed counts as carrying it (fail closed)."""
    promoted = dict.fromkeys(e.update_id for e in state.history if e.deployment == deployment)
    out = []
    for update_id in promoted:
        ref = state.updates[update_id].proposal.artifacts.get("data")
        if ref is None:
            continue
        path = Path(ref.uri)
        if not path.is_file() or compute_manifest(path, ArtifactKind.DATASET).root != ref.digest:
            out.append(TrainedOn(update_id=update_id, data_digest=ref.digest, records=None))
            continue
        records = [n for n, r in enumerate(iter_dataset(path), start=1) if matcher.carries(record_texts(r))]
        if records:
            out.append(TrainedOn(update_id=update_id, data_digest=ref.digest, records=records))
    return out


@dataclass(frozen=True)
class Requested:
    request: ErasureRequest
    index: int
    store: Path | None
    """The memory store without the subject's entries (None: the deployed memory carries none)."""
    memory: DeployedMemory | None


def request_erasure(
    journal: Journal, deployment: str, matcher: Matcher, out: Path, memory: Path | None = None
) -> Requested:
    """Find the subject's data in `deployment`, write the memory store without it to `out`, record the request."""
    journal.require_role("erasure.requested")  # before the store is written: no store without its request
    state = journal.state()
    if deployment not in state.governance.proposed_to:
        # one with nothing deployed still has audits whose evidence may quote the subject
        raise InputError(
            f"deployment {deployment!r} was never proposed anything; there is nothing of it to erase"
        )
    found = deployed_memory(state, deployment, memory)
    carriers = [e for e in found.entries if matcher.carries(entry_texts(e))] if found else []
    salt = secrets.token_hex(16)
    request = ErasureRequest.of(
        deployment=deployment,
        matcher=matcher.kind,
        matcher_digest=matcher.digest(salt),
        salt=salt,
        memory_update=found.update.update_id if found else None,
        memory_digest=found.digest if found else None,
        memory_entries=[e.id for e in carriers],
        trained_on=trained_on(state, deployment, matcher),
        nonce=secrets.token_hex(8),
    )
    store = None
    if found is not None and carriers:
        if Path(out).resolve() == found.path.resolve():
            raise InputError(f"--out {out} is the deployed store itself: write the new one beside it")
        gone = {e.id for e in carriers}
        store = write_memory_store([e for e in found.entries if e.id not in gone], Path(out))
    return Requested(request, journal.append(request, request.request_id), store, found)


def quoting_evidence(journal: Journal, state: LedgerState, deployment: str, matcher: Matcher) -> list[str]:
    """The measurements that quote the subject's data (memory diffs show entry text, the erasure's own gate
    included): the deployment's audits' and scheduled runs' (a rescan of the live store quotes its entries),
    and those no entry records (a gate that broke or was stopped after a check stored its result); removed
    once the erasure is recorded, their digests kept in it."""
    recorded = state.recorded_measurements()
    unrecorded = [d for d in journal.evidence.digests() if d not in recorded]
    digests = dict.fromkeys(
        [d for u in state.updates.values() if u.deployment == deployment for d in u.measurements.values()]
        + [
            d
            for _, run in state.scheduled_runs
            if run.deployment == deployment
            for d in run.measurements.values()
        ]
        + unrecorded
    )
    return [d for d in digests if journal.evidence.quotes(d, lambda text: matcher.carries([text]))]


@dataclass(frozen=True)
class Done:
    record: ErasureDone
    index: int
    others: list[str]
    """Measurements that quote the subject but are other deployments' evidence (recorded there first): kept,
    for those deployments' own erasures."""


def open_request(state: LedgerState, request_id: str) -> ErasureState:
    erasure = state.governance.erasures.get(request_id)
    if erasure is None:
        raise InputError(f"no erasure request {request_id} in the ledger")
    if erasure.done_index is not None:
        raise InputError(f"erasure request {request_id} was done at entry {erasure.done_index}")
    if erasure.withdrawn_index is not None:
        raise InputError(f"erasure request {request_id} was withdrawn at entry {erasure.withdrawn_index}")
    return erasure


def finish_erasure(journal: Journal, request_id: str, matcher: Matcher, memory: Path | None = None) -> Done:
    """Scan the deployed memory afresh and record `erasure.done`; IncompleteError (exit 1) while any of the
    subject's data is still deployed, saying what is left to do."""
    state = journal.state()
    erasure = open_request(state, request_id)
    request = erasure.request
    if matcher.kind != request.matcher or matcher.digest(request.salt) != request.matcher_digest:
        raise InputError(f"that --{matcher.kind} is not the one erasure request {request_id} was made for")
    found = deployed_memory(state, request.deployment, memory)
    if found is not None:
        left = [e.id for e in found.entries if matcher.carries(entry_texts(e))]
        if left:
            raise IncompleteError(
                f"{len(left)} entries of the deployed memory still carry it ({', '.join(left[:5])}): gate and "
                "promote the store `clgate erase request` wrote"
            )
        if request.memory_entries and found.update.update_id == request.memory_update:
            raise IncompleteError(
                f"deployment {request.deployment!r} still runs memory {request.memory_update}, which carries it: "
                "promote the store without it"
            )
        if found.digest != found.update.candidate_digest:
            raise IncompleteError(
                f"the store at {found.path} is not memory {found.update.update_id} as promoted: the proof needs "
                "the promoted store (gate the live one as a memory update first)"
            )
    running = [
        f"{uid} ({slot})"
        for slot, uid in state.deployed(request.deployment).items()
        if uid in erasure.retrain
    ]
    if running:
        raise IncompleteError(
            f"{', '.join(running)} trained on the erased data still deployed in {request.deployment!r}: roll it "
            "back, or train again without the data and promote that"
        )
    quoting = quoting_evidence(journal, state, request.deployment, matcher)
    others = [d for d in quoting if state.governance.evidence_refusal(d, request.deployment)]
    record = ErasureDone(
        request_id=request_id,
        memory_update=found.update.update_id if found else None,
        memory_digest=found.digest if found else None,
        entries_scanned=len(found.entries) if found else 0,
        evidence_removed=[d for d in quoting if d not in others],
    )
    index = journal.append(record, request_id)  # recorded first: a removal never goes unexplained
    for digest in record.evidence_removed:
        journal.evidence.remove(digest)
    return Done(record, index, others)
