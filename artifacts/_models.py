"""Loads causal language models from Hugging Face directories or GGUF files, adapters applied."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clgate.artifacts._cache import default_cache_dir
from clgate.artifacts._gguf import dequantised_dir
from clgate.artifacts._safetensors_header import read_safetensors_header
from clgate.errors import InputError


@dataclass
class LoadedModel:
    """A model ready to run: the torch module, its tokenizer, and the directory it came from."""

    model: Any
    tokenizer: Any
    path: Path
    adapter: Path | None = None


def model_weight_files(path: Path) -> list[Path]:
    """The safetensors files of an HF model directory, validated; errors name the bad file."""
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        bins = list(Path(path).glob("*.bin"))
        what = "only pickled .bin weights (clgate reads safetensors)" if bins else "no .safetensors weights"
        raise InputError(f"{path}: not a loadable model directory ({what})")
    for f in files:
        read_safetensors_header(f)
    return files


def resolve_model_dir(path: Path, cache_dir: Path | None = None) -> Path:
    """An HF model directory for `path`: itself, or the cached dequantisation of a GGUF file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such model file or directory")
    if path.is_file():
        if path.suffix != ".gguf":
            raise InputError(f"{path}: not a model (expected a directory with config.json or a .gguf file)")
        return dequantised_dir(path, cache_dir or default_cache_dir())
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a model directory (no config.json)")
    model_weight_files(path)
    return path


def load_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"{model_dir}: cannot load tokenizer ({str(exc).splitlines()[0]})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    path: Path, adapter: Path | None = None, cache_dir: Path | None = None, dtype: str = "float32"
) -> LoadedModel:
    """Load a model for inference (eval mode); a PEFT adapter is merged into a private copy."""
    import torch
    from transformers import AutoModelForCausalLM

    model_dir = resolve_model_dir(path, cache_dir)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(model_dir), local_files_only=True, dtype=getattr(torch, dtype)
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"{model_dir}: cannot load model ({str(exc).splitlines()[0]})") from None
    if adapter is not None:
        from clgate.artifacts._lora import apply_adapter

        model = apply_adapter(model, adapter)
    model.eval()
    return LoadedModel(model=model, tokenizer=load_tokenizer(model_dir), path=model_dir, adapter=adapter)
