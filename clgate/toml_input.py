"""TOML from untrusted files (trust files, policies, users): every way it can be wrong is one InputError naming
where it came from, never a traceback."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from clgate.errors import InputError


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """One TOML document; a syntax error, or nesting too deep to parse, is an InputError naming `where`."""
    try:
        return tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, and an integer of 5,000 digits
        raise InputError(f"{where}: not valid TOML ({exc})") from None


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of the file at `path` (a `what`, for the error when there is none)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a {what}")
    if not path.is_file():
        raise InputError(f"{path}: no such {what}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML document in the file at `path`."""
    return parse_toml(read_text(path, what), str(path))
