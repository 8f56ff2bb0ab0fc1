"""JSON from untrusted bytes (a JSONL line, a database column, a `--body-file`): every way it can be wrong is
one InputError naming where it came from, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from clgate.errors import InputError

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


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


def read_json(path: Path) -> Any:
    """The JSON value in the file at `path`; unreadable, not UTF-8 or not JSON is an InputError naming it."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    return parse_json(raw, str(path))
