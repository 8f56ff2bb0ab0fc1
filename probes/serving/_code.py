"""Code a candidate ships: the model or tokenizer class a server that trusts remote code runs instead of
the library's own, which is what the gate loaded and judged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clgate.artifacts import artifact_files
from clgate.errors import InputError
from clgate.json_input import read_json
from clgate.probes.serving._changes import ServingChange, quoted

AUTO_MAP_FILES = ("config.json", "tokenizer_config.json")
"""Where transformers looks for `auto_map`: the model's and the tokenizer's class, from the folder's code."""


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object file, `{}` where there is none; anything else is bad input naming the file."""
    if not path.is_file():
        return {}
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a JSON object")
    return data


def _auto_map(path: Path) -> Any:
    value = read_json_object(path).get("auto_map")
    if value is not None and not (
        isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, str | None) for v in value))
    ):
        raise InputError(f"{path}: its auto_map is neither an object nor a list of class names")
    return value


def code_changes(parent: Path, candidate: Path) -> list[ServingChange]:
    """Python files the candidate holds that the parent does not hold byte for byte, and `auto_map`s that
    point a transformers class at the folder's code where the parent's did not."""
    changes = []
    for path in artifact_files(candidate):
        if path.suffix != ".py":
            continue
        relative = path.relative_to(candidate)
        theirs = parent / relative
        if not theirs.is_file() or theirs.read_bytes() != path.read_bytes():
            changes.append(
                ServingChange("code", str(relative), f"the update ships the Python file {str(relative)!r}")
            )
    for name in AUTO_MAP_FILES:
        mine, theirs = _auto_map(candidate / name), _auto_map(parent / name)
        if mine and mine != theirs:
            changes.append(
                ServingChange(
                    "code",
                    f"{name}:auto_map",
                    f"the update's {name} maps transformers classes to the folder's own code ({quoted(mine)})",
                )
            )
    return changes
