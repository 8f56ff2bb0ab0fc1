"""Will the model fit? Its weight bytes in the target dtype (from safetensors headers) against free memory.

Checked before anything loads, so a model too large for the machine is a one-line error rather than
an out-of-memory crash halfway through a gate. On CUDA a model goes on the GPU with the most free
memory; when no single GPU holds it, accelerate spreads it over all of them (`device_map="auto"`).
A tenth of each device is left for activations and KV caches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clgate.artifacts import model_weight_files, read_safetensors_header
from clgate.errors import InputError
from clgate.runtime._placement import Placement

HEADROOM = 0.9
"""Share of a device's free memory the weights may take."""
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}
_ITEMSIZE = {"float32": 4, "bfloat16": 2, "float16": 2}
_GIB = 1024**3


@dataclass(frozen=True)
class LoadPlan:
    """How `from_pretrained` places one model: `device_map` (None: the CPU), the per-GPU budget when
    it is spread, and the bytes its weights take."""

    device_map: Any
    weights_bytes: int
    max_memory: dict[int, int] | None = None


def weights_bytes(model_dir: Path, dtype: str) -> int:
    """Bytes of the model's weights once loaded in `dtype` (floating tensors are cast, others kept)."""
    total = 0
    for path in model_weight_files(model_dir):
        for span in read_safetensors_header(path).tensors:
            if span.dtype in _FLOAT_DTYPES:
                total += math.prod(span.shape) * _ITEMSIZE[dtype]
            else:
                total += span.end - span.start
    return total


def free_bytes(device: str) -> int:
    """Memory free for new tensors on `cpu` (available RAM) or `cuda:N`."""
    if device == "cpu":
        import psutil

        return int(psutil.virtual_memory().available)
    import torch

    free, _ = torch.cuda.mem_get_info(int(device.split(":")[1]))
    return int(free)


def _gib(n: float) -> str:
    return f"{n / _GIB:.1f} GiB"


def plan_load(model_dir: Path, placement: Placement, reclaimable: int = 0) -> LoadPlan:
    """Where the model goes, or an InputError when it does not fit even spread over every GPU.

    `reclaimable`: bytes that models already loaded could give back (counted as free on the CPU,
    and over all GPUs together), for checking a model up front before those are released.
    """
    need = weights_bytes(model_dir, placement.dtype)
    what = f"{model_dir}: does not fit: {_gib(need)} of weights in {placement.dtype}"
    if not placement.on_cuda:
        free = free_bytes("cpu") + reclaimable
        if need > HEADROOM * free:
            raise InputError(f"{what}, {_gib(free)} of RAM available")
        return LoadPlan(None, need)
    if placement.device != "cuda":  # one GPU, by name
        free = free_bytes(placement.device) + reclaimable
        if need > HEADROOM * free:
            raise InputError(f"{what}, {_gib(free)} free on {placement.device} (--device cuda spreads it)")
        return LoadPlan({"": placement.device}, need)
    import torch

    free = {i: free_bytes(f"cuda:{i}") for i in range(torch.cuda.device_count())}
    best = max(free, key=free.__getitem__)
    if need <= HEADROOM * free[best]:
        return LoadPlan({"": f"cuda:{best}"}, need)
    if need <= HEADROOM * (sum(free.values()) + reclaimable):
        budget = {i: int(HEADROOM * f) for i, f in free.items()}
        return LoadPlan("auto", need, budget)
    raise InputError(f"{what}, {_gib(sum(free.values()))} free on {len(free)} GPU(s) together")
