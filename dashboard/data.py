"""The dashboard's only way to read: a snapshot of the ledger and its evidence, and its verification.

Reading and replaying a 10,000-entry ledger takes well under a second; verifying it (every
signature, hash link and Merkle node) takes longer. So a page is first drawn from the bare read,
marked as pending, with every action disabled; the app then verifies and reruns, and the page
shows the result (a failure as a red banner). The verification is bound to what was drawn: it
must recompute the same size and Merkle root from the entries it read, or it fails.

Both halves live in one `Snapshot`, cached per ledger state (size, root and file times), so any
append or change to the file makes a new one and every rerun in between is a cache hit. It is
shared, not copied (`st.cache_resource`): unpickling a 10,000-entry snapshot on every rerun, as
`st.cache_data` does, costs more than half a second. Pages treat it as read-only.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from clgate.audit.evidence import EvidenceStore
from clgate.audit.journal import evidence_store
from clgate.audit.state import LedgerState, replay
from clgate.errors import ClgateError
from clgate.ledger import CheckpointNote, Ledger, LedgerEntry, SeenHeads, load_trust, merkle, parse_entry
from clgate.measurement import Measurement


@dataclass(frozen=True)
class EntryRow:
    index: int
    type: str
    timestamp: str
    signer: str
    subject: str | None
    update_id: str | None


@dataclass
class LedgerView:
    label: str
    size: int
    root: str
    problems: list[str]
    state: LedgerState
    entries: list[EntryRow]
    names: dict[str, str]
    measurements: dict[str, Measurement] = field(default_factory=dict)
    evidence_problems: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    pending: bool = True  # not verified yet: nothing may be signed on it
    verify_seconds: float = 0.0
    checkpoints: list[CheckpointNote] = field(default_factory=list)  # those the verification checked

    @property
    def verified(self) -> bool:
        return not self.pending and not self.problems

    def measurement(self, digest: str) -> Measurement | None:
        return self.measurements.get(digest)


def ledger_key(target: str) -> tuple[int, str, tuple[int, ...]]:
    """Cheap fingerprint of the ledger: size, root and file times (no verification)."""
    with Ledger.open(target) as ledger:
        size, root = len(ledger), ledger.root().hex()
    times = tuple(
        os.stat(p).st_mtime_ns for p in (target, f"{target}-wal") if "://" not in target and Path(p).exists()
    )
    return size, root, times


def _rows(entries: list[LedgerEntry], names: dict[str, str]) -> list[EntryRow]:
    return [
        EntryRow(
            e.index,
            e.type,
            e.timestamp,
            names.get(e.signer, e.signer[:12]),
            e.subject,
            e.body.get("update_id"),
        )
        for e in entries
    ]


def _evidence(store: EvidenceStore, state: LedgerState) -> tuple[dict[str, Measurement], dict[str, str]]:
    found, problems = {}, {}
    for digest in sorted(state.recorded_measurements()):
        try:
            m = store.get(digest)
        except ClgateError as exc:
            problems[digest] = str(exc)
            continue
        if m is None:
            problems[digest] = "evidence file missing"
        else:
            found[digest] = m
    return found, problems


def read_view(target: str, trust: Path) -> LedgerView:
    """Read and replay the whole ledger, unverified (`pending`); entries that do not parse leave it empty."""
    start = time.perf_counter()
    anchors = load_trust(trust)
    with Ledger.open(target, anchors) as ledger:
        leaves = list(ledger.store.read())
        try:  # key names from the same replay as the rest, checked with it by `verify_view`
            entries = [parse_entry(index, leaf) for index, leaf in leaves]
            state = replay(entries, anchors)
            names = {kid: k.name or kid[:12] for kid, k in state.governance.ring.keys.items()}
        except (ClgateError, ValueError):
            names, entries, state = {}, [], LedgerState()
    measurements, evidence_problems = _evidence(evidence_store(target), state)
    root = merkle.root([leaf for _, leaf in leaves]).hex()
    return LedgerView(
        target,
        len(leaves),
        root,
        [],
        state,
        _rows(entries, names),
        names,
        measurements,
        evidence_problems,
        time.perf_counter() - start,
    )


def verify_view(view: LedgerView, trust: Path) -> LedgerView:
    """`view` with the problems a full verification finds, or one saying the ledger moved meanwhile.

    The ledger must also extend the largest head this server verified before (anti-rollback).
    """
    start = time.perf_counter()
    with Ledger.open(view.label, load_trust(trust)) as ledger:
        report = ledger.verify_report(seen=SeenHeads())
    problems = [str(p) for p in report.problems]
    if (report.size, report.root.hex()) != (view.size, view.root):
        problems.append("log: the ledger changed while this page was drawn; reload the page")
    return dataclasses.replace(
        view,
        problems=problems,
        pending=False,
        verify_seconds=time.perf_counter() - start,
        checkpoints=report.checkpoints,
    )


def open_view(target: str, trust: Path) -> LedgerView:
    """Read and verify the whole ledger; a tampered ledger still shows, with its problems listed."""
    return verify_view(read_view(target, trust), trust)


class Snapshot:
    """One ledger state as the app sees it: read at once, verified once (by whichever run gets there first)."""

    def __init__(self, view: LedgerView, trust: Path) -> None:
        self.view = view
        self.trust = trust
        self._lock = threading.Lock()

    def verify(self) -> LedgerView:
        with self._lock:
            if self.view.pending:
                self.view = verify_view(self.view, self.trust)
        return self.view


@st.cache_resource(show_spinner="Reading the ledger…", max_entries=4)
def _snapshot(target: str, trust: str, key: tuple[int, str, tuple[int, ...]]) -> Snapshot:
    return Snapshot(read_view(target, Path(trust)), Path(trust))


def load_snapshot(target: str, trust: Path) -> Snapshot:
    """The snapshot of the ledger as it is now (cached until it changes); `pending` until verified."""
    return _snapshot(target, str(trust), ledger_key(target))
