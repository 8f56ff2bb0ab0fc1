"""Shared fixtures: tiny artifacts built once per session, and the embedded SmolLM2 for integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from clgate.artifacts import embedded_model_dir
from clgate.artifacts import testing as factories


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return factories.make_tiny_model(tmp_path_factory.mktemp("tiny") / "base", seed=0)


@pytest.fixture(scope="session")
def tiny_model_other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture, different random weights: a full fine-tune stand-in."""
    return factories.make_tiny_model(tmp_path_factory.mktemp("tiny") / "other", seed=1)


@pytest.fixture(scope="session")
def tiny_lora(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return factories.make_tiny_lora(tiny_model, tmp_path_factory.mktemp("lora") / "adapter", seed=0)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct as a safetensors directory (dequantised once, cached)."""
    return embedded_model_dir()


@pytest.fixture(autouse=True)
def verifier_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's verifiers remember the heads they saw in a folder of its own, never in $HOME."""
    folder = tmp_path_factory.mktemp("heads")
    monkeypatch.setenv("CLGATE_STATE_DIR", str(folder))
    return folder
