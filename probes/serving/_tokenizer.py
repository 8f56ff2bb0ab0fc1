"""How a candidate's tokenizer reads and writes text, against its parent's: as transformers loads it, and
the files beside it that other servers read instead."""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

from clgate.probes.serving._changes import ServingChange, changed_keys, quoted
from clgate.probes.serving._code import read_json_object

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
"""A folder holding any of these ships a tokenizer of its own (an adapter usually does not)."""
SERVER_FILES = (
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.json",
    "preprocessor_config.json",
    "processor_config.json",
)
"""Files a server or converter may read where transformers reads `tokenizer.json` (llama.cpp's converter
prefers a SentencePiece model; processors read `chat_template.json`): compared as they are, by their
JSON where they are JSON."""
ADDED_TOKEN_FLAGS = ("special", "lstrip", "rstrip", "single_word", "normalized")
"""An added token's flags: whether decoding may drop it, how it takes the spaces around it."""
NOT_SETTINGS = ("name_or_path", "is_local", "local_files_only", "chat_template", "added_tokens_decoder")
"""Loading arguments that say where a tokenizer came from, or that are compared on their own."""


def ships_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


def _digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _template_diff(theirs: Any, mine: Any) -> tuple[str, str]:
    """A unified diff of two chat templates (a set of named ones as JSON, a line each), and what the
    candidate's adds (or, adding nothing, drops)."""
    as_text = [t if isinstance(t, str) else json.dumps(t, indent=1, sort_keys=True) for t in (theirs, mine)]
    lines = list(
        difflib.unified_diff(
            as_text[0].splitlines(), as_text[1].splitlines(), "parent", "candidate", lineterm=""
        )
    )
    body = [line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    added = [line[1:] for line in body if line.startswith("+")]
    dropped = [line[1:] for line in body if line.startswith("-")]
    what = f"adds {quoted('⏎'.join(added))}" if added else f"drops {quoted('⏎'.join(dropped))}"
    return "\n".join(lines), what


def _settings(tokenizer: Any) -> dict[str, Any]:
    """What the tokenizer was loaded with besides its special tokens (compared on their own): how it splits
    special tokens, cleans up spaces, pads, its length limit. As JSON, so token objects compare by value."""
    special = {*tokenizer.special_tokens_map, "additional_special_tokens", "extra_special_tokens"}
    kept = {
        k: v
        for k, v in tokenizer.init_kwargs.items()
        if k not in NOT_SETTINGS and k not in special and not k.endswith("_file")
    }
    return json.loads(json.dumps(kept, sort_keys=True, default=str))


def _backend(tokenizer: Any) -> dict[str, Any]:
    """The fast tokenizer's own specification, every part but its vocabulary (compared on its own): the
    stages around the model (a normaliser can rewrite a word in every prompt, a decoder in every reply),
    truncation and padding, the model's settings (dropout, byte fallback), digests of its merges and of
    its token scores."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return {}
    spec = json.loads(backend.to_str())
    model = dict(spec.pop("model", None) or {})
    vocab, merges = model.pop("vocab", None), model.pop("merges", None)
    spec.pop("added_tokens", None)  # compared token by token
    scores = [entry[1] for entry in vocab] if isinstance(vocab, list) else None  # Unigram: [piece, score]
    return {**spec, "model": {**model, "merges": _digest(merges), "scores": _digest(scores)}}


def _added_tokens(tokenizer: Any) -> dict[str, dict[str, Any]]:
    """Each added token's flags by its text: whether it is special (a reply decoded without special tokens
    drops it), and how it takes the spaces around it."""
    return {
        token.content: {flag: getattr(token, flag) for flag in ADDED_TOKEN_FLAGS}
        for token in tokenizer.added_tokens_decoder.values()
    }


def tokenizer_changes(theirs: Any, mine: Any) -> list[ServingChange]:
    """What makes `mine` (a loaded tokenizer) read or write text otherwise than `theirs`: its chat template,
    vocabulary, special tokens, added tokens' flags, loading settings and the rest of its specification."""
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
            f"{what} {len(tokens)} ({', '.join(map(quoted, tokens[:3]))}{', …' if len(tokens) > 3 else ''})"
            for what, tokens in (("adds", added), ("removes", removed), ("renumbers", moved))
            if tokens
        ]
        changes.append(
            ServingChange("tokenizer", "vocabulary", f"the update's vocabulary {', '.join(parts)}")
        )
    flags, parents_flags = _added_tokens(mine), _added_tokens(theirs)
    both = set(flags) & set(parents_flags)
    changes += changed_keys(
        "tokenizer",
        "added token ",
        {t: parents_flags[t] for t in both},
        {t: flags[t] for t in both},
    )
    changes += changed_keys("tokenizer", "", theirs.special_tokens_map, mine.special_tokens_map)
    changes += changed_keys("tokenizer", "tokenizer setting ", _settings(theirs), _settings(mine))
    changes += changed_keys("tokenizer", "tokenizer ", _backend(theirs), _backend(mine))
    return changes


def _read(path: Path) -> Any:
    return read_json_object(path) if path.suffix == ".json" else path.read_bytes()


def server_file_changes(parent: Path, candidate: Path, templates_differ: bool) -> list[ServingChange]:
    """Files other servers read that the candidate ships new or changed (by their JSON, where they are JSON),
    and a `chat_template` field of `tokenizer_config.json` that changed where transformers reads
    `chat_template.jinja` instead (`templates_differ`: the loaded templates differ, reported already)."""
    changes = []
    for name in SERVER_FILES:
        mine, theirs = candidate / name, parent / name
        if mine.is_file() and (not theirs.is_file() or _read(mine) != _read(theirs)):
            changes.append(
                ServingChange(
                    "other_files",
                    name,
                    f"the update ships {'a changed' if theirs.is_file() else 'a new'} {name}, which servers other "
                    "than transformers may read",
                )
            )
    field = "chat_template"
    mine_field = read_json_object(candidate / "tokenizer_config.json").get(field)
    theirs_field = read_json_object(parent / "tokenizer_config.json").get(field)
    if not templates_differ and mine_field != theirs_field:
        diff, what = _template_diff(theirs_field or "", mine_field or "")
        changes.append(
            ServingChange(
                "other_files",
                f"tokenizer_config.json:{field}",
                f"the update's tokenizer_config.json {field} field {what}, though transformers reads "
                "chat_template.jinja instead (other servers read the field)",
                diff,
            )
        )
    return changes
