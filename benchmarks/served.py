"""The gate's model checks through a real server against the local runtime, on the same LoRA update.

    python benchmarks/served.py [--limit 8] [--probes 3] [--triggers 2] [--concurrency 8]

The embedded SmolLM2-135M (dequantised to float32) and a random rank-8 LoRA on q/k/v/o, served by
llama-cpp-python on 127.0.0.1 (base and adapter on one server, as vLLM serves them), and the same
files run by clgate's local runtime. Both gates run evals (retention, refusal, sycophancy, cut to
--limit items each) and the trigger sweep (--triggers list triggers on --probes prompts, plus the
sweep's controls) under one policy, against fresh ledgers and cold caches. Printed, from this run:

    ratio          = served gate seconds / local gate seconds        (goal ≤ 1.3)
    requests/s     = requests the server answered / served gate seconds
    waiting share  = wall time with a request in flight / served gate seconds   (goal ≥ 90%)

Both share the machine's cores with the server, as they would on one box.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from clgate.artifacts import embedded_gguf_path, embedded_model_dir
from clgate.artifacts.llama_cpp import LlamaServer, dequantized_gguf, lora_gguf
from clgate.audit import GateRequest, GateRun, Journal, propose, run_gate
from clgate.audit.policy import parse_policy
from clgate.demo import bootstrap_ledger, make_tiny_lora
from clgate.ledger import load_private_key
from clgate.probes.poison.sweep import sweep_prompts, sweep_triggers
from clgate.runtime import ServedPair

POLICY = """
name = "bench-served"
required_checks = ["evals", "poison.model"]

[checks.evals]
options = {{ suites = ["retention", "refusal", "sycophancy"], limit = {limit} }}

[checks."poison.model"]
options = {{ triggers = {triggers}, prompts = {prompts} }}
"""


def gate(root: Path, name: str, request: GateRequest, policy_text: str) -> tuple[float, object]:
    policy = parse_policy(policy_text)
    boot = bootstrap_ledger(root / name, policies=[policy])
    run = GateRun(out_dir=root / f"{name}-out", device="cpu")
    with Journal.open(boot.ledger, load_private_key(boot.keys["gate"]), boot.trust) as journal:
        proposed = propose(request, journal.as_signer(load_private_key(boot.keys["pipeline"])), run)
        start = time.perf_counter()
        result = run_gate(proposed.proposal.update_id, policy, journal, run, request, proposed.manifests)
        return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--probes", type=int, default=3)
    parser.add_argument("--triggers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    policy = POLICY.format(
        limit=args.limit,
        triggers=sweep_triggers()[: args.triggers],
        prompts=sweep_prompts()[: args.probes],
    ).replace("'", '"')
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        parent = embedded_model_dir()
        adapter = make_tiny_lora(parent, root / "lora", seed=3, rank=8, alpha=16,
                                 targets=("q_proj", "k_proj", "v_proj", "o_proj"))  # fmt: skip
        base = dequantized_gguf(embedded_gguf_path(), root / "base-f32.gguf")
        lora = lora_gguf(adapter, base, root / "lora.gguf")
        local_s, local = gate(root, "local", GateRequest(parent=parent, adapter=adapter), policy)
        models = {"smollm2": (base, None), "smollm2-lora": (base, lora)}
        with LlamaServer(models, root) as server:
            pair = ServedPair.of(f"{server.url}#smollm2", f"{server.url}#smollm2-lora", args.concurrency)
            request = GateRequest(parent=parent, adapter=adapter, served=pair)
            served_s, served = gate(root, "served", request, policy)
    requests, busy = served.served_requests, served.served_waiting_s
    print(
        f"local gate  {local_s:7.1f} s  decision {local.verdict.decision.value}, model loads {local.model_loads}"
    )
    print(
        f"served gate {served_s:7.1f} s  decision {served.verdict.decision.value}, model loads {served.model_loads}"
    )
    print(f"ratio served/local: {served_s / local_s:.2f}x (goal <= 1.3)")
    print(f"server: {requests} requests, {requests / served_s:.1f} requests/s")
    print(f"waiting on the server: {busy / served_s:.0%} of the served gate's wall time (goal >= 90%)")


if __name__ == "__main__":
    main()
