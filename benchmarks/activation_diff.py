"""Activation diff wall time on the embedded SmolLM2-135M with the bundled probe prompts.

    python benchmarks/activation_diff.py [--threads 2]

Parent: SmolLM2-135M-Instruct; candidate: the parent under a rank-8 LoRA adapter (q_proj, v_proj).
Timed from a cold activation cache, end to end as `clgate diff activations` runs it: both manifests,
both model loads, both forward passes over the 96 prompts, the logit lens at every layer. Then once
more with the cache warm. Goal: under 60 s on 2 CPU cores. On a shared machine wall time depends on
the load average printed beside it; `--threads 1` gives a bound that does not (one core is never
faster than two).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from clgate.artifacts import embedded_model_dir
from clgate.demo import factories
from clgate.probes import activation_diff


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    parent = embedded_model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        adapter = factories.make_tiny_lora(parent, Path(tmp) / "adapter", rank=8, alpha=16)
        cache = Path(tmp) / "cache"
        load_before = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), cpu_seconds()
        m = activation_diff(parent, parent, candidate_adapter=adapter, cache_dir=cache)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        warm = time.perf_counter()
        activation_diff(parent, parent, candidate_adapter=adapter, cache_dir=cache)
        warm = time.perf_counter() - warm
    fwd = m.meta["forward_seconds"]
    print(
        f"SmolLM2-135M vs SmolLM2 + rank-8 LoRA, {int(m.numbers['activations.prompts'])} prompts, 30 layers"
    )
    print(
        f"  torch threads {args.threads}, cpus {os.cpu_count()}, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    print(f"  cold cache   {wall:6.1f} s wall  ({cpu:.1f} s CPU)  (goal < 60 s on 2 cores)")
    print(f"    forward passes: parent {fwd['parent']:.1f} s, candidate {fwd['candidate']:.1f} s")
    print(f"  warm cache   {warm:6.1f} s wall  (loads both models for the logit lens, runs no forward pass)")


if __name__ == "__main__":
    main()
