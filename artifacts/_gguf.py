"""Dequantises a GGUF checkpoint once per target dtype into a cached Hugging Face safetensors directory.

transformers reads GGUF through `gguf_file=`, but refuses to save a model whose config still
carries the GGUF quantisation config; so the config is stripped, the model rebuilt from that
config on the meta device, given the dequantised tensors (no second copy) and saved. The cache is
keyed by the file's content (its SHA-256, streamed) and the dtype, so a bf16 target costs half
the memory and disk of fp32, and a file replaced in place is never served stale. Later loads
read the cache instead of dequantising again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from clgate.artifacts._hashing import hash_file
from clgate.artifacts._loading import MODEL_LOADING
from clgate.errors import InputError

# Architectures transformers' GGUF loader can dequantise into a causal LM.
SUPPORTED_ARCHITECTURES = {
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "phi3",
    "gemma",
    "gemma2",
    "gemma3",
    "t5",
    "stablelm",
}
DTYPES = ("float32", "bfloat16", "float16")


def gguf_architecture(path: Path) -> str:
    """Read `general.architecture` from the GGUF metadata, or explain why the file is not GGUF."""
    from gguf import GGUFReader

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such GGUF file")
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise InputError(f"{path}: not a GGUF file (bad magic)")
    try:
        reader = GGUFReader(str(path))
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    except KeyError:
        raise InputError(f"{path}: GGUF file has no general.architecture") from None
    except (ValueError, IndexError, OSError) as exc:
        raise InputError(f"{path}: corrupt GGUF file ({exc})") from None


def _cache_key(path: Path, dtype: str) -> str:
    """The file's digest, the dtype and the dequantising libraries' versions: another transformers or
    gguf may write other bytes, and a cached copy from them would give another manifest root."""
    content, _ = hash_file(path)
    libraries = "-".join(f"{name}{metadata.version(name)}" for name in ("transformers", "gguf"))
    return f"{path.stem}-{content[:16]}-{dtype}-{libraries}"


def dequantised_dir(path: Path, cache_dir: Path, dtype: str = "float32") -> Path:
    """Return the cached safetensors directory of a GGUF file in `dtype`, building it on first use."""
    path = Path(path)
    if dtype not in DTYPES:
        raise InputError(f"cannot dequantise to {dtype!r} (one of {', '.join(DTYPES)})")
    if not path.is_file():
        raise InputError(f"{path}: no such GGUF file")
    target = Path(cache_dir) / "gguf" / _cache_key(path, dtype)
    if (target / "config.json").is_file():
        return target
    arch = gguf_architecture(path)
    if arch not in SUPPORTED_ARCHITECTURES:
        raise InputError(
            f"{path}: GGUF architecture {arch!r} is not supported (supported: "
            f"{', '.join(sorted(SUPPORTED_ARCHITECTURES))})"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    with MODEL_LOADING:
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            quantised = AutoModelForCausalLM.from_pretrained(
                str(path.parent), gguf_file=path.name, dtype=torch_dtype
            )
        except (ValueError, OSError, KeyError) as exc:
            raise InputError(f"{path}: cannot dequantise GGUF ({str(exc).splitlines()[0]})") from None
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        model.load_state_dict(quantised.state_dict(), assign=True)
    model.tie_weights()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except OSError:
        if (target / "config.json").is_file():  # another process finished first
            return target
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
