"""How long the dashboard takes to open a 10,000-entry ledger, against a bare read of it.

    python benchmarks/dashboard.py [--entries 10000] [--repeats 3]

Builds a ledger of `--entries` signed entries shaped like a busy deployment (updates proposed,
audited with evidence, approved, promoted or blocked; scheduled audits in between), timing each
update's appends (the last tenth against the first: a ledger ten times as long should not make an
append slower), then times:
  bare         list(Ledger.entries()): read and parse every entry, nothing else (the floor)
  first draw   clgate.dashboard.read_view: read and parse every entry, replay the state, load
               every pinned measurement: what the first page is drawn from, marked "verifying"
               with every action disabled
  verified     clgate.dashboard.open_view: the same plus a full verification (every signature,
               hash link and Merkle node): when the page is drawn again with the result
  cached       clgate.dashboard.load_snapshot on an unchanged ledger (every later page view)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from clgate.audit.journal import Journal
from clgate.audit.policy import load_policy
from clgate.dashboard import load_snapshot, open_view, read_view
from clgate.demo import bootstrap_ledger
from clgate.ledger import (
    AuditRecord,
    Block,
    Finding,
    Ledger,
    Promotion,
    Proposal,
    ProposalContent,
    ScheduledRun,
    Status,
    decision_of,
    load_private_key,
)
from clgate.measurement import Measurement


def _proposal(n: int, kind: str, base: str | None) -> Proposal:
    digest = f"sha256:{n:064x}"
    parent = base or "sha256:" + "f" * 64
    role = "candidate" if kind == "model" else "adapter"
    content = {
        "kind": kind,
        "base": digest if kind == "model" else parent,
        "nonce": f"{n:016x}",
        "artifacts": {
            "parent": {"kind": "model", "uri": "/models/base", "digest": parent},
            role: {"kind": kind, "uri": f"/models/a{n}", "digest": digest},
        },
    }
    return Proposal.of(ProposalContent.model_validate(content))


def build(folder: Path, entries: int) -> tuple[Path, Path]:
    """A realistic history: a base, then adapters audited (one in ten blocked) and promoted, scheduled runs between."""
    policy = load_policy()
    boot = bootstrap_ledger(folder, policies=[policy])
    keys = {name: load_private_key(path) for name, path in boot.keys.items()}
    journals = {n: Journal.open(boot.ledger, keys[n], boot.trust) for n in ("pipeline", "gate", "approver")}
    pipeline, gate, approver = journals["pipeline"], journals["gate"], journals["approver"]

    def audited(p: Proposal, block: bool) -> None:
        pipeline.propose(p)
        evidence = gate.evidence.put(
            Measurement(
                name="weights",
                version="1",
                numbers={"max_relative_change": 0.01 * (int(p.nonce, 16) % 60)},
                details=[
                    {"layer": i, "relative_change": 0.001 * i * (int(p.nonce, 16) % 7)} for i in range(24)
                ],
            )
        )
        status = Status.FAIL if block else Status.PASS
        finding = Finding(rule="weight-change", check="weights", status=status, reason="weights moved")
        record = AuditRecord(
            update_id=p.update_id,
            verdict=decision_of([status]),
            findings=[finding],
            measurements={"weights": evidence},
            policy=policy.ref,
        )
        gate.append(record, p.candidate.digest)
        if block:
            gate.append(Block(update_id=p.update_id, reason="weight change"), p.candidate.digest)
        else:
            deployed = approver.ledger.governance().deployed.get(("default", p.slot))
            approver.append(
                Promotion(update_id=p.update_id, slot=p.slot, replaced=deployed), p.candidate.digest
            )

    base = _proposal(0, "model", None)
    audited(base, block=False)
    n, seconds = 1, []
    while len(pipeline.ledger) < entries:
        start = time.perf_counter()
        audited(_proposal(n, "adapter", base.candidate.digest), block=n % 10 == 9)
        for _ in range(6):
            gate.append(ScheduledRun(verdict="promote", policy=policy.ref), None)
        seconds.append(time.perf_counter() - start)
        n += 1
    for j in journals.values():
        j.close()
    return boot.ledger, boot.trust, seconds


def timed(fn, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ledger, trust, seconds = build(Path(tmp), args.entries)
        with Ledger.open(ledger) as opened:
            size = len(opened)
        print(f"built a {size}-entry ledger in {time.perf_counter() - start:.1f} s")
        tenth = max(len(seconds) // 10, 1)
        first, last = statistics.mean(seconds[:tenth]), statistics.mean(seconds[-tenth:])
        print(  # each update's entries, appended into a ledger 10x as long: flat if appends do not grow with it
            f"appends         {1000 * first:6.1f} ms per update (first tenth), {1000 * last:.1f} ms (last tenth): "
            f"ratio {last / first:.2f}"
        )

        def bare() -> None:
            with Ledger.open(ledger) as opened:
                list(opened.entries())

        bare_s = timed(bare, args.repeats)
        first_s = timed(lambda: read_view(str(ledger), trust), args.repeats)
        verified_s = timed(lambda: open_view(str(ledger), trust), args.repeats)
        load_snapshot(str(ledger), trust).verify()
        cached_s = timed(lambda: load_snapshot(str(ledger), trust).view, args.repeats)
        print(f"bare read       {bare_s:6.2f} s")
        print(
            f"first draw      {first_s:6.2f} s  ({first_s / bare_s:.1f}x bare; budget 3 s; actions disabled)"
        )
        print(
            f"verified        {verified_s:6.2f} s  ({verified_s / bare_s:.1f}x bare; page redrawn, actions enabled)"
        )
        print(f"cached open     {cached_s:6.3f} s  ({cached_s / bare_s:.2f}x bare)")


if __name__ == "__main__":
    main()
