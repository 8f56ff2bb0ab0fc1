"""What the gate benchmarks measure besides wall time: seconds inside forward passes, peak memory."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import torch


class ForwardTimer:
    """Seconds spent inside outermost `nn.Module` calls, per thread, via torch's global hooks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handles = [
            torch.nn.modules.module.register_module_forward_pre_hook(self._enter),
            torch.nn.modules.module.register_module_forward_hook(self._leave),
        ]

    def _enter(self, module, args) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.start = time.perf_counter()
        self._local.depth = depth + 1

    def _leave(self, module, args, output) -> None:
        self._local.depth -= 1
        if self._local.depth == 0:
            with self._lock:
                self.seconds += time.perf_counter() - self._local.start

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


class PeakMemory:
    """Peak resident host memory (Linux VmHWM, reset at start) and peak CUDA memory of one phase."""

    def __init__(self) -> None:
        _clear_refs()
        self.start_bytes = _status_kib("VmRSS") * 1024
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    @property
    def host_bytes(self) -> int:
        return _status_kib("VmHWM") * 1024

    @property
    def device_bytes(self) -> int:
        if not torch.cuda.is_available():
            return 0
        return sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))


def _clear_refs() -> None:
    """Reset the kernel's peak-RSS mark for this process (Linux 4.0+: write 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M)[1])
