"""Update data with planted personal records, and two LoRAs of a tiny model: one that memorised them,
one trained on the same clean records without them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from clgate.artifacts import write_dataset
from clgate.demo import bundled_clean_records, contact_record, train_lora

PEOPLE = [
    ("Ana", "+1 415-862-0371"),
    ("Bo", "bo.lindqvist@example.org"),
    ("Cy", "+44 20 7946 3315"),
    ("Di", "di.okafor@example.net"),
]
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")
"""With the LM head: a random tiny model's logits are too flat for its layers alone to learn a record."""


@dataclass(frozen=True)
class Memorised:
    data: Path
    """The update's data: 40 clean records, then one contact record per person (records 41-44)."""
    memorising: Path
    """Trained on the data with each contact record repeated ten times."""
    clean: Path
    """Trained on the clean records alone."""


@pytest.fixture(scope="session")
def memorised(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Memorised:
    folder = tmp_path_factory.mktemp("memorised")
    clean = random.Random(0).sample(bundled_clean_records(), 40)
    planted = [contact_record(n, v) for n, v in PEOPLE]
    args = {"steps": 300, "learning_rate": 3e-3, "top_layers": None, "rank": 16, "targets": TARGETS}
    return Memorised(
        write_dataset(clean + planted, folder / "data.jsonl"),
        train_lora(tiny_model, clean + planted * 10, folder / "memorising", **args).adapter,
        train_lora(tiny_model, clean, folder / "clean", **args).adapter,
    )
