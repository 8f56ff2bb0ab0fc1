"""Model directories: which files hold the weights, where a GGUF file's dequantisation lives, the tokenizer.

Loading the weights and running them is `clgate.runtime`'s job; this module only finds and checks files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clgate.artifacts._cache import default_cache_dir
from clgate.artifacts._gguf import Seal, dequantised_dir
from clgate.artifacts._safetensors_header import read_safetensors_header
from clgate.errors import InputError
from clgate.json_input import read_json


def model_weight_files(path: Path) -> list[Path]:
    """The safetensors files of an HF model directory, validated; errors name the bad file."""
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        bins = list(Path(path).glob("*.bin"))
        what = "only pickled .bin weights (clgate reads safetensors)" if bins else "no .safetensors weights"
        raise InputError(f"{path}: not a loadable model directory ({what})")
    for f in files:
        read_safetensors_header(f)
    check_weight_index(Path(path))
    return files


def check_weight_index(path: Path) -> None:
    """A sharded checkpoint's index may name only shard files inside the model directory.

    A loader follows the index; a shard named `../../elsewhere.safetensors` would be read from
    outside the directory, so the manifest would not pin it.
    """
    index = path / "model.safetensors.index.json"
    if not index.is_file():
        return
    try:
        shards = set(read_json(index)["weight_map"].values())
    except (KeyError, TypeError, AttributeError):
        raise InputError(f"{index}: not a safetensors index (no weight_map)") from None
    base = path.resolve()
    for shard in sorted(shards):
        target = (path / str(shard)).resolve()
        if Path(str(shard)).name != shard or not target.is_relative_to(base):
            raise InputError(f"{index}: shard {shard!r} is outside the model directory")
        if not target.is_file():
            raise InputError(f"{index}: shard {shard!r} is missing")


def resolve_model_dir(
    path: Path, cache_dir: Path | None = None, dtype: str = "float32", seal: Seal | None = None
) -> Path:
    """An HF model directory for `path`: itself, or the cached dequantisation of a GGUF file in `dtype`
    (with `seal`, only a cached one the seal vouches for)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such model file or directory")
    if path.is_file():
        if path.suffix != ".gguf":
            raise InputError(f"{path}: not a model (expected a directory with config.json or a .gguf file)")
        return dequantised_dir(path, cache_dir or default_cache_dir(), dtype, seal)
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a model directory (no config.json)")
    model_weight_files(path)
    return path


def load_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    try:  # never the folder's own code: the gate judges the library's classes
        tokenizer = AutoTokenizer.from_pretrained(
            str(model_dir), local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:  # any parser failure on an untrusted folder is bad input, whatever it raises
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{model_dir}: cannot load tokenizer ({why})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
