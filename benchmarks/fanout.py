"""Re-audits of a fleet after a base upgrade: one process, one after another, against Ray.

    python benchmarks/fanout.py [--tenants 8] [--hidden 512] [--layers 8]

A ledger with TENANTS deployments, each running its own LoRA adapter on base v1 (Llama-shaped models
with random weights: the tests' tokenizer, HIDDEN and LAYERS), is upgraded to base v2 in every deployment: TENANTS
stale adapters. The same ledger (copied) is then re-audited three ways, each gate running every
check with the tests' fan-out policy:
  sequential   `clgate audit pending --run --workers 0`: one process, one job after another
  ray, 1       a Ray head started with `ray start --num-cpus 2`, each task asking for both CPUs: the
               same jobs as Ray tasks, one at a time, each with two threads as in the sequential run
  ray, 2       the same head, each task asking for one CPU: two jobs at a time, one thread each
Each is the CLI in a fresh process, as a team runs it (so each pays its imports once: the sequential run
in its own process, the Ray runs in Ray's worker). The clusters are started before the clock starts, as a
team's cluster would be running already; each run starts with empty caches (its own `CLGATE_CACHE`), so
every gate computes every check.
Prints the wall time of each, the ratio sequential / (ray, 2 at a time), and the per-job overhead Ray adds:
(ray, 1 at a time − sequential) / TENANTS, also as a share of one gate's time (goal ≤ 5%). That overhead
is mostly a fixed cost of the run (the driver joining the cluster, the worker's start and imports: 9.5 s
at 4 tenants, 9.3 s at 8), so its share falls as the fleet grows; 8 tenants, the default, is a small
fleet. (Ray gives a task as many threads as CPUs it asked for: a one-CPU task computes on one core, half
as fast.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clgate.audit import GateRequest, GateRun, Journal, promote, propose, run_gate
from clgate.audit.policy import parse_policy
from clgate.demo import bootstrap_ledger, make_tiny_lora, make_tiny_model
from clgate.ledger import load_private_key

RAY = str(Path(sys.executable).parent / "ray")  # the CLI of the ray package installed beside this Python
POLICY = (Path(__file__).parents[1] / "docs" / "examples" / "fleet-policy.toml").read_text()


def build_fleet(root: Path, tenants: int, hidden: int, layers: int) -> Path:
    shape = {"hidden_size": hidden, "layers": layers, "intermediate_size": 4 * hidden}
    v1, v2 = make_tiny_model(root / "v1", seed=0, **shape), make_tiny_model(root / "v2", seed=1, **shape)
    os.environ["CLGATE_CACHE"] = str(root / "setup-cache")
    policy = parse_policy(POLICY)
    boot = bootstrap_ledger(root / "fleet" / "ledger", policies=[policy])
    (root / "fleet" / "policy.toml").write_text(POLICY)
    keys = {name: load_private_key(boot.keys[name]) for name in ("gate", "pipeline", "approver")}
    run = GateRun(out_dir=root / "setup", device="cpu")

    def gate_and_promote(request: GateRequest) -> None:
        with Journal.open(boot.ledger, keys["gate"], boot.trust) as journal:
            proposed = propose(request, journal.as_signer(keys["pipeline"]), run)
            run_gate(proposed.proposal.update_id, policy, journal, run, request, proposed.manifests)
            promote(journal.as_signer(keys["approver"]), proposed.proposal.update_id)

    for n in range(tenants):
        deployment = f"tenant-{n}"
        gate_and_promote(GateRequest(parent=v1, candidate=v1, deployment=deployment))
        lora = make_tiny_lora(v1, root / f"lora-{n}", seed=n)
        gate_and_promote(GateRequest(parent=v1, adapter=lora, deployment=deployment))
        gate_and_promote(GateRequest(parent=v1, candidate=v2, deployment=deployment))
    return root / "fleet"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reaudit(
    fleet: Path, copy: Path, ray_address: str | None, cpus_per_job: int = 1
) -> tuple[float, list[float]]:
    """`clgate audit pending --run` on a copy of the fleet, as a team runs it: a fresh process each time,
    so the sequential run and the Ray run each pay their imports once (here, or in Ray's worker)."""
    shutil.copytree(fleet, copy)
    ledger = copy / "ledger"
    env = {
        **os.environ,
        "CLGATE_STATE_DIR": str(copy / "heads"),  # each copy is its own history to its verifier
        "CLGATE_CACHE": str(copy / "cache"),  # and starts with no eval answers cached
    }
    where = (
        ["--workers", "0"]
        if ray_address is None
        else ["--ray", ray_address, "--cpus-per-job", str(cpus_per_job)]
    )
    command = [sys.executable, "-m", "clgate", "audit", "pending", "--run", "--ledger", str(ledger / "ledger.db"),
               "--trust", str(ledger / "trust.toml"), "--proposer-key", str(ledger / "keys" / "pipeline.pem"),
               "--gate-key", str(ledger / "keys" / "gate.pem"), "--out", str(copy / "reports"),
               "--policy", str(copy / "policy.toml"), "--device", "cpu", *where]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 10, 20):
        raise SystemExit(f"re-audit failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    reports = sorted((copy / "reports").rglob("report.json"))
    return wall, [json.loads(r.read_text())["seconds"] for r in reports]


def ray_head(cpus: int) -> str:
    port = free_port()
    subprocess.run([RAY, "start", "--head", f"--num-cpus={cpus}", f"--port={port}", "--node-ip-address=127.0.0.1",
                    "--include-dashboard=false", "--disable-usage-stats"], check=True, capture_output=True)  # fmt: skip
    return f"127.0.0.1:{port}"


def main() -> None:
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a private head on the loopback, stopped at the end
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=512, help="Llama-shaped random model: hidden size")
    parser.add_argument("--layers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        fleet = build_fleet(root, args.tenants, args.hidden, args.layers)
        print(
            f"fleet of {args.tenants} deployments built and upgraded in {time.perf_counter() - start:.0f} s"
        )
        sequential, gates = reaudit(fleet, root / "sequential", None)
        print(
            f"sequential  {sequential:7.1f} s  ({args.tenants} gates, {sum(gates) / len(gates):.1f} s each)"
        )
        walls = {}
        address = ray_head(2)
        try:  # both cores per job (two threads, as the sequential run), then one each (two jobs at a time)
            for cpus_per_job in (2, 1):
                walls[cpus_per_job], _ = reaudit(fleet, root / f"ray{cpus_per_job}", address, cpus_per_job)
                at_a_time = 2 // cpus_per_job
                print(f"ray, {at_a_time} at a time  {walls[cpus_per_job]:7.1f} s")
        finally:
            subprocess.run([RAY, "stop", "--force"], check=False, capture_output=True)
        per_job = (walls[2] - sequential) / args.tenants
        gate = sequential / args.tenants
        print(f"sequential / ray 2 at a time = {sequential / walls[1]:.2f}x on 2 cores")
        print(
            f"Ray's overhead per job: {per_job:+.2f} s = {100 * per_job / gate:+.1f}% of a {gate:.1f} s gate (goal <= 5%)"
        )


if __name__ == "__main__":
    main()
