"""One difference between a candidate's serving files and its parent's, as a finding can quote it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

NUMBERS = {
    "code": "serving.code_changes",
    "chat_template": "serving.chat_template_changed",
    "tokenizer": "serving.tokenizer_changes",
    "generation_config": "serving.generation_keys_changed",
    "other_files": "serving.other_files",
}
"""The measurement's number for each aspect: how many differences of that kind."""


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


def quoted(value: Any, width: int = 120) -> str:
    """A value for a sentence: text quoted, anything else as JSON; runs of white space shown as one space
    (padding cannot push a payload out of sight), cut at `width` characters."""
    if value is None:
        return "unset"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return repr(text) if isinstance(value, str) else text


def changed_keys(
    aspect: str, label: str, theirs: dict[str, Any], mine: dict[str, Any]
) -> list[ServingChange]:
    """A change per key whose value differs, in a sentence quoting both values."""
    return [
        ServingChange(
            aspect,
            key,
            f"the update's {label}{key} is {quoted(mine.get(key))} (the parent's: {quoted(theirs.get(key))})",
        )
        for key in sorted(set(mine) | set(theirs))
        if mine.get(key) != theirs.get(key)
    ]
