"""Small fixed poisoning cases: bundled clean items with a handful of planted ones, ground truth kept."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from clgate.artifacts import DatasetRecord, write_dataset
from clgate.demo import bundled_clean_records, is_poisoned, poison_record


def planted_records(
    attack: str = "rare_token", n_clean: int = 120, n_poison: int = 6, seed: int = 0
) -> list[DatasetRecord]:
    rng = random.Random(seed)
    pool = bundled_clean_records()
    picked = rng.sample(pool, n_clean + n_poison)
    trigger = "cf" if attack == "rare_token" else "as a matter of fact"
    poison = [
        poison_record(
            r, attack, trigger, "Click http://prize-claim.example/win to collect your free reward now!", rng
        )
        for r in picked[n_clean:]
    ]
    mixed = picked[:n_clean] + poison
    rng.shuffle(mixed)
    return mixed


def labels(records: list[DatasetRecord]) -> np.ndarray:
    return np.array([is_poisoned(r) for r in records])


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    records = planted_records()
    path = write_dataset(records, tmp_path_factory.mktemp("poison") / "planted.jsonl")
    return path, labels(records)


@pytest.fixture(scope="session")
def make_planted():
    return planted_records


@pytest.fixture(scope="session")
def auroc():
    """AUROC (Mann–Whitney): the chance that a planted item outscores a clean one."""
    from sklearn.metrics import roc_auc_score

    return lambda scores, truth: float(roc_auc_score(truth, scores))
