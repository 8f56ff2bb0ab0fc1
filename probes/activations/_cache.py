"""Residuals cached on disk per (model digest, adapter digest, prompt set, device kind and dtype)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clgate.probes.activations._capture import VERSION, Residuals, capture_residuals
from clgate.probes.activations._prompts import ProbePrompts
from clgate.progress import Advance
from clgate.runtime import RuntimeModel

log = logging.getLogger(__name__)


@dataclass
class Side:
    """One side of the comparison: the model as the pool holds it, and the digests its results are cached by."""

    model: RuntimeModel
    digest: str  # manifest digest of what is audited: the model, or the adapter on it
    model_digest: str
    architecture: dict[str, Any]

    @property
    def adapter(self) -> Path | None:
        return self.model.adapter


def _cache_key(side: Side, prompts: ProbePrompts, max_tokens: int) -> str:
    adapter = side.digest if side.adapter else ""
    numerics = side.model.placement.tag
    text = f"{VERSION}|{side.model_digest}|{adapter}|{prompts.digest()}|{max_tokens}|{numerics}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def residuals_for(
    side: Side,
    prompts: ProbePrompts,
    batch_size: int,
    max_tokens: int,
    cache_dir: Path | None,
    advance: Advance,
) -> Residuals:
    path = cache_dir / "activations" / f"{_cache_key(side, prompts, max_tokens)}.npz" if cache_dir else None
    if path is not None and path.is_file():
        try:
            cached = Residuals.load(path)
            advance(len(prompts.texts), len(prompts.texts))
            return cached
        except (OSError, ValueError, KeyError):
            log.warning("unreadable activation cache %s; recomputing", path)
    result = capture_residuals(side.model, prompts.texts, batch_size, max_tokens, advance)
    if path is not None:
        result.save(path)
    return result
