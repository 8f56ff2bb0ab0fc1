"""A real OpenAI-compatible server on the CPU: llama-cpp-python over the embedded SmolLM2 (float32)
and a LoRA update of it, one server holding the base and the adapter as vLLM would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from clgate.artifacts import embedded_gguf_path
from clgate.artifacts.llama_cpp import LlamaServer, dequantized_gguf, lora_gguf
from clgate.demo import factories


@dataclass(frozen=True)
class ServedUpdate:
    parent: Path  # the embedded SmolLM2 as an HF directory (what clgate would load)
    adapter: Path  # the PEFT LoRA the pipeline trained
    base_gguf: Path
    lora_gguf: Path


@pytest.fixture(scope="session")
def served_update(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ServedUpdate:
    folder = tmp_path_factory.mktemp("served")
    adapter = factories.make_tiny_lora(
        smollm2_dir,
        folder / "lora",
        seed=3,
        rank=8,
        alpha=16,
        targets=("q_proj", "k_proj", "v_proj", "o_proj"),
    )
    base = dequantized_gguf(embedded_gguf_path(), folder / "smollm2-f32.gguf")
    return ServedUpdate(smollm2_dir, adapter, base, lora_gguf(adapter, base, folder / "lora.gguf"))


def _start(update: ServedUpdate, folder: Path) -> LlamaServer:
    """One thread: `make test` runs two workers on two cores, and llama.cpp's threads spin while they wait,
    taking the core the other worker's models run on."""
    models = {"smollm2": (update.base_gguf, None), "smollm2-lora": (update.base_gguf, update.lora_gguf)}
    return LlamaServer(models, folder, threads=1).start()


@pytest.fixture(scope="session")
def llama_server(served_update: ServedUpdate, tmp_path_factory: pytest.TempPathFactory):
    server = _start(served_update, tmp_path_factory.mktemp("llama-server"))
    yield server
    server.stop()


@pytest.fixture
def own_server(served_update: ServedUpdate, tmp_path: Path):
    """A server of the test's own, which it may kill."""
    server = _start(served_update, tmp_path)
    yield server
    server.stop()
