"""Long-term memory stores of a deployed model: JSONL files or SQLite tables of entries."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clgate.artifacts._jsonl import iter_jsonl, write_jsonl
from clgate.atomic import atomic_path
from clgate.errors import InputError
from clgate.json_input import parse_json

_SQLITE_SUFFIXES = {".sqlite", ".sqlite3", ".db"}
_COLUMNS = ("id", "text", "metadata", "source", "created_at", "embedding", "scope", "expires_at")
_LATER_COLUMNS = ("scope", "expires_at")
"""Columns added later: a store written before them has none, and its entries are persistent, never expiring."""


class MemoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None
    created_at: datetime | None = None
    embedding: tuple[float, ...] | None = None
    scope: Literal["persistent", "session"] = "persistent"
    """`session`: a note kept for one conversation; `persistent`: long-term memory, retrieved in every one."""
    expires_at: datetime | None = None

    @field_validator("created_at", "expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is UTC: a store mixing both would otherwise make them incomparable."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    def record(self) -> dict[str, Any]:
        """The entry as stored: scope and expiry only when set, so stores written before they existed
        keep their bytes (and digests), unless a time in them had no zone: it is written as UTC."""
        out = self.model_dump(mode="json")
        if self.scope == "persistent":
            del out["scope"]
        if self.expires_at is None:
            del out["expires_at"]
        return out


class MemoryStore(BaseModel):
    """A snapshot of one memory store; ids are unique."""

    model_config = ConfigDict(frozen=True)

    path: str
    entries: tuple[MemoryEntry, ...]

    def by_id(self) -> dict[str, MemoryEntry]:
        return {e.id: e for e in self.entries}


def _entry(obj: dict[str, Any], where: str) -> MemoryEntry:
    try:
        return MemoryEntry.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "entry"
        raise InputError(f"{where}: memory entry field {field!r}: {err['msg']}") from None


def _from_sqlite(path: Path) -> list[tuple[str, MemoryEntry]]:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            present = {row[1] for row in con.execute("PRAGMA table_info(memory)")}
            columns = [c for c in _COLUMNS if c in present or c not in _LATER_COLUMNS]
            rows = con.execute(f"SELECT {', '.join(columns)} FROM memory ORDER BY rowid").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: not a memory store ({exc})") from None
    out = []
    for n, row in enumerate(rows, start=1):
        obj = {k: v for k, v in zip(columns, row, strict=True) if v is not None or k not in _LATER_COLUMNS}
        where = f"{path}: row {n}"
        obj["metadata"] = parse_json(obj["metadata"], f"{where}: metadata") if obj["metadata"] else {}
        obj["embedding"] = parse_json(obj["embedding"], f"{where}: embedding") if obj["embedding"] else None
        out.append((where, _entry(obj, where)))
    return out


def load_memory_store(path: Path) -> MemoryStore:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such memory store")
    if path.suffix in _SQLITE_SUFFIXES:
        located = _from_sqlite(path)
    else:
        located = [(f"{path}:{n}", _entry(obj, f"{path}:{n}")) for n, obj in iter_jsonl(path)]
    seen: dict[str, str] = {}
    for where, entry in located:
        if entry.id in seen:
            raise InputError(f"{where}: duplicate memory id {entry.id!r} (first at {seen[entry.id]})")
        seen[entry.id] = where
    return MemoryStore(path=str(path), entries=tuple(e for _, e in located))


def write_memory_store(entries: list[MemoryEntry], path: Path) -> Path:
    """Write entries as JSONL or SQLite (by suffix), atomically."""
    path = Path(path)
    if path.suffix not in _SQLITE_SUFFIXES:
        return write_jsonl(path, [e.record() for e in entries])
    records = [e.model_dump(mode="json") for e in entries]
    with atomic_path(path) as tmp:
        con = sqlite3.connect(tmp)
        try:
            con.execute(
                "CREATE TABLE memory (id TEXT PRIMARY KEY, text TEXT NOT NULL, metadata TEXT, "
                "source TEXT, created_at TEXT, embedding TEXT, scope TEXT, expires_at TEXT)"
            )
            con.executemany(
                "INSERT INTO memory VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r["id"],
                        r["text"],
                        json.dumps(r["metadata"]),
                        r["source"],
                        r["created_at"],
                        json.dumps(r["embedding"]) if r["embedding"] is not None else None,
                        r["scope"],
                        r["expires_at"],
                    )
                    for r in records
                ],
            )
            con.commit()
        finally:
            con.close()
    return path
