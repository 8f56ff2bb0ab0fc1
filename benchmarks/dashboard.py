"""How long the dashboard takes to open a 10,000-entry ledger, against a bare read of it.

    python benchmarks/dashboard.py [--entries 10000] [--repeats 3]

Builds a ledger of `--entries` signed entries shaped like a busy deployment (updates proposed,
audited with evidence, approved, promoted or blocked; scheduled audits in between), then times:
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

from clgate.audit.bootstrap import bootstrap_ledger
from clgate.audit.journal import Journal
from clgate.dashboard import load_snapshot, open_view, read_view
from clgate.ledger import Ledger, load_private_key
from clgate.measurement import Measurement


def build(folder: Path, entries: int) -> tuple[Path, Path]:
    boot = bootstrap_ledger(folder)
    keys = {name: load_private_key(path) for name, path in boot.keys.items()}
    journals = {name: Journal.open(boot.ledger, keys[name], boot.trust) for name in ("pipeline", "approver")}
    pipeline, approver = journals["pipeline"], journals["approver"]
    n = 0
    while len(pipeline.ledger) < entries:
        digest = f"sha256:{n:064x}"
        uid = f"{n:016x}"
        proposal = {
            "update_id": uid,
            "kind": "adapter",
            "base": "sha256:" + "0" * 64,
            "artifacts": {"candidate": {"digest": digest, "uri": f"/models/a{n}"}},
        }
        pipeline.append("update.proposed", digest, proposal)
        evidence = pipeline.evidence.put(
            Measurement(
                name="weights",
                version="1",
                numbers={"max_relative_change": 0.01 * (n % 60)},
                details=[{"layer": i, "relative_change": 0.001 * i * (n % 7)} for i in range(24)],
            )
        )
        verdict = "block" if n % 10 == 9 else "promote"
        body = {
            "update_id": uid,
            "verdict": verdict,
            "findings": [],
            "measurements": {"weights": evidence},
            "policy": "bench",
            "approvals": {"required": 1, "approvers": []},
        }
        pipeline.append("audit.completed", digest, body)
        if verdict == "block":
            pipeline.append("promotion.blocked", digest, {"update_id": uid, "reason": "weight change"})
        else:
            approver.append("promotion.done", digest, {"update_id": uid, "slot": "adapter", "replaced": None})
        for _ in range(6):
            pipeline.append(
                "audit.scheduled_run",
                None,
                {"verdict": "promote", "deployed": [], "findings": [], "measurements": {}},
            )
        n += 1
    for j in journals.values():
        j.close()
    return boot.ledger, boot.trust


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
        ledger, trust = build(Path(tmp), args.entries)
        with Ledger.open(ledger) as opened:
            size = len(opened)
        print(f"built a {size}-entry ledger in {time.perf_counter() - start:.1f} s")

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
