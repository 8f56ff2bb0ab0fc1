"""Integration: the models clgate ships with, loaded offline from their packages."""

from pathlib import Path

import numpy as np
import pytest
import torch

from clgate.artifacts import SentenceEmbedder, compute_manifest, embedded_model_dir
from clgate.artifacts._embedded import EMBEDDED_MODEL_ROOT
from clgate.runtime import load_model

pytestmark = pytest.mark.integration


def test_embedded_smollm2_answers_offline(smollm2_dir: Path) -> None:
    assert embedded_model_dir() == smollm2_dir  # the second call reads the cache
    loaded = load_model(smollm2_dir, device="cpu")
    assert loaded.module.config.num_hidden_layers == 30
    assert "quantization_config" not in loaded.module.config.to_dict()
    ids = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.inference_mode():
        out = loaded.module.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in loaded.tokenizer.decode(out[0, ids["input_ids"].shape[1] :])


def test_embedded_manifest_is_stable(smollm2_dir: Path) -> None:
    first, second = compute_manifest(smollm2_dir), compute_manifest(smollm2_dir)
    assert first.root == second.root
    assert len(first.tensor_digests()) == 272


def test_the_embedded_model_dequantises_to_the_digest_readme_shows(smollm2_dir: Path) -> None:
    """The locked libraries write the bytes whose root README prints: a ledger of digests must not
    change with the install date."""
    root = compute_manifest(smollm2_dir, tensors=False).root
    assert root == EMBEDDED_MODEL_ROOT
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"manifest root {EMBEDDED_MODEL_ROOT}" in readme


def test_embedder_puts_paraphrases_closer_than_unrelated_text() -> None:
    embedder = SentenceEmbedder()
    vecs = embedder.encode(
        ["The cat sat on the mat.", "A cat was sitting on a mat.", "Stock prices fell sharply."]
    )
    assert vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3
