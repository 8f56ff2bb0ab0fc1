"""Loading: tokenizer and weights in the target dtype, LoRA merged where the model is, GGUF per dtype,
and every model that cannot be loaded refused in one line before anything runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from clgate.artifacts import load_lora_adapter
from clgate.artifacts._gguf import _cache_key
from clgate.demo import factories
from clgate.errors import InputError
from clgate.runtime import ModelPool, ModelSpec, load_model, merge_adapter, weights_bytes


def _logits(loaded, text: str = "What is the capital of France?") -> torch.Tensor:
    ids = loaded.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return loaded.module(**ids).logits


def test_hf_directory_loads_with_tokenizer_and_chat_template(tiny_model: Path) -> None:
    loaded = load_model(tiny_model, device="cpu")
    assert loaded.module.config.num_hidden_layers == 2
    assert not loaded.module.training
    prompt = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    assert _logits(loaded).shape[-1] == len(loaded.tokenizer)
    assert loaded.module.dtype == torch.float32 and loaded.device == torch.device("cpu")


def test_lora_adapter_factors_and_merge_match_peft(tiny_model: Path, tiny_lora: Path) -> None:
    adapter = load_lora_adapter(tiny_lora)
    assert adapter.rank == 4 and adapter.modules() == sorted(adapter.modules())
    assert len(adapter.modules()) == 4  # q_proj and v_proj in 2 layers
    factors = next(adapter.factors())
    assert factors.scale == pytest.approx(8 / 4)
    base = load_model(tiny_model, device="cpu")
    merged = load_model(tiny_model, adapter=tiny_lora, device="cpu")
    name = factors.module
    w0 = dict(base.module.named_parameters())[f"{name}.weight"]
    w1 = dict(merged.module.named_parameters())[f"{name}.weight"]
    torch.testing.assert_close(w1 - w0, factors.scale * factors.b @ factors.a, atol=1e-6, rtol=1e-4)
    assert not torch.allclose(_logits(base), _logits(merged))


def test_lora_merges_in_the_models_dtype(tiny_model: Path, tiny_lora: Path) -> None:
    """bf16 on the CPU: the weights load in bf16 and the merge happens there, no fp32 copy kept."""
    merged = load_model(tiny_model, adapter=tiny_lora, device="cpu", dtype="bfloat16")
    assert {p.dtype for p in merged.module.parameters()} == {torch.bfloat16}
    fp32 = load_model(tiny_model, adapter=tiny_lora, device="cpu")
    name = f"{next(load_lora_adapter(tiny_lora).factors()).module}.weight"
    torch.testing.assert_close(
        dict(merged.module.named_parameters())[name].float(),
        dict(fp32.module.named_parameters())[name],
        atol=2e-2,
        rtol=1e-2,
    )


def test_adapter_for_another_base_is_refused(tiny_lora: Path, tmp_path: Path) -> None:
    wider = factories.make_tiny_model(tmp_path / "wider", hidden_size=96)
    model = load_model(wider, device="cpu").module
    with pytest.raises(InputError, match="does not fit this base model"):
        merge_adapter(model, tiny_lora)
    with pytest.raises(InputError, match="adapter does not fit base"):  # asked of a pool: before loading
        ModelPool().get(ModelSpec(wider, tiny_lora, "cpu"))


def test_corrupt_weights_are_named_before_transformers_sees_them(tiny_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    with pytest.raises(InputError, match=r"copy/model\.safetensors: truncated"):
        load_model(copy)


def test_weights_bytes_counts_the_target_dtype(tiny_model: Path) -> None:
    module = load_model(tiny_model, device="cpu").module
    fp32 = sum(p.numel() * 4 for p in module.parameters())
    assert weights_bytes(tiny_model, "float32") == fp32
    assert weights_bytes(tiny_model, "bfloat16") == fp32 // 2


def test_a_model_larger_than_free_memory_is_refused_up_front(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clgate.runtime import _fit

    monkeypatch.setattr(_fit, "free_bytes", lambda device: 1024)
    pool = ModelPool()
    with pytest.raises(
        InputError, match=r"does not fit: 0\.0 GiB of weights in float32, 0\.0 GiB of RAM"
    ) as err:
        pool.get(ModelSpec(tiny_model, device="cpu"))
    assert len(str(err.value).splitlines()) == 1 and pool.loads == 0


def test_a_pool_releases_its_other_models_when_the_next_does_not_fit(
    tiny_model: Path, tiny_model_other: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory for one model only: the pool gives the first back, and loads it again when asked again."""
    from clgate.runtime import _fit

    one = weights_bytes(tiny_model, "float32")
    pool = ModelPool()
    parent, candidate = (pool.get(ModelSpec(p, device="cpu")) for p in (tiny_model, tiny_model_other))
    monkeypatch.setattr(
        _fit, "free_bytes", lambda device: int(1.5 * one) - one * sum(m.loaded for m in (parent, candidate))
    )
    assert parent.module is not None and not candidate.loaded
    assert candidate.module is not None and not parent.loaded
    assert parent.module is not None and (parent.loads, candidate.loads, pool.loads) == (2, 1, 3)


def test_gguf_cache_is_keyed_by_content_and_dtype(tmp_path: Path) -> None:
    first, moved = tmp_path / "a.gguf", tmp_path / "elsewhere" / "a.gguf"
    first.write_bytes(b"GGUF" + bytes(64))
    moved.parent.mkdir()
    shutil.copy(first, moved)
    assert _cache_key(first, "float32") == _cache_key(moved, "float32") != _cache_key(first, "bfloat16")
    before = _cache_key(first, "float32")
    first.write_bytes(b"GGUF" + bytes(63) + b"\x01")  # same size, new content
    assert _cache_key(first, "float32") != before


@pytest.mark.integration
def test_embedded_gguf_dequantises_straight_to_bf16(smollm2_dir: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    from clgate.artifacts import embedded_model_dir

    bf16 = embedded_model_dir(dtype="bfloat16")
    assert bf16 != smollm2_dir and bf16.parent == smollm2_dir.parent
    with safe_open(str(bf16 / "model.safetensors"), framework="pt") as fh:
        names = fh.keys()
        assert {fh.get_slice(k).get_dtype() for k in names} == {"BF16"}
    size = (bf16 / "model.safetensors").stat().st_size
    assert size < 0.55 * (smollm2_dir / "model.safetensors").stat().st_size
