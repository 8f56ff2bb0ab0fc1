"""On-disk cache of scored requests, so rerunning a gate on unchanged models is near-instant.

A key is the SHA-256 of (model digest, engine version, request kind, request content), where the
request content is the exact rendered prompt and continuations or decoding settings. It is a
function of (suite dataset digest, item id) but stays valid when an unchanged item moves between
dataset versions, and goes stale the moment any byte of the model, prompt or scoring changes.
SQLite gives atomic batched writes and safe concurrent readers.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from clgate.artifacts import default_cache_dir


def default_eval_cache_dir() -> Path:
    return default_cache_dir() / "evals"


def request_key(model_digest: str, kind: str, payload: Any) -> str:
    text = json.dumps([model_digest, kind, payload], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResultCache:
    """A key → JSON value store in one SQLite file; `None` path keeps it in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, value FROM results WHERE key IN ({marks})", chunk)
                found.update((k, json.loads(v)) for k, v in rows)
        return found

    def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        rows = [(k, json.dumps(v)) for k, v in items]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        self._db.close()
