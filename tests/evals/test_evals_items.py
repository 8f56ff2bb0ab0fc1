"""Bundled datasets meet their sizes; malformed item lines are named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from clgate.errors import InputError
from clgate.evals import ChoiceItem, InjectionItem, PromptItem, SycophancyItem, TriggerProbe, load_items
from clgate.evals._items import DATA_DIR

BUNDLED = [
    ("retention", ChoiceItem, 200),
    ("refusal", PromptItem, 100),
    ("over_refusal", PromptItem, 100),
    ("sycophancy", SycophancyItem, 50),
    ("honesty", ChoiceItem, 50),
    ("prompt_injection", InjectionItem, 50),
    ("trigger_probes", TriggerProbe, 10),
]


@pytest.mark.parametrize(("name", "record", "minimum"), BUNDLED)
def test_bundled_dataset_has_its_size_and_a_datasheet(name: str, record: type, minimum: int) -> None:
    items = load_items(DATA_DIR / f"{name}.jsonl", record)
    assert len(items) >= minimum
    sheet = (DATA_DIR / f"{name}.md").read_text()
    for heading in ("Purpose", "Size", "How the items were written", "Known limits"):
        assert heading in sheet, f"{name}.md lacks {heading!r}"
    assert str(len(items)) in sheet


def test_retention_covers_four_skills_and_spreads_answers() -> None:
    items = load_items(DATA_DIR / "retention.jsonl", ChoiceItem)
    cats = {i.category for i in items}
    assert cats == {"general_knowledge", "arithmetic", "commonsense", "reading_comprehension"}
    positions = [i.answer for i in items]
    assert all(positions.count(k) > len(items) / 8 for k in range(4))
    first40 = {i.category for i in items[:40]}
    assert first40 == cats  # interleaved, so --limit N stays balanced


def test_arithmetic_items_are_right() -> None:
    import re

    for item in load_items(DATA_DIR / "retention.jsonl", ChoiceItem):
        m = re.fullmatch(r"What is (\d+) ([+\-×÷]) (\d+)\?", item.question)
        if item.category == "arithmetic" and m:
            a, op, b = int(m[1]), m[2], int(m[3])
            value = {"+": a + b, "-": a - b, "×": a * b, "÷": a // b}[op]
            assert item.choices[item.answer] == str(value), item.id


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = '{"id": "a", "category": "c", "question": "Q?", "choices": ["x", "y"], "answer": 1}'


@pytest.mark.parametrize(
    ("lines", "record", "message"),
    [
        ([GOOD, "{not json"], ChoiceItem, "items.jsonl:2: not valid JSON"),
        (
            ['{"id": "a", "category": "c", "choices": ["x", "y"], "answer": 0}'],
            ChoiceItem,
            ":1: question: Field required",
        ),
        (
            [GOOD.replace('"answer": 1', '"answer": 5')],
            ChoiceItem,
            ":1: record: Value error, answer 5 is not an index",
        ),
        ([GOOD, GOOD], ChoiceItem, ":2: duplicate id 'a' (first on line 1)"),
        ([GOOD.replace("}", ', "extra": 1}')], ChoiceItem, ":1: extra: Extra inputs are not permitted"),
        (
            [
                '{"id": "i", "category": "c", "task": "Sum up.", "content": "Say HI-1", "channel": "document", "canary": "BYE-2"}'
            ],
            InjectionItem,
            "must name its canary",
        ),
        (
            [
                '{"id": "s", "category": "c", "question": "Q?", "correct": "A", "wrong": "Bee", "pushback": "No."}'
            ],
            SycophancyItem,
            "pushback must state the wrong answer",
        ),
        ([""], PromptItem, "no items"),
    ],
)
def test_malformed_item_lines_are_named(tmp_path: Path, lines: list[str], record: type, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_items(_write(tmp_path, lines), record)
