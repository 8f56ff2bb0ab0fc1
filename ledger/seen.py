"""What this verifier last saw of each log: the tree head it verified, kept outside the database.

Whoever can write the database can delete its tail (a key revocation, a block) together with the
stored checkpoints, and the remaining log still verifies. A verifier that remembers the largest
head it verified refuses a log that shrank since, or whose root at that size changed (a fork):
anti-rollback without trusting the database. Heads are kept per log id in a small JSON file each,
in `$CLGATE_STATE_DIR` or `~/.local/state/clgate/heads`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clgate.atomic import lock_file, write_text_atomic
from clgate.errors import InputError
from clgate.json_input import read_json

if TYPE_CHECKING:
    from clgate.ledger.verify import Problem, Report

STATE_ENV = "CLGATE_STATE_DIR"


def default_state_dir() -> Path:
    configured = os.environ.get(STATE_ENV)
    return Path(configured) if configured else Path.home() / ".local" / "state" / "clgate" / "heads"


@dataclass(frozen=True)
class SeenHead:
    log_id: str
    size: int
    root: bytes

    def problems(self, report: Report) -> list[Problem]:
        """The verified log must extend this head: not shorter, and the same root at this size."""
        from clgate.ledger.verify import Problem

        if report.size < self.size:
            return [
                Problem(
                    None,
                    f"log shrank from {self.size} to {report.size} entries since this verifier last "
                    "verified it: entries were deleted (truncation or rollback of the database)",
                )
            ]
        if report.roots.get(self.size) != self.root:
            return [
                Problem(
                    None,
                    f"log forked: its first {self.size} entries differ from those this verifier "
                    "verified before (history was rewritten)",
                )
            ]
        return []


class SeenHeads:
    """The largest verified tree head per log, one file per log id, updated atomically."""

    def __init__(self, folder: str | Path | None = None) -> None:
        if isinstance(folder, str) and not folder.strip():  # as Path("") it would be the working folder
            raise InputError("the verifier's state folder is empty; give a folder path")
        self.folder = Path(folder) if folder else default_state_dir()
        if self.folder.exists() and not self.folder.is_dir():  # before a verify that would then not remember
            raise InputError(f"{self.folder}: the verifier's state must be a folder, not a file")

    def _path(self, log_id: str) -> Path:
        return self.folder / f"{log_id}.json"

    def get(self, log_id: str) -> SeenHead | None:
        path = self._path(log_id)
        if not path.is_file():
            return None
        try:
            data = read_json(path)
            return SeenHead(log_id, int(data["size"]), bytes.fromhex(data["root"]))
        except (InputError, ValueError, KeyError, TypeError, OverflowError):
            raise InputError(
                f"{path}: unreadable verifier state; delete it only if you trust this log"
            ) from None

    def remember(self, log_id: str, size: int, root: bytes) -> None:
        """Keep the head if it is larger than the one kept (concurrent verifiers never shrink it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with lock_file(self.folder / ".lock"):
            current = self.get(log_id)
            if current is None or size > current.size:
                write_text_atomic(self._path(log_id), json.dumps({"size": size, "root": root.hex()}))
