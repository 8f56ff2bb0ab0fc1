"""Hashes a file's bytes and its tensors' byte ranges in one pass over a memory map.

The whole-file digest runs on the calling thread while the per-tensor digests run on a second
one; hashlib releases the GIL on large buffers, so both cores work and every byte is read
from the page cache once per digest, never copied into Python objects.
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHUNK = 32 * 1024 * 1024
Progress = Callable[[int], None]


def _digest_ranges(
    view: memoryview, ranges: Sequence[tuple[int, int]], progress: Progress | None
) -> list[str]:
    digests = []
    for start, end in ranges:
        h = hashlib.sha256()
        for offset in range(start, end, CHUNK):
            stop = min(offset + CHUNK, end)
            h.update(view[offset:stop])
            if progress is not None:
                progress(stop - offset)
        digests.append(h.hexdigest())
    return digests


def hash_file(
    path: Path, ranges: Sequence[tuple[int, int]] = (), progress: Progress | None = None
) -> tuple[str, list[str]]:
    """Return the file's SHA-256 and the SHA-256 of each [start, end) byte range."""
    size = Path(path).stat().st_size
    if size == 0:
        empty = hashlib.sha256().hexdigest()
        return empty, [empty for _ in ranges]
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            if not ranges:
                return _digest_ranges(view, [(0, size)], progress)[0], []
            with ThreadPoolExecutor(max_workers=1) as pool:
                parts = pool.submit(_digest_ranges, view, ranges, None)
                whole = _digest_ranges(view, [(0, size)], progress)[0]
                return whole, parts.result()
        finally:
            view.release()
