"""Streams JSONL records; a bad line is reported with its file and line number."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clgate.errors import InputError
from clgate.json_input import parse_json

MAX_LINE_BYTES = 1 << 20


def iter_jsonl(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; never holds the whole file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if len(raw) > max_line_bytes:
                raise InputError(f"{path}:{lineno}: line longer than {max_line_bytes} bytes")
            if not raw.strip():
                continue
            obj = parse_json(raw, f"{path}:{lineno}")
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    from clgate.atomic import write_text_atomic

    return write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
