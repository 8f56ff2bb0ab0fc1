"""Math threads per test worker: why `make test` runs its two pytest workers with OMP_NUM_THREADS=1.

    python benchmarks/worker_threads.py [--passes 10]

Each configuration starts fresh processes that load the embedded SmolLM2 through the runtime layer and
time `--passes` forward passes of one 8×128-token batch (the work a test worker's model checks do):
one process alone with 2 threads and with 1, then two processes at once (as `make test`'s two workers on
this machine's cores) with 2 threads each and with 1 each. Prints each one's seconds and the ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def child(passes: int) -> None:
    import torch

    from clgate.artifacts import embedded_model_dir
    from clgate.runtime import load_model

    module = load_model(embedded_model_dir(), device="cpu", dtype="float32").module
    batch = torch.randint(0, 1000, (8, 128), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        module(batch)  # warm-up
        start = time.perf_counter()
        for _ in range(passes):
            module(batch)
    print(f"{time.perf_counter() - start:.2f}")


def run(threads: int, processes: int, passes: int) -> float:
    """The slowest of `processes` started at once, each with `threads` math threads: seconds for its passes."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", "--passes", str(passes)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(processes)
    ]
    return max(float(p.communicate()[0].strip().splitlines()[-1]) for p in started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.passes)
        return
    print(
        f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, {args.passes} passes of 8x128 tokens"
    )
    alone2, alone1 = run(2, 1, args.passes), run(1, 1, args.passes)
    pair2, pair1 = run(2, 2, args.passes), run(1, 2, args.passes)
    print(f"one process,  2 threads  {alone2:6.1f} s")
    print(f"one process,  1 thread   {alone1:6.1f} s")
    print(f"two at once,  2 threads  {pair2:6.1f} s  ratio to one process on 1 thread {pair2 / alone1:.2f}x")
    print(f"two at once,  1 thread   {pair1:6.1f} s  ratio to one process on 1 thread {pair1 / alone1:.2f}x")
    print(f"two workers' passes, 2 threads each against 1 each: {pair2 / pair1:.2f}x the time")


if __name__ == "__main__":
    main()
