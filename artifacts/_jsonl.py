"""Streams JSONL records; a bad line is reported with its file and line number."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clgate.errors import InputError

MAX_LINE_BYTES = 1 << 20
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


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


def parse_json(raw: bytes | str, where: str) -> Any:
    """One JSON value from untrusted bytes; whatever is wrong with them is an InputError naming `where`."""
    if not isinstance(raw, bytes | str):
        raise InputError(f"{where}: expected JSON text, got {type(raw).__name__}")
    data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else raw
    try:
        obj = json.loads(data)
        if _SURROGATE_ESCAPE.search(data):  # a lone one decodes, then breaks every later encode
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{where}: a string holds a lone surrogate (not Unicode text)") from None
    # JSON and UTF-8 errors, 5,000-digit numbers, deep nests
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{where}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    return obj


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    from clgate.atomic import write_text_atomic

    return write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
