"""The probe `serving`: what an update ships besides its weights that changes what a server makes of them.

A model folder is more than its tensors. Its chat template is put around every prompt, its tokenizer
decides what the model reads and what text its ids become, its `generation_config.json` is the decoding a
server applies by default (biases, suppressed tokens, penalties), and a Python file named by `auto_map` is
the model class a server that trusts remote code runs instead of the library's. None of them moves a
weight, and the scoring evals apply none of the decoding rules, so an update that changes only these
looks like no update at all. Each is compared with the parent's, as loaded, not as written: files saved
by another library version differ in bytes and mean the same.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clgate.artifacts import load_tokenizer, resolve_model_dir
from clgate.errors import InputError
from clgate.measurement import Measurement
from clgate.probes._registry import probe

VERSION = "1"
AUTO_MAP_FILES = ("config.json", "tokenizer_config.json")
"""Where transformers looks for `auto_map`: the model's and the tokenizer's class, from the folder's code."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
"""A folder holding any of these ships a tokenizer of its own (an adapter usually does not)."""
UNRECORDED = frozenset({"transformers_version", "_from_model_config"})
"""Generation-config fields the saving library writes about itself: they change nothing."""
PIPELINE = ("normalizer", "pre_tokenizer", "post_processor", "decoder")
"""The stages of a fast tokenizer around its vocabulary: text is rewritten before the model reads it
(a normaliser can replace a word), and ids after it speaks (a decoder can replace one back)."""
NUMBERS = {
    "code": "serving.code_files",
    "chat_template": "serving.chat_template_changed",
    "tokenizer": "serving.tokenizer_changes",
    "generation_config": "serving.generation_keys_changed",
}


@dataclass(frozen=True)
class ServingChange:
    """One difference from the parent, in a sentence that names the file, key or line."""

    aspect: str
    """One of `NUMBERS`' keys."""
    where: str
    """The file, key or tokenizer part that differs."""
    sentence: str
    diff: str = ""
    """A unified diff of the two, where the values are text (the chat template)."""


def _short(value: Any, width: int = 100) -> str:
    """A value for a sentence, cut at `width` characters: text quoted, anything else as JSON."""
    if value is None:
        return "unset"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = text if len(text) <= width else text[: width - 1] + "…"
    return repr(text) if isinstance(value, str) else text


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not readable JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a JSON object")
    return data


def code_changes(parent: Path, candidate: Path) -> list[ServingChange]:
    """Python files the candidate holds that the parent does not hold byte for byte, and `auto_map`s that
    point a transformers class at the folder's code where the parent's did not."""
    changes = []
    for path in sorted(candidate.rglob("*.py")):
        relative = path.relative_to(candidate)
        theirs = parent / relative
        if not theirs.is_file() or theirs.read_bytes() != path.read_bytes():
            changes.append(
                ServingChange("code", str(relative), f"the update ships the Python file {str(relative)!r}")
            )
    for name in AUTO_MAP_FILES:
        mine, theirs = _json(candidate / name).get("auto_map"), _json(parent / name).get("auto_map")
        if mine and mine != theirs:
            changes.append(
                ServingChange(
                    "code",
                    f"{name}:auto_map",
                    f"the update's {name} maps transformers classes to the folder's own code ({_short(mine)})",
                )
            )
    return changes


def ships_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


