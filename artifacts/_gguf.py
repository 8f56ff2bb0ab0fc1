"""Dequantises a GGUF checkpoint once per target dtype into a cached Hugging Face safetensors directory.

transformers reads GGUF through `gguf_file=`, but refuses to save a model whose config still
carries the GGUF quantisation config; so the config is stripped, the model rebuilt from that
config on the meta device, given the dequantised tensors (no second copy) and saved. The cache is
keyed by the file's content (its SHA-256, streamed) and the dtype, so a bf16 target costs half
the memory and disk of fp32, and a file replaced in place is never served stale. Later loads
read the cache instead of dequantising again.

The cache key says which folder a GGUF file would give, not that the folder holds it: anyone who can
write the cache (a CI cache restored from another job) could plant another model there, and the gate
would judge that model while the GGUF it hashed is what deploys. So a caller that holds a key passes a
`Seal`: the folder's manifest root is signed when it is built and checked at every later use, and a
folder nobody vouches for is built again.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Protocol

from clgate.artifacts._hashing import hash_file
from clgate.artifacts._loading import MODEL_LOADING
from clgate.atomic import write_text_atomic
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


class Seal(Protocol):
    """Vouches for a folder this machine built, with a key the cache's other writers do not hold."""

    def sign(self, message: bytes) -> bytes: ...

    def verifies(self, message: bytes, signature: bytes) -> bool: ...


_SEAL_DOMAIN = b"clgate-dequantised-v1\n"


def _sealed_message(target: Path, folder: Path | None = None) -> bytes:
    """The cache key (GGUF digest, dtype, libraries) and the manifest root of what `folder` (the target
    itself, or the staging folder that will become it) holds now."""
    from clgate.artifacts._manifest import compute_manifest

    return _SEAL_DOMAIN + f"{target.name}\n{compute_manifest(folder or target, tensors=False).root}".encode()


def _seal_path(target: Path) -> Path:
    return target.parent / f"{target.name}.seal.json"


def _vouched(target: Path, seal: Seal) -> bool:
    """The folder holds what the seal's key signed when it was built (and nothing else)."""
    try:
        signature = base64.b64decode(json.loads(_seal_path(target).read_text())["signature"], validate=True)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return seal.verifies(_sealed_message(target), signature)


def dequantised_dir(path: Path, cache_dir: Path, dtype: str = "float32", seal: Seal | None = None) -> Path:
    """Return the cached safetensors directory of a GGUF file in `dtype`, building it on first use; with
    `seal`, a cached folder it does not vouch for is built again (and the new one sealed)."""
    path = Path(path)
    if dtype not in DTYPES:
        raise InputError(f"cannot dequantise to {dtype!r} (one of {', '.join(DTYPES)})")
    if not path.is_file():
        raise InputError(f"{path}: no such GGUF file")
    target = Path(cache_dir) / "gguf" / _cache_key(path, dtype)
    if (target / "config.json").is_file() and (seal is None or _vouched(target, seal)):
        return target
    if seal is not None and (target.exists() or target.is_symlink()):  # planted, tampered or unsealed
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
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
        if seal is not None:  # what is signed is what this process wrote, before anyone else can see it
            signature = base64.b64encode(seal.sign(_sealed_message(target, staging))).decode()
            write_text_atomic(_seal_path(target), json.dumps({"signature": signature}))
        os.replace(staging, target)
    except OSError:
        # another process finished first: its folder, if the seal vouches for it (the same build)
        if (target / "config.json").is_file() and (seal is None or _vouched(target, seal)):
            return target
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
