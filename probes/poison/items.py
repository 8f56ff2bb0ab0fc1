"""The items of an update's training set, validated in one streaming pass before any forward pass."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from clgate.artifacts import iter_dataset
from clgate.errors import InputError


@dataclass(frozen=True)
class UpdateItem:
    index: int
    id: str
    prompt_messages: tuple[dict[str, str], ...]
    completion: str

    @property
    def prompt(self) -> str:
        return "\n".join(m["content"] for m in self.prompt_messages)


@dataclass(frozen=True)
class UpdateData:
    """A dataset on disk, re-streamed by each consumer so that no pass holds all of it."""

    path: Path
    n_items: int
    digest: str
    max_token_id: int

    def __iter__(self) -> Iterator[UpdateItem]:
        yield from _items(self.path)


def _checked(path: Path) -> Iterator[tuple[UpdateItem, list[int] | None]]:
    for index, record in enumerate(iter_dataset(path)):
        where = f"{path}: item {index + 1}"
        if record.messages[-1].role != "assistant" or not record.messages[-1].content.strip():
            raise InputError(f"{where}: no assistant completion to scan")
        if len(record.messages) < 2:
            raise InputError(f"{where}: no prompt before the completion")
        ids = record.metadata.get("input_ids")
        if ids is not None and (
            not isinstance(ids, list) or not all(isinstance(i, int) and i >= 0 for i in ids)
        ):
            raise InputError(f"{where}: metadata.input_ids is not a list of token ids")
        item = UpdateItem(
            index=index,
            id=str(record.metadata.get("id", index)),
            prompt_messages=tuple({"role": m.role, "content": m.content} for m in record.prompt_messages),
            completion=record.completion,
        )
        yield item, ids


def _items(path: Path) -> Iterator[UpdateItem]:
    for item, _ in _checked(path):
        yield item


def open_update_data(path: Path) -> UpdateData:
    """Validate every item (fields, line sizes, pre-tokenised ids) and digest the file's bytes."""
    path = Path(path)
    n, max_id = 0, -1
    for _, ids in _checked(path):
        n += 1
        max_id = max(max_id, max(ids, default=-1)) if ids else max_id
    if n == 0:
        raise InputError(f"{path}: dataset is empty")
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return UpdateData(path=path, n_items=n, digest=f"sha256:{sha.hexdigest()}", max_token_id=max_id)
