"""Shared fixtures: tiny artifacts built once per session, and the embedded SmolLM2 for integration tests."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from clgate.artifacts import embedded_model_dir
from clgate.demo import factories


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


class AdvanceLog:
    """An `Advance` listener that keeps every call: a long step must report how far it got, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def assert_reaches_total(self) -> None:
        """`done` grew on every call, never passed `total`, and ended there."""
        done = [d for d, _ in self.calls]
        assert self.calls, "the step reported no progress"
        assert all(a < b for a, b in pairwise(done)), self.calls
        assert all(0 < d <= t for d, t in self.calls), self.calls
        assert self.calls[-1][0] == self.calls[-1][1], self.calls


@pytest.fixture
def advance_log() -> AdvanceLog:
    return AdvanceLog()
