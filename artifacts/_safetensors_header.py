"""Reads and validates a safetensors header without touching tensor data.

The format is an 8-byte little-endian header length, a JSON header mapping tensor names to
dtype, shape and [begin, end) byte offsets into the data section, then the data. Validating
offsets against the file size is what catches a truncated file before anything loads it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from clgate.errors import InputError
from clgate.json_input import parse_json

_MAX_HEADER = 100 * 1024 * 1024
_DTYPE_SIZES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


@dataclass(frozen=True)
class TensorSpan:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute offset in the file
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    path: Path
    data_start: int
    tensors: tuple[TensorSpan, ...]
    metadata: dict[str, str]


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw_len = fh.read(8)
        if len(raw_len) < 8:
            raise InputError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        (header_len,) = struct.unpack("<Q", raw_len)
        if header_len > _MAX_HEADER or 8 + header_len > size:
            raise InputError(f"{path}: corrupt or truncated safetensors file (header length {header_len})")
        try:
            header = parse_json(fh.read(header_len), f"{path}: its header")
        except InputError:
            raise InputError(f"{path}: corrupt safetensors header (not JSON)") from None
    if not isinstance(header, dict):
        raise InputError(f"{path}: corrupt safetensors header (not a JSON object)")
    data_start = 8 + header_len
    metadata = header.pop("__metadata__", None) or {}
    spans = []
    data_end = 0
    for name, spec in header.items():
        try:
            dtype, shape, (begin, end) = (
                spec["dtype"],
                tuple(int(d) for d in spec["shape"]),
                spec["data_offsets"],
            )
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: corrupt safetensors header entry for tensor {name!r}") from None
        count = 1
        for d in shape:
            count *= d
        if dtype not in _DTYPE_SIZES or end - begin != count * _DTYPE_SIZES[dtype] or begin < 0:
            raise InputError(f"{path}: tensor {name!r} has inconsistent dtype, shape and offsets")
        spans.append(TensorSpan(name, dtype, shape, data_start + begin, data_start + end))
        data_end = max(data_end, end)
    if data_start + data_end != size:
        raise InputError(
            f"{path}: truncated or corrupt safetensors file "
            f"(header expects {data_start + data_end} bytes, file has {size})"
        )
    spans.sort(key=lambda s: s.start)
    return SafetensorsHeader(path, data_start, tuple(spans), dict(metadata))
