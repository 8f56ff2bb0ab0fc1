"""Tells which kind of artifact a path holds, from its files alone."""

from __future__ import annotations

import json
from pathlib import Path

from clgate.artifacts._records import ArtifactKind
from clgate.errors import InputError

_MEMORY_SUFFIXES = {".sqlite", ".sqlite3", ".db"}


def detect_kind(path: Path) -> ArtifactKind:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "adapter_config.json").is_file():
            return ArtifactKind.ADAPTER
        if (path / "config.json").is_file():
            return ArtifactKind.MODEL
        raise InputError(f"{path}: not a model or adapter directory (no config.json or adapter_config.json)")
    if path.suffix in {".gguf", ".safetensors"}:
        return ArtifactKind.MODEL
    if path.suffix in _MEMORY_SUFFIXES:
        return ArtifactKind.MEMORY
    if path.suffix == ".jsonl":
        return _jsonl_kind(path)
    raise InputError(f"{path}: unknown artifact type (expected a model directory, .gguf, .jsonl or .sqlite)")


def _jsonl_kind(path: Path) -> ArtifactKind:
    """Memory entries carry `id` and `text`; anything else in JSONL is a training dataset."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                try:
                    first = json.loads(line)
                except (ValueError, RecursionError):  # not JSON: the dataset loader says why
                    return ArtifactKind.DATASET
                is_memory = isinstance(first, dict) and "id" in first and "text" in first
                return ArtifactKind.MEMORY if is_memory else ArtifactKind.DATASET
    return ArtifactKind.DATASET