def _template_diff(theirs: Any, mine: Any) -> tuple[str, str]:
    """A unified diff of two chat templates, and what the candidate's adds (or, adding nothing, drops)."""
    as_text = [t if isinstance(t, str) else json.dumps(t, indent=1, sort_keys=True) for t in (theirs, mine)]
    lines = list(
        difflib.unified_diff(
            as_text[0].splitlines(), as_text[1].splitlines(), "parent", "candidate", lineterm=""
        )
    )
    body = [line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    added = [line[1:] for line in body if line.startswith("+")]
    dropped = [line[1:] for line in body if line.startswith("-")]
    what = f"adds {_short('⏎'.join(added))}" if added else f"drops {_short('⏎'.join(dropped))}"
    return "\n".join(lines), what


def _pipeline(tokenizer: Any) -> dict[str, Any]:
    """The fast tokenizer's stages, and a digest of its merges: what turns text into ids and back."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return {}
    spec = json.loads(backend.to_str())
    model = spec.get("model") or {}
    merges = json.dumps(model.get("merges"), sort_keys=True).encode()
    return {
        **{stage: spec.get(stage) for stage in PIPELINE},
        "merges": "sha256:" + hashlib.sha256(merges).hexdigest(),
    }


def _changed_keys(
    aspect: str, label: str, theirs: dict[str, Any], mine: dict[str, Any]
) -> list[ServingChange]:
    """A change per key whose value differs, in a sentence quoting both values."""
    return [
        ServingChange(
            aspect,
            key,
            f"the update's {label}{key} is {_short(mine.get(key))} (the parent's: {_short(theirs.get(key))})",
        )
        for key in sorted(set(mine) | set(theirs))
        if mine.get(key) != theirs.get(key)
    ]


def tokenizer_changes(theirs: Any, mine: Any) -> list[ServingChange]:
    """What makes `mine` (a loaded tokenizer) read or write text otherwise than `theirs`: its chat template,
    its vocabulary, its special tokens, and the stages around its vocabulary."""
    changes = []
    if mine.chat_template != theirs.chat_template:
        diff, what = _template_diff(theirs.chat_template, mine.chat_template)
        changes.append(
            ServingChange("chat_template", "chat template", f"the update's chat template {what}", diff)
        )
    vocab, parents = mine.get_vocab(), theirs.get_vocab()
    added = sorted(set(vocab) - set(parents), key=vocab.get)
    removed = sorted(set(parents) - set(vocab), key=parents.get)
    moved = sorted((t for t in set(vocab) & set(parents) if vocab[t] != parents[t]), key=vocab.get)
    if added or removed or moved:
        parts = [
            f"{what} {len(tokens)} ({', '.join(map(_short, tokens[:3]))}{', …' if len(tokens) > 3 else ''})"
            for what, tokens in (("adds", added), ("removes", removed), ("renumbers", moved))
            if tokens
        ]
        changes.append(
            ServingChange("tokenizer", "vocabulary", f"the update's vocabulary {', '.join(parts)}")
        )
    changes += _changed_keys("tokenizer", "", theirs.special_tokens_map, mine.special_tokens_map)
    changes += _changed_keys("tokenizer", "tokenizer ", _pipeline(theirs), _pipeline(mine))
    return changes


def generation_settings(folder: Path) -> dict[str, Any]:
    """The decoding a server applies to the folder's model unless told otherwise: its generation config as
    transformers loads it (from the model's config when the folder has none), fields left at their
    defaults and the library's own stamp aside."""
    from transformers import AutoConfig, GenerationConfig

    try:
        if (folder / "generation_config.json").is_file():
            config = GenerationConfig.from_pretrained(str(folder), local_files_only=True)
        else:
            config = GenerationConfig.from_model_config(
                AutoConfig.from_pretrained(str(folder), local_files_only=True)
            )
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(
            f"{folder}: cannot read its generation config ({str(exc).splitlines()[0]})"
        ) from None
    return {k: v for k, v in config.to_diff_dict().items() if k not in UNRECORDED}


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
    """Compare the files around `candidate`'s weights with `parent`'s (`adapter`: `candidate` is an adapter
    folder on `parent`, compared where it ships a tokenizer or a generation config of its own; a server
    runs no code from an adapter folder)."""
    parent_dir = resolve_model_dir(Path(parent))
    candidate_dir = Path(candidate) if adapter else resolve_model_dir(Path(candidate))
    changes = [] if adapter else code_changes(parent_dir, candidate_dir)
    compared = ["code"] * (not adapter)
    if not adapter or ships_tokenizer(candidate_dir):
        changes += tokenizer_changes(load_tokenizer(parent_dir), load_tokenizer(candidate_dir))
        compared.append("tokenizer")
    if not adapter or (candidate_dir / "generation_config.json").is_file():
        settings = generation_settings(parent_dir), generation_settings(candidate_dir)
        changes += _changed_keys("generation_config", "generation config ", *settings)
        compared.append("generation_config")
    return _measurement(changes, {"compared": compared, "adapter": adapter})
