"""The probe `serving`: a candidate's (or an adapter's) serving files against its parent's."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from clgate.artifacts import load_tokenizer, resolve_model_dir
from clgate.errors import InputError
from clgate.measurement import Measurement
from clgate.probes._registry import probe
from clgate.probes.serving._changes import NUMBERS, ServingChange, changed_keys
from clgate.probes.serving._code import code_changes
from clgate.probes.serving._tokenizer import server_file_changes, ships_tokenizer, tokenizer_changes

VERSION = "1"
IGNORED_GENERATION = frozenset({"transformers_version", "_from_model_config", "pad_token_id"})
"""Generation-config fields that change no reply: the saving library's stamp, and the id that pads the rows
of a batch (training scripts set it)."""


def generation_settings(folder: Path) -> dict[str, Any]:
    """The decoding a server applies to the folder's model unless told otherwise: its generation config as
    transformers loads it (from the model's config when the folder has none), fields left at their
    defaults aside."""
    from transformers import AutoConfig, GenerationConfig

    try:
        if (folder / "generation_config.json").is_file():
            config = GenerationConfig.from_pretrained(str(folder), local_files_only=True)
        else:
            model_config = AutoConfig.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False
            )
            config = GenerationConfig.from_model_config(model_config)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(
            f"{folder}: cannot read its generation config ({str(exc).splitlines()[0]})"
        ) from None
    return {k: v for k, v in config.to_diff_dict().items() if k not in IGNORED_GENERATION}


def _loaded_changes(parent: Path, candidate: Path, tokenizer: bool, generation: bool) -> list[ServingChange]:
    """The changes seen through what transformers loads: the tokenizer (and the files beside it other servers
    read) and the generation config, each where the candidate has one of its own to compare."""
    changes = []
    if tokenizer:
        loaded = tokenizer_changes(load_tokenizer(parent), load_tokenizer(candidate))
        templates_differ = any(c.aspect == "chat_template" for c in loaded)
        changes += loaded + server_file_changes(parent, candidate, templates_differ)
    if generation:
        settings = generation_settings(parent), generation_settings(candidate)
        changes += changed_keys("generation_config", "generation config ", *settings)
    return changes


def _measurement(changes: list[ServingChange], meta: dict[str, Any]) -> Measurement:
    explain = {}
    for aspect, number in NUMBERS.items():
        found = [c.sentence for c in changes if c.aspect == aspect]
        if found:
            explain[number] = "; ".join(found[:3]) + (
                f"; and {len(found) - 3} more" if len(found) > 3 else ""
            )
    counts = {number: float(sum(c.aspect == aspect for c in changes)) for aspect, number in NUMBERS.items()}
    return Measurement(numbers=counts, details=[asdict(c) for c in changes], explain=explain, meta=meta)


@probe(
    "serving",
    VERSION,
    "what a full model or adapter ships besides weights: code, chat template, tokenizer, generation config",
    ("parent", "candidate"),
)
def serving_diff(parent: Path, candidate: Path, *, adapter: bool = False) -> Measurement:
    """Compare the files around `candidate`'s weights with `parent`'s. With `adapter`, `candidate` is an
    adapter folder on `parent`, compared only where it ships a tokenizer or a generation config of its own
    (a server loading an adapter's own tokenizer may run that tokenizer's code, so its code is compared
    then too). A candidate whose tokenizer or config cannot be loaded without running its code is reported
    by its code alone: that is what blocks it."""
    parent_dir = resolve_model_dir(Path(parent))
    candidate_dir = Path(candidate) if adapter else resolve_model_dir(Path(candidate))
    tokenizer = not adapter or ships_tokenizer(candidate_dir)
    generation = not adapter or (candidate_dir / "generation_config.json").is_file()
    code = code_changes(parent_dir, candidate_dir) if tokenizer else []
    try:
        loaded = _loaded_changes(parent_dir, candidate_dir, tokenizer, generation)
    except InputError as exc:
        if not code:
            raise
        return _measurement(code, {"compared": ["code"], "adapter": adapter, "not_compared": str(exc)})
    parts = {
        "code": tokenizer,
        "tokenizer": tokenizer,
        "other_files": tokenizer,
        "generation_config": generation,
    }
    return _measurement(code + loaded, {"compared": [p for p, on in parts.items() if on], "adapter": adapter})
