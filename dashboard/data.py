"""The dashboard's only way to read: a verified, cached snapshot of the ledger and its evidence.

Opening a ledger verifies every entry, which is the slow part, so a snapshot is cached keyed by
the ledger's size, root and file times: any append (or any change to the file) makes a new
snapshot, and every rerun of a page in between is a cache hit. The snapshot is shared, not
copied (`st.cache_resource`): unpickling a 10,000-entry snapshot on every rerun, as
`st.cache_data` does, costs more than half a second. Pages treat it as read-only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from clgate.audit.journal import Journal
from clgate.audit.state import LedgerState, replay
from clgate.errors import ClgateError
from clgate.ledger import Ledger
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

    @property
    def verified(self) -> bool:
        return not self.problems

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


def _rows(ledger: Ledger, names: dict[str, str]) -> tuple[list[EntryRow], LedgerState]:
    entries = list(ledger.entries())
    rows = [
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
    return rows, replay(entries)


def _names(ledger: Ledger) -> dict[str, str]:
    return {kid: k.name or kid[:12] for kid, k in ledger.key_ring().keys.items()}


def _evidence(journal: Journal, state: LedgerState) -> tuple[dict[str, Measurement], dict[str, str]]:
    digests = {d for u in state.updates.values() for d in u.measurements.values()}
    digests |= {d for _, body in state.scheduled_runs for d in body.get("measurements", {}).values()}
    found, problems = {}, {}
    for digest in sorted(digests):
        try:
            m = journal.evidence.get(digest)
        except ClgateError as exc:
            problems[digest] = str(exc)
            continue
        if m is None:
            problems[digest] = "evidence file missing"
        else:
            found[digest] = m
    return found, problems


def open_view(target: str, trust: Path | None) -> LedgerView:
    """Verify and read the whole ledger; a tampered ledger still shows, with its problems listed."""
    start = time.perf_counter()
    try:
        journal = Journal.open(target, None, trust)
    except ClgateError:
        if "://" not in target and not Path(target).is_file():
            raise
        with Ledger.open(target, trust) as ledger:
            problems = [str(p) for p in ledger.verify(trust)] or ["the ledger could not be opened"]
            try:
                names = _names(ledger)
                rows, state = _rows(ledger, names)
            except (ClgateError, ValueError):
                names, rows, state = {}, [], LedgerState()
            size, root = len(ledger), ledger.root().hex()
        return LedgerView(
            target, size, root, problems, state, rows, names, seconds=time.perf_counter() - start
        )
    try:
        names = _names(journal.ledger)
        rows, state = _rows(journal.ledger, names)
        measurements, evidence_problems = _evidence(journal, state)
        size, root = len(journal.ledger), journal.ledger.root().hex()
    finally:
        journal.close()
    return LedgerView(
        target,
        size,
        root,
        [],
        state,
        rows,
        names,
        measurements,
        evidence_problems,
        time.perf_counter() - start,
    )


@st.cache_resource(show_spinner="Verifying the ledger…", max_entries=4)
def _cached_view(target: str, trust: str | None, key: tuple[int, str, tuple[int, ...]]) -> LedgerView:
    return open_view(target, Path(trust) if trust else None)


def load_view(target: str, trust: Path | None) -> LedgerView:
    """The snapshot for the ledger as it is now (cached until it changes)."""
    return _cached_view(target, str(trust) if trust else None, ledger_key(target))
