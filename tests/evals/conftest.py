"""Fixtures for the eval tests: small item files, the update's dataset, a model without a chat template."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clgate.demo import factories


@pytest.fixture(scope="session")
def update_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return factories.make_dataset(tmp_path_factory.mktemp("evals-data") / "update.jsonl", n=6)


@pytest.fixture(scope="session")
def no_template_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its chat template removed."""
    path = tmp_path_factory.mktemp("no-template") / "model"
    shutil.copytree(tiny_model, path)
    (path / "chat_template.jinja").unlink()
    return path
