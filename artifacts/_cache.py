"""Where clgate keeps what it derives from artifacts (dequantised GGUF, eval caches)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "CLGATE_CACHE"


def default_cache_dir() -> Path:
    """`$CLGATE_CACHE`, else `$XDG_CACHE_HOME/clgate`, else `~/.cache/clgate`."""
    if env := os.environ.get(CACHE_ENV):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clgate"
