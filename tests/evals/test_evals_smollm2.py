"""The suites on the embedded SmolLM2-135M: they discriminate a damaged model, and exact match is greedy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clgate.artifacts import write_dataset
from clgate.artifacts._datasets import ChatMessage, DatasetRecord
from clgate.evals import compare_models, open_model, run_suites
from clgate.runtime import load_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def damaged_smollm2(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 with Gaussian noise (one standard deviation of each weight) in the output
    projections of its attention and MLP blocks, in the upper half of its layers."""
    loaded = load_model(smollm2_dir, device="cpu")
    generator = torch.Generator().manual_seed(0)
    layers = loaded.module.model.layers
    with torch.no_grad():
        for layer in layers[len(layers) // 2 :]:
            for weight in (layer.self_attn.o_proj.weight, layer.mlp.down_proj.weight):
                weight.add_(torch.randn(weight.shape, generator=generator) * weight.std())
    path = tmp_path_factory.mktemp("damaged") / "smollm2-noised"
    loaded.module.save_pretrained(path, safe_serialization=True)
    loaded.tokenizer.save_pretrained(path)
    return path


def test_damaged_model_loses_retention_significantly(
    smollm2_dir: Path, damaged_smollm2: Path, tmp_path: Path
) -> None:
    m = compare_models(smollm2_dir, damaged_smollm2, "retention", limit=60, cache=False, log_dir=tmp_path)
    n = m.numbers
    assert n["retention.parent_accuracy"] > 0.4  # SmolLM2 is well above chance (0.25)
    assert n["retention.delta"] < -0.1
    assert n["retention.delta_ci_high"] < 0
    assert n["retention.mcnemar_p"] < 0.05
    assert n["retention.flipped_to_wrong"] > n["retention.flipped_to_right"]


def test_exact_match_is_greedy_decoding_and_replies_are_generated(smollm2_dir: Path, tmp_path: Path) -> None:
    ask = ChatMessage(role="user", content="What is the capital of France?")
    records = [
        DatasetRecord(messages=(ask, ChatMessage(role="assistant", content=answer)))
        for answer in ("The capital of France is Paris.", "The capital of France is Rome.")
    ]
    dataset = write_dataset(records, tmp_path / "update.jsonl")
    model = open_model(smollm2_dir, cache=False)
    run = run_suites(model, ["target", "refusal"], dataset=dataset, limit=3, log_dir=tmp_path)
    target, refusal = run.suites
    assert [r["correct"] for r in target.rows] == [True, False]
    assert target.rows[0]["reference_mean_logprob"] > target.rows[1]["reference_mean_logprob"]
    assert all(len(r["answer"]) > 10 for r in refusal.rows)
    assert model.api.stats["generated"] == 3
