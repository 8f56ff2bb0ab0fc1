"""A full gate on the embedded SmolLM2-135M for a LoRA update: where the time goes, and a cached rerun.

    python benchmarks/gate.py [--eval-limit 24] [--threads 2]

The update is a random rank-4 LoRA on q/v (training is not part of a gate). The gate runs with the
default policy (eval suites cut to --eval-limit items each, as `clgate demo` cuts them; 0 = the policy's
full sizes) against a fresh ledger and a cold cache, then the same update is gated again with the
cache warm. Forward passes are timed by global torch module hooks around every outermost module
call (in whichever thread it runs), so the share is measured, not estimated:

    forward share = time inside model forward calls / wall time of the checks that run models

The rest of a model check's time is orchestration: tokenising, batching, inspect-ai bookkeeping,
statistics, greedy-decoding logic between forward calls.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from _timing import ForwardTimer

from clgate.artifacts import embedded_model_dir
from clgate.audit.gate import GateRequest, GateRun, propose, run_gate
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.journal import Journal
from clgate.audit.result import GateResult
from clgate.demo import bootstrap_ledger, demo_policy, make_tiny_lora
from clgate.ledger import load_private_key
from clgate.package_data import package_file

TARGET = package_file("clgate.demo", "data", "ticket_routing_eval.jsonl")


def gate_once(request: GateRequest, run: GateRun, boot, policy) -> tuple[GateResult, dict[str, float], float]:
    """One proposal and its gate; returns the result, the wall seconds of each stage and the forward-pass seconds."""
    marks: dict[str, float] = {}
    stages: dict[str, float] = defaultdict(float)

    def progress(name: str, what: str) -> None:
        now = time.perf_counter()
        if name.startswith("manifest:"):
            stages["manifests"] += now - marks.get("manifest", now)
            marks["manifest"] = now
        elif what == "running" and "manifest" in marks:
            stages["manifests"] += now - marks.pop("manifest")

    timer = ForwardTimer()
    start = time.perf_counter()
    marks["manifest"] = start
    try:
        with Journal.open(boot.ledger, load_private_key(boot.keys["gate"]), boot.trust) as journal:
            proposed = propose(
                request, journal.as_signer(load_private_key(boot.keys["pipeline"])), run, progress
            )
            update = proposed.proposal.update_id
            result = run_gate(update, policy, journal, run, request, proposed.manifests, progress)
    finally:
        timer.close()
    stages["total"] = time.perf_counter() - start
    return result, dict(stages), timer.seconds


def report(label: str, result: GateResult, stages: dict[str, float], forward_s: float) -> None:
    model_checks = {n for n, c in GATE_CHECKS.items() if c.forward_passes}
    print(f"\n{label}: decision {result.verdict.decision.value}, {stages['total']:.1f} s wall")
    for finding in result.verdict.blocking:  # what made it other than promote
        print(f"  {finding.status.value}: {finding.check} {finding.rule}: {finding.reason}")
    print(f"  {'stage':16s} {'seconds':>8s}  lane")
    print(f"  {'manifests':16s} {stages.get('manifests', 0.0):8.1f}  before the checks")
    for check in result.checks:
        lane = "models" if check.name in model_checks else "files"
        print(f"  {check.name:16s} {check.seconds:8.1f}  {lane}{' (cached)' if check.cached else ''}")
    model_s = sum(c.seconds for c in result.checks if c.name in model_checks)
    lanes_s = max(model_s, sum(c.seconds for c in result.checks if c.name not in model_checks))
    rest = stages["total"] - stages.get("manifests", 0.0) - lanes_s
    print(f"  {'ledger, reports':16s} {rest:8.1f}  after the checks (and check start-up)")
    if model_s > 0:
        print(
            f"  forward passes {forward_s:.1f} s = {forward_s / model_s:.0%} of the model checks' "
            f"{model_s:.1f} s ({forward_s / stages['total']:.0%} of the whole gate)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eval-limit", type=int, default=24, help="items per eval suite (0: full suites)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    policy = demo_policy(None, args.eval_limit or None)
    base = embedded_model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        boot = bootstrap_ledger(work / "ledger", policies=[policy])
        adapter = make_tiny_lora(base, work / "lora", rank=4, targets=("q_proj", "v_proj"))
        request = GateRequest(parent=base, adapter=adapter, target=TARGET)
        run = GateRun(out_dir=work / "report", cache_dir=work / "cache")
        cold = gate_once(request, run, boot, policy)
        report("cold cache", *cold)
        warm = gate_once(request, run, boot, policy)
        report("cached rerun (same artifacts proposed again, same cache)", *warm)
        print(f"\ncached rerun / cold gate: {warm[1]['total'] / cold[1]['total']:.3f} (goal: rerun < 5 s)")


if __name__ == "__main__":
    main()
