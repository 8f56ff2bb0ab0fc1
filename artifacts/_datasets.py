"""Training datasets of an update, as JSONL chat or instruction records, read as a stream.

Accepted line shapes, all normalised to a list of chat messages:
  {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}
  {"instruction": ..., "input": ..., "output": ...}
  {"prompt": ..., "completion": ...}
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from clgate.artifacts._jsonl import iter_jsonl, write_jsonl
from clgate.errors import InputError


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str


class DatasetRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: tuple[ChatMessage, ...]
    metadata: dict[str, Any] = {}

    @property
    def prompt_messages(self) -> tuple[ChatMessage, ...]:
        """Everything before the final assistant turn: what the model is asked."""
        return self.messages[:-1] if self.messages[-1].role == "assistant" else self.messages

    @property
    def completion(self) -> str:
        """The final assistant turn: what the update teaches the model to answer."""
        return self.messages[-1].content if self.messages[-1].role == "assistant" else ""


def _normalise(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    if "messages" in obj:
        return {"messages": obj["messages"], "metadata": meta}
    if "instruction" in obj:
        prompt = obj["instruction"] + (f"\n\n{obj['input']}" if obj.get("input") else "")
        return {
            "messages": [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": obj["output"]},
            ],
            "metadata": meta,
        }
    if "prompt" in obj:
        return {
            "messages": [
                {"role": "user", "content": obj["prompt"]},
                {"role": "assistant", "content": obj["completion"]},
            ],
            "metadata": meta,
        }
    raise KeyError("messages")


def iter_dataset(path: Path) -> Iterator[DatasetRecord]:
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        try:
            record = DatasetRecord.model_validate(_normalise(obj))
        except KeyError as exc:
            raise InputError(
                f"{where}: missing field {exc.args[0]!r} (need messages, instruction/output "
                "or prompt/completion)"
            ) from None
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InputError(f"{where}: field {'.'.join(map(str, err['loc']))!r}: {err['msg']}") from None
        if not record.messages:
            raise InputError(f"{where}: record has no messages")
        yield record


def load_dataset(path: Path) -> list[DatasetRecord]:
    records = list(iter_dataset(path))
    if not records:
        raise InputError(f"{path}: dataset is empty")
    return records


def write_dataset(records: list[DatasetRecord], path: Path) -> Path:
    return write_jsonl(path, [r.model_dump(mode="json") for r in records])
