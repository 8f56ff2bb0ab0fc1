"""Reading two checkpoints for a diff: their tensors' places, their manifests, whether they compare.

Tensors are read one at a time through safetensors' lazy `safe_open`, and only those whose manifest
digests differ; a manifest passed in is used only if it covers every tensor actually read.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from clgate.artifacts import (
    Manifest,
    TensorSpan,
    compute_manifest,
    model_weight_files,
    read_safetensors_header,
    resolve_model_dir,
)
from clgate.errors import InputError

Spans = dict[str, tuple[Path, TensorSpan]]  # tensor name -> (file, where in it)


@dataclass(frozen=True)
class Checkpoint:
    model_dir: Path
    spans: Spans
    manifest: Manifest  # covers every tensor of model_dir
    digest: str  # root digest of the artifact as given (a .gguf file's own manifest, if one was passed)


def tensor_spans(model_dir: Path) -> Spans:
    spans: Spans = {}
    for weights in model_weight_files(model_dir):
        for span in read_safetensors_header(weights).tensors:
            if span.name in spans:
                raise InputError(
                    f"{model_dir}: tensor {span.name!r} is stored twice ({spans[span.name][0].name}, {weights.name})"
                )
            spans[span.name] = (weights, span)
    return spans


def _covers(manifest: Manifest, spans: Spans) -> bool:
    digests = manifest.tensor_digests()
    return all(
        name in digests and digests[name].shape == span.shape and digests[name].dtype == span.dtype
        for name, (_, span) in spans.items()
    )


def open_checkpoint(path: Path, manifest: Manifest | None, cache_dir: Path | None) -> Checkpoint:
    model_dir = resolve_model_dir(path, cache_dir)
    spans = tensor_spans(model_dir)
    usable = manifest if manifest is not None and _covers(manifest, spans) else compute_manifest(model_dir)
    return Checkpoint(model_dir, spans, usable, (manifest or usable).root)


def _architecture(model_dir: Path) -> tuple[str | None, tuple[str, ...]]:
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None, ()
    return config.get("model_type"), tuple(config.get("architectures") or ())


def check_compatible(parent: Checkpoint, candidate: Checkpoint) -> None:
    arch_p, arch_c = _architecture(parent.model_dir), _architecture(candidate.model_dir)
    if arch_p[0] and arch_c[0] and arch_p != arch_c:
        raise InputError(
            f"different architectures: parent is {arch_p[0]} {list(arch_p[1])}, "
            f"candidate is {arch_c[0]} {list(arch_c[1])}"
        )
    for name in sorted(parent.spans):
        if name not in candidate.spans:
            raise InputError(f"tensor {name!r} is in the parent but missing from the candidate")
    for name in sorted(candidate.spans):
        if name not in parent.spans:
            raise InputError(f"tensor {name!r} is in the candidate but missing from the parent")
    for name, (_, span) in sorted(parent.spans.items()):
        other = candidate.spans[name][1]
        if span.shape != other.shape:
            raise InputError(
                f"tensor {name!r}: shape {list(span.shape)} in the parent, {list(other.shape)} in the candidate"
            )


def changed_tensors(parent: Checkpoint, candidate: Checkpoint) -> list[str]:
    p, c = parent.manifest.tensor_digests(), candidate.manifest.tensor_digests()
    return [name for name in sorted(parent.spans) if p[name] != c[name]]


class TensorReader:
    """Lazy per-file `safe_open` handles, so each tensor is read alone and only when needed."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._handles: dict[Path, Any] = {}

    def read(self, file: Path, name: str) -> torch.Tensor:
        from safetensors import safe_open

        if file not in self._handles:
            self._handles[file] = self._stack.enter_context(safe_open(str(file), framework="pt"))
        return self._handles[file].get_tensor(name)
