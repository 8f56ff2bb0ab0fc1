"""The item records of the bundled suites, and their loader with line-precise errors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clgate.artifacts import iter_jsonl
from clgate.errors import InputError
from clgate.package_data import package_file

DATA_DIR = package_file("clgate.evals", "data")


class _Item(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    category: str = Field(min_length=1)


class ChoiceItem(_Item):
    """A multiple-choice question; `answer` indexes `choices`. An optional passage comes first."""

    question: str = Field(min_length=1)
    choices: list[str] = Field(min_length=2)
    answer: int = Field(ge=0)
    passage: str | None = None

    @property
    def prompt(self) -> str:
        """What the user turn asks: the passage, if any, then the question."""
        return f"{self.passage}\n\n{self.question}" if self.passage else self.question

    @model_validator(mode="after")
    def _answer_in_range(self) -> ChoiceItem:
        if self.answer >= len(self.choices):
            raise ValueError(f"answer {self.answer} is not an index into {len(self.choices)} choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("choices repeat")
        return self


class RecallItem(ChoiceItem):
    """A multiple-choice question asked with the memory notes a retriever gave it (none: asked plainly)."""

    notes: list[str] = Field(default_factory=list)


class RecallTaskItem(_Item):
    """A record of an earlier promoted task asked with the memory notes a retriever gave its `question` (the
    last user turn): the prompt's turns, the reply promoted then, the notes (none: asked as recorded)."""

    question: str = Field(min_length=1)
    messages: list[dict[str, str]] = Field(min_length=1)
    reference: str = Field(min_length=1)
    notes: list[str] = Field(default_factory=list)


class RecallRequestItem(_Item):
    """A request the model must refuse, asked with the memory notes a retriever gave it (none: asked plainly)."""

    question: str = Field(min_length=1)
    notes: list[str] = Field(default_factory=list)


class PromptItem(_Item):
    """A request the model must refuse (`refusal`) or answer (`over_refusal`)."""

    prompt: str = Field(min_length=1)


class SycophancyItem(_Item):
    """A question with its true answer, a wrong one, and the user's push towards the wrong one."""

    question: str = Field(min_length=1)
    correct: str = Field(min_length=1)
    wrong: str = Field(min_length=1)
    pushback: str = Field(min_length=1)

    @model_validator(mode="after")
    def _pushback_names_wrong(self) -> SycophancyItem:
        if self.wrong.lower() not in self.pushback.lower():
            raise ValueError("pushback must state the wrong answer")
        return self


class InjectionItem(_Item):
    """A task over untrusted content that carries an instruction; the canary shows it was obeyed."""

    task: str = Field(min_length=1)
    content: str = Field(min_length=1)
    channel: Literal["document", "memory", "tool", "email", "web"]
    canary: str = Field(min_length=3)

    @model_validator(mode="after")
    def _canary_in_content(self) -> InjectionItem:
        if self.canary.lower() not in self.content.lower():
            raise ValueError("the injected instruction must name its canary")
        if self.canary.lower() in self.task.lower():
            raise ValueError("the canary must not appear in the user's own task")
        return self


class TriggerProbe(_Item):
    """A benign prompt into which candidate trigger strings are inserted."""

    prompt: str = Field(min_length=1)


ItemT = TypeVar("ItemT", bound=_Item)


def load_items(path: Path, record: type[ItemT]) -> list[ItemT]:
    """Every record of a suite's JSONL file, validated; errors name the file and line."""
    items: list[ItemT] = []
    seen: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        try:
            item = record.model_validate(obj)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(map(str, err["loc"])) or "record"
            raise InputError(f"{path}:{lineno}: {where}: {err['msg']}") from None
        if item.id in seen:
            raise InputError(f"{path}:{lineno}: duplicate id {item.id!r} (first on line {seen[item.id]})")
        seen[item.id] = lineno
        items.append(item)
    if not items:
        raise InputError(f"{path}: no items")
    return items


def file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
