"""`ModelSpec`: which model a check asks for (path, adapter) and where it should run (device, dtype)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from clgate.errors import InputError

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
DTYPES = ("auto", "float32", "bfloat16", "float16")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(device: str) -> str:
    """`device` if it is one clgate knows how to place a model on (whether it exists here is checked later)."""
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise InputError(f"unknown device {device!r} (one of {', '.join(DEVICES)})")
    return device


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r} (one of {', '.join(DTYPES)})")
    return dtype


@dataclass(frozen=True)
class ModelSpec:
    """A model as a check runs it: a model directory or .gguf file, an optional LoRA merged into it,
    and the device and dtype asked for (`auto`: CUDA in bf16 when present, else the CPU in fp32)."""

    path: Path
    adapter: Path | None = None
    device: str = "auto"
    dtype: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.adapter is not None:
            object.__setattr__(self, "adapter", Path(self.adapter))
        check_device(self.device)
        check_dtype(self.dtype)
