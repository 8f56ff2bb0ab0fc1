"""The embedded SmolLM2-135M-Instruct's scores on every bundled suite, every item: README's baselines.

    python benchmarks/eval_baselines.py [--target demo/data/ticket_routing_eval.jsonl] [--threads 2]

Runs each bundled suite with `full=True` through inspect-ai (clgate's provider, no result cache, so
the seconds are real) and prints one markdown table: items, accuracy with its 95% Wilson interval,
the suite's secondary numbers and the seconds it took.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

from clgate.artifacts import embedded_model_dir
from clgate.evals import bundled_suites, run_suites
from clgate.package_data import package_file


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", type=Path, default=package_file("clgate.demo", "data", "ticket_routing_eval.jsonl")
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="items per suite (default: every item)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    suites = [s.name for s in bundled_suites()] + ["target"]
    with tempfile.TemporaryDirectory() as logs:
        start = time.perf_counter()
        run = run_suites(
            embedded_model_dir(),
            suites,
            full=args.limit is None,
            limit=args.limit,
            dataset=args.target,
            cache=False,
            log_dir=Path(logs),
        )
        total = time.perf_counter() - start
    print("| suite | items | accuracy (95% CI) | other numbers (means over items) | seconds |")
    print("|---|---|---|---|---|")
    for s in run.suites:
        numbers = s.numbers()
        acc, n = numbers[f"{s.suite}.accuracy"], int(numbers[f"{s.suite}.n"])
        low, high = wilson(acc, n)
        extra = ", ".join(
            f"{k.split('.', 1)[1]} {v:.3g}" for k, v in numbers.items() if not k.endswith((".accuracy", ".n"))
        )
        print(f"| `{s.suite}` | {n} | {acc:.3f} ({low:.2f}–{high:.2f}) | {extra or '—'} | {s.seconds:.0f} |")
    print(f"\nall suites, every item, one model: {total:.0f} s (model load and inspect start-up included)")


if __name__ == "__main__":
    main()
