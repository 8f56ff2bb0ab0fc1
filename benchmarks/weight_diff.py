"""Weight diff throughput against reading + SHA-256 hashing both checkpoints, and LoRA analysis time.

    python benchmarks/weight_diff.py [--fraction 0.1] [--repeats 3] [--threads 2]

The parent is the embedded SmolLM2-135M (safetensors cache); the candidate is a copy in which a
`--fraction` of the tensors (chosen with a fixed seed) carry small random changes. Every file is
read once first, so all contenders work from the page cache. In one run:
  baseline   read and SHA-256 both checkpoints, one pass per file (hashlib over a memory map)
  diff       clgate.probes.weight_diff, manifests computed inside (what `clgate diff weights` does)
  diff/gate  the same with both manifests passed in (the gate has them already)
The ratio is baseline time / diff time (goal >= 0.5). Then a rank-16 LoRA adapter on every linear
layer of SmolLM2 (q, k, v, o, gate, up, down: 210 modules) is analysed from its factors (goal < 2 s),
with the base manifest passed in as the gate does, and once more with the base hashed inside.
On a machine shared with other work, torch's thread pool spins against the other load; `--threads 1`
then gives the steadier (and, on two free cores, pessimistic) figure.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from clgate.artifacts import artifact_files, compute_manifest, embedded_model_dir
from clgate.demo import factories
from clgate.probes import lora_diff, weight_diff

LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def read_and_hash(*paths: Path) -> None:
    for path in paths:
        for f in artifact_files(path):
            with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                hashlib.sha256(mm).hexdigest()


def edited_candidate(parent: Path, target: Path, fraction: float, seed: int = 0) -> list[str]:
    shutil.copytree(parent, target, ignore=shutil.ignore_patterns("*.safetensors"))
    tensors = load_file(str(parent / "model.safetensors"))
    names = sorted(tensors)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(names, size=max(1, round(fraction * len(names))), replace=False).tolist())
    g = torch.Generator().manual_seed(seed)
    for name in chosen:
        t = tensors[name]
        tensors[name] = t + 1e-3 * t.float().std() * torch.randn(t.shape, generator=g, dtype=t.dtype)
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    return chosen


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    parent = embedded_model_dir()
    print(
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, cpus {os.cpu_count()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "candidate"
        chosen = edited_candidate(parent, candidate, args.fraction)
        size = sum(f.stat().st_size for p in (parent, candidate) for f in artifact_files(p))
        kinds = sorted({n.split(".")[-2] for n in chosen})
        print(f"\nSmolLM2-135M vs a copy with {len(chosen)} of 272 tensors changed ({', '.join(kinds)})")
        print(f"  {size / 1e6:,.0f} MB in both checkpoints")
        read_and_hash(parent, candidate)  # page cache warm-up
        base_t, _ = best_of(lambda: read_and_hash(parent, candidate), args.repeats)
        diff_t, m = best_of(lambda: weight_diff(parent, candidate), args.repeats)
        pm, cm = compute_manifest(parent), compute_manifest(candidate)
        gate_t, _ = best_of(
            lambda: weight_diff(parent, candidate, parent_manifest=pm, candidate_manifest=cm), args.repeats
        )
        assert sorted(r["tensor"] for r in m.details) == chosen
        print(f"  baseline read + sha256    {base_t:6.2f} s  ({size / 1e9 / base_t:.2f} GB/s)")
        print(f"  weight diff               {diff_t:6.2f} s  (manifests computed inside)")
        print(f"  weight diff, gate         {gate_t:6.2f} s  (manifests passed in)")
        print(f"  ratio baseline / diff      = {base_t / diff_t:.2f}x  (goal >= 0.5)")
        print(f"  ratio baseline / diff,gate = {base_t / gate_t:.2f}x")

        adapter = factories.make_tiny_lora(parent, Path(tmp) / "adapter", rank=16, alpha=32, targets=LINEAR)
        am = compute_manifest(adapter)
        lora_t, lm = best_of(
            lambda: lora_diff(parent, adapter, base_manifest=pm, adapter_manifest=am), args.repeats
        )
        lora_all_t, _ = best_of(lambda: lora_diff(parent, adapter), args.repeats)
        print(
            f"\nrank-16 LoRA on every linear layer of SmolLM2 ({int(lm.numbers['weights.tensors_changed'])} modules)"
        )
        print(f"  LoRA analysis             {lora_t:6.2f} s  (goal < 2 s; manifests passed in)")
        print(f"  LoRA analysis + hashing   {lora_all_t:6.2f} s  (base and adapter hashed inside)")


if __name__ == "__main__":
    main()
