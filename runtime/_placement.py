"""Device and dtype resolution: what `auto` means here, and which requests this machine cannot honour.

`auto` is CUDA when torch sees a GPU (bf16 where the GPU supports it, else fp16), and the CPU in
fp32 otherwise. On the CPU, fp16 is refused (torch runs few fp16 kernels there, slowly, and the
numbers drift); bf16 is allowed (torch has CPU kernels for it) but is slower than fp32 on most
CPUs and rounds like a GPU run, so it is for checking what a GPU run will see, not for speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clgate.errors import InputError
from clgate.runtime._spec import check_device, check_dtype


@dataclass(frozen=True)
class Placement:
    """A resolved device and dtype. `device` is `cpu`, `cuda` (any GPU: the one with most free memory,
    or all of them when one is not enough) or `cuda:N` (that GPU only)."""

    device: str
    dtype: str

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)

    @property
    def tag(self) -> str:
        """What a model's numbers depend on besides its bytes: keys caches of its outputs."""
        return f"{'cuda' if self.on_cuda else 'cpu'}-{self.dtype}"


def resolve_placement(device: str = "auto", dtype: str = "auto") -> Placement:
    """The concrete placement for a request, or an InputError saying in one line why it cannot be had."""
    import torch

    check_device(device)
    check_dtype(dtype)
    cuda = torch.cuda.is_available()
    if device == "auto":
        device = "cuda" if cuda else "cpu"
    if device.startswith("cuda"):
        if not cuda:
            raise InputError(
                f"device {device} asked for, but CUDA is not available (torch {torch.__version__})"
            )
        count = torch.cuda.device_count()
        if ":" in device and int(device.split(":")[1]) >= count:
            raise InputError(f"device {device} asked for, but only {count} CUDA device(s) are visible")
        bf16 = torch.cuda.is_bf16_supported()
        if dtype == "auto":
            dtype = "bfloat16" if bf16 else "float16"
        if dtype == "bfloat16" and not bf16:
            raise InputError(
                "dtype bfloat16 asked for, but this GPU has no bf16 support (use float16 or float32)"
            )
    else:
        if dtype == "auto":
            dtype = "float32"
        if dtype == "float16":
            raise InputError("dtype float16 is not supported on the CPU (use float32, or bfloat16)")
    return Placement(device, dtype)
