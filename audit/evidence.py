"""Content-addressed evidence: full measurements stored by the digest the ledger records.

The ledger pins each measurement by SHA-256; the JSON itself lives here, beside the ledger.
Anyone reading evidence can check it against the ledger, so this folder needs no trust.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from clgate.atomic import write_text_atomic
from clgate.errors import IntegrityError
from clgate.measurement import Measurement


class EvidenceStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, digest: str) -> Path:
        return self.folder / f"{digest.removeprefix('sha256:')}.json"

    def put(self, measurement: Measurement) -> str:
        text = measurement.to_json()
        digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        path = self._path(digest)
        if not path.exists():
            write_text_atomic(path, text)
        return digest

    def get(self, digest: str) -> Measurement | None:
        """The measurement with this digest, None if absent; altered evidence is an IntegrityError."""
        path = self._path(digest)
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8")
        if "sha256:" + hashlib.sha256(text.encode()).hexdigest() != digest:
            raise IntegrityError(
                f"{path}: evidence does not match its digest (altered after it was recorded)"
            )
        return Measurement.from_json(text)
