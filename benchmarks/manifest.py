"""Manifest throughput against bare SHA-256 and against model_signing, measured in one run.

    python benchmarks/manifest.py [--synthetic-gb 2] [--repeats 3]

For each checkpoint (the embedded SmolLM2 safetensors cache, and a synthetic checkpoint of
many tensors) the files are first read once so all four contenders hash from page cache:
  bare              hashlib.sha256 over every file, one pass (OpenSSL; the floor for one digest)
  clgate complete   compute_manifest: file digests + per-tensor digests, two threads per file
  clgate file-only  compute_manifest(tensors=False): file digests only, files spread over the cores
  model_signing     model_signing.hashing with its default per-file SHA-256 serialisation
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from safetensors.numpy import save_file

from clgate.artifacts import Manifest, artifact_files, compute_manifest, embedded_model_dir

T = TypeVar("T")


def bare_sha256(path: Path) -> None:
    for f in artifact_files(path):
        with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            hashlib.sha256(mm).hexdigest()


def model_signing_hash(path: Path) -> None:
    import model_signing.hashing

    model_signing.hashing.Config().use_file_serialization(hashing_algorithm="sha256").hash(path)


def synthetic_checkpoint(root: Path, gigabytes: float) -> Path:
    """Shards of 512 MB holding 16 MB float32 tensors with distinct contents."""
    root.mkdir(parents=True, exist_ok=True)
    tensor_elems = 4 * 1024 * 1024
    per_shard, total = 32, int(gigabytes * 1024**3) // (tensor_elems * 4)
    base = np.arange(tensor_elems, dtype=np.float32)
    for shard in range(0, total, per_shard):
        tensors = {f"layer.{i}.weight": base + i for i in range(shard, min(shard + per_shard, total))}
        save_file(tensors, str(root / f"model-{shard // per_shard:05d}.safetensors"))
    (root / "config.json").write_text('{"model_type": "synthetic"}')
    return root


def best_of(fn: Callable[[Path], T], path: Path, repeats: int) -> tuple[float, T]:
    """Fastest of `repeats` runs, and what the last run returned."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(path)
        times.append(time.perf_counter() - start)
    return min(times), result


def file_only_manifest(path: Path) -> Manifest:
    return compute_manifest(path, tensors=False)


def measure(name: str, path: Path, repeats: int) -> None:
    size = sum(f.stat().st_size for f in artifact_files(path))
    bare_sha256(path)  # page cache warm-up
    bare, _ = best_of(bare_sha256, path, repeats)
    complete, manifest = best_of(compute_manifest, path, repeats)
    file_only, files = best_of(file_only_manifest, path, repeats)
    if files.root != manifest.root:
        raise SystemExit(f"{name}: file-only root {files.root} differs from {manifest.root}")
    theirs, _ = best_of(model_signing_hash, path, repeats)
    gbps = size / 1e9
    print(f"\n{name}: {size / 1e6:,.0f} MB in {len(manifest.files)} files")
    print(f"  bare sha256        {gbps / bare:6.2f} GB/s")
    print(
        f"  clgate complete    {gbps / complete:6.2f} GB/s   (per-file + {len(manifest.tensor_digests())} per-tensor digests)"
    )
    print(f"  clgate file-only   {gbps / file_only:6.2f} GB/s   (per-file digests, same root)")
    print(f"  model_signing      {gbps / theirs:6.2f} GB/s")
    print(f"  ratio clgate complete  / bare sha256    = {bare / complete:.2f}x  (goal >= 0.9)")
    print(
        f"  ratio clgate complete  / model_signing  = {theirs / complete:.2f}x  (two digests per byte to their one)"
    )
    print(f"  ratio clgate file-only / model_signing  = {theirs / file_only:.2f}x  (goal >= 1.0)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synthetic-gb", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    measure("embedded SmolLM2-135M (safetensors cache)", embedded_model_dir(), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = synthetic_checkpoint(Path(tmp) / "synthetic", args.synthetic_gb)
        measure(f"synthetic {args.synthetic_gb:g} GB checkpoint", ckpt, args.repeats)


if __name__ == "__main__":
    main()
