"""Typed records for what clgate audits: artifact references and their content manifests."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ArtifactKind(StrEnum):
    MODEL = "model"
    ADAPTER = "adapter"
    MEMORY = "memory"
    DATASET = "dataset"


class TensorDigest(BaseModel):
    """SHA-256 of one tensor's raw bytes, so identical tensors match across files and shardings."""

    model_config = ConfigDict(frozen=True)

    name: str
    dtype: str
    shape: tuple[int, ...]
    sha256: str


class FileDigest(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    size: int
    sha256: str
    tensors: tuple[TensorDigest, ...] = ()


class Manifest(BaseModel):
    """Per-file and per-tensor digests of an artifact plus one root digest over the file listing."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    kind: ArtifactKind
    root: str
    files: tuple[FileDigest, ...]

    def tensor_digests(self) -> dict[str, TensorDigest]:
        return {t.name: t for f in self.files for t in f.tensors}

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


class ArtifactRef(BaseModel):
    """What an update points at: the kind, where it lives, and the digest that pins its content."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    kind: ArtifactKind
    uri: str
    digest: str
