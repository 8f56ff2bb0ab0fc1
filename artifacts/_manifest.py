"""Builds the content manifest of an artifact: hash streams of bytes, then list the digests.

The root digest is SHA-256 over the RFC 8785 canonical JSON of the sorted file listing
(path, size, sha256), so it pins every byte of the artifact and nothing else; tensor digests are
not part of it, which is why a file-digests-only manifest has the same root as the complete one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import rfc8785

from clgate.artifacts._hashing import hash_file
from clgate.artifacts._kinds import detect_kind
from clgate.artifacts._records import ArtifactKind, ArtifactRef, FileDigest, Manifest, TensorDigest
from clgate.artifacts._safetensors_header import read_safetensors_header
from clgate.errors import InputError

MANIFEST_SCHEMA = "clgate.manifest/v1"


def artifact_files(path: Path) -> list[Path]:
    """The files an artifact is made of: every file under it, hidden ones included.

    Anything a loader could read must be pinned, so nothing is skipped. A symbolic link is
    followed only if it stays inside the artifact (its target's bytes are hashed under the link's
    name); one that leaves it is refused, because the bytes it points to could change unseen.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    base = path.resolve()
    files = []
    for folder, dirs, names in os.walk(path):
        for name in [*dirs, *names]:
            entry = Path(folder) / name
            if not entry.is_symlink():
                continue
            try:
                target = entry.resolve(strict=True)
            except (OSError, RuntimeError):  # a loop, or a target that is gone
                raise InputError(
                    f"{path}: {entry.relative_to(path)} is a symbolic link that leads nowhere (a loop or a "
                    "missing target)"
                ) from None
            if not target.is_relative_to(base):
                raise InputError(
                    f"{path}: {entry.relative_to(path)} is a symbolic link that leaves the artifact "
                    f"(to {target}); copy the file in instead"
                )
        files += [Path(folder) / n for n in names if (Path(folder) / n).is_file()]
        dirs[:] = [
            d for d in dirs if not (Path(folder) / d).is_symlink()
        ]  # their targets are inside: hashed there
    if not files:
        raise InputError(f"{path}: directory holds no files")
    return sorted(files, key=lambda p: p.relative_to(path).as_posix())


def _digest_file(path: Path, rel: str, progress: Callable[[int], None] | None, tensors: bool) -> FileDigest:
    if not tensors or path.suffix != ".safetensors":
        whole, _ = hash_file(path, (), progress)
        return FileDigest(path=rel, size=path.stat().st_size, sha256=whole)
    header = read_safetensors_header(path)
    whole, parts = hash_file(path, [(t.start, t.end) for t in header.tensors], progress)
    per_tensor = tuple(
        TensorDigest(name=t.name, dtype=t.dtype, shape=t.shape, sha256=d)
        for t, d in zip(header.tensors, parts, strict=True)
    )
    return FileDigest(path=rel, size=path.stat().st_size, sha256=whole, tensors=per_tensor)


def root_digest(files: tuple[FileDigest, ...] | list[FileDigest]) -> str:
    listing = {
        "schema": MANIFEST_SCHEMA,
        "files": [
            {"path": f.path, "size": f.size, "sha256": f.sha256} for f in sorted(files, key=lambda f: f.path)
        ],
    }
    return "sha256:" + hashlib.sha256(rfc8785.dumps(listing)).hexdigest()


def _file_digests(
    files: list[Path], base: Path, progress: Callable[[int], None] | None, tensors: bool
) -> tuple[FileDigest, ...]:
    """Complete mode already keeps two cores busy within each file; file-only mode has one digest
    per byte, so it spreads whole files over the cores instead, largest first to end together."""

    def digest(f: Path) -> FileDigest:
        return _digest_file(f, f.relative_to(base).as_posix(), progress, tensors)

    workers = min(len(files), os.cpu_count() or 1)
    if tensors or workers == 1:
        return tuple(map(digest, files))
    largest_first = sorted(files, key=lambda f: f.stat().st_size, reverse=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = dict(zip(largest_first, pool.map(digest, largest_first), strict=True))
    return tuple(done[f] for f in files)


def compute_manifest(
    path: Path,
    kind: ArtifactKind | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    tensors: bool = True,
) -> Manifest:
    """Stream every file of the artifact once; per-tensor digests for safetensors files.

    `tensors=False` gives file digests only: each byte is hashed once, for checks that need no
    more than the root or the file digests (is this still the promoted artifact?). Its `progress`
    is then called from worker threads.
    """
    path = Path(path)
    files = artifact_files(path)
    base = path if path.is_dir() else path.parent
    digests = _file_digests(files, base, progress, tensors)
    return Manifest(kind=kind or detect_kind(path), root=root_digest(digests), files=digests)


def artifact_ref(path: Path, kind: ArtifactKind | None = None) -> ArtifactRef:
    """A reference pins only the root, so file digests alone are enough."""
    manifest = compute_manifest(path, kind, tensors=False)
    return ArtifactRef(kind=manifest.kind, uri=str(Path(path).resolve()), digest=manifest.root)


def model_digest(model_dir: Path, adapter: Path | None = None) -> str:
    """One digest for a model as it runs: its root, combined with the adapter's when one is merged.

    What caches of a model's answers are keyed by (evals, the trigger sweep's probe tables); a root
    needs only file digests, so each byte is hashed once.
    """
    root = compute_manifest(model_dir, tensors=False).root
    if adapter is None:
        return root
    combined = f"{root}+{compute_manifest(adapter, tensors=False).root}"
    return "sha256:" + hashlib.sha256(combined.encode()).hexdigest()
