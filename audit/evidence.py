"""Content-addressed evidence: full measurements stored by the digest the ledger records.

The ledger pins each measurement by SHA-256; the JSON itself lives here, beside the ledger.
Anyone reading evidence can check it against the ledger, so this folder needs no trust. Files an
audit must be able to read again later (an update's target set, which joins its deployment's
regression set once promoted) are kept here too, by the SHA-256 their signed proposal recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from clgate.atomic import write_bytes_atomic, write_text_atomic
from clgate.errors import InputError, IntegrityError
from clgate.json_input import parse_json
from clgate.measurement import Measurement


def _read(path: Path) -> bytes | None:
    """The bytes at `path`, None when nothing is there; anything but a regular file is planted."""
    if not path.exists():
        return None
    if not path.is_file():
        raise IntegrityError(f"{path}: not a file where evidence belongs")
    return path.read_bytes()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class EvidenceStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, digest: str) -> Path:
        return self.folder / f"{digest.removeprefix('sha256:')}.json"

    def put(self, measurement: Measurement) -> str:
        """File it under its digest; a file there that was altered is replaced by the true bytes."""
        digest = measurement.digest
        path = self._path(digest)
        held = _read(path)
        if held is None or "sha256:" + _sha256(held) != digest:
            write_text_atomic(path, measurement.to_json())
        return digest

    def get(self, digest: str) -> Measurement | None:
        """The measurement with this digest, None if absent; altered evidence is an IntegrityError."""
        path = self._path(digest)
        data = _read(path)  # read once: the bytes checked are the bytes parsed
        if data is None:
            return None
        if "sha256:" + _sha256(data) != digest:
            raise IntegrityError(
                f"{path}: evidence does not match its digest (altered after it was recorded)"
            )
        return Measurement.from_json(data.decode("utf-8"))

    def quotes(self, digest: str, carries: Callable[[str], bool]) -> bool:
        """Whether the measurement with this digest is here and `carries` holds for a text it records (its
        details, explanations and notes: never its JSON's syntax or its check's name, or a pattern such as
        `"name": "evals",` would have an erasure delete every audit's evidence). Altered
        evidence is an IntegrityError, never a quote: whoever rewrote a measurement to quote a subject would
        otherwise have an honest erasure delete it, and the record say why."""
        path = self._path(digest)
        data = _read(path)
        if data is None:
            return False
        if "sha256:" + _sha256(data) != digest:
            raise IntegrityError(
                f"{path}: evidence does not match its digest (altered after it was recorded); restore or "
                "delete it, then run the erasure again"
            )
        try:
            recorded = parse_json(data, str(path))
        except InputError:
            recorded = None
        if not isinstance(recorded, dict):  # not a measurement clgate wrote: its whole text is what it holds
            return carries(data.decode("utf-8", errors="replace"))
        return any(carries(text) for key, value in recorded.items() if key not in ("name", "version")
                   for text in _strings(value))  # fmt: skip

    def digests(self) -> list[str]:
        """Every measurement's digest held here."""
        return sorted("sha256:" + p.stem for p in self.folder.glob("*.json"))

    def remove(self, digest: str) -> None:
        """Delete a measurement that quotes erased data (a memory diff shows entry text). The ledger keeps its
        digest, and the erasure entry that lists it explains its absence."""
        self._path(digest).unlink(missing_ok=True)

    def _file_path(self, sha256: str) -> Path:
        return self.folder / "files" / sha256.removeprefix("sha256:")

    def put_file(self, path: Path) -> str:
        """Keep a copy of `path` (replacing an altered one); returns its SHA-256 (hex), the name it is found by."""
        data = Path(path).read_bytes()
        sha256 = _sha256(data)
        target = self._file_path(sha256)
        held = _read(target)
        if held is None or _sha256(held) != sha256:
            write_bytes_atomic(target, data)  # whole or absent, never half a file
        return sha256

    def file(self, sha256: str) -> Path | None:
        """The kept file with this SHA-256, None if absent; an altered one is an IntegrityError. Whoever reads
        it later must check what it read again (the folder's writer may swap it meanwhile), or read
        `copy_of` instead."""
        path = self._file_path(sha256)
        return path if self._kept_bytes(sha256) is not None else None

    def copy_of(self, sha256: str, folder: Path, suffix: str = "") -> Path | None:
        """A private copy, in `folder`, of the bytes of the kept file with this SHA-256 that were checked:
        a set scored minutes after its check (a regression rerun) was the evidence folder's writer's to swap
        for easier items while the audit named the original."""
        data = self._kept_bytes(sha256)
        if data is None:
            return None
        return write_bytes_atomic(Path(folder) / f"{sha256.removeprefix('sha256:')}{suffix}", data, 0o600)

    def _kept_bytes(self, sha256: str) -> bytes | None:
        path = self._file_path(sha256)
        data = _read(path)
        if data is None:
            return None
        if _sha256(data) != sha256.removeprefix("sha256:"):
            raise IntegrityError(f"{path}: kept file does not match its digest (altered after it was kept)")
        return data


def _strings(value: Any) -> Iterator[str]:
    """Every text in a JSON value: its strings, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
