"""The model pool: one load per model per gate, shared by every check; hook capture and hidden states."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clgate.runtime import FINAL, ModelPool, ModelSpec, load_model, resid_post


def test_a_pool_hands_out_one_model_per_model_adapter_and_placement(
    tiny_model: Path, tiny_lora: Path
) -> None:
    pool = ModelPool()
    base = pool.get(ModelSpec(tiny_model, device="cpu"))
    assert pool.get(ModelSpec(tiny_model, device="cpu")) is base
    assert pool.get(ModelSpec(Path(str(tiny_model) + "/"), device="auto")) is base  # same model, same place
    merged = pool.get(ModelSpec(tiny_model, tiny_lora, device="cpu"))
    bf16 = pool.get(ModelSpec(tiny_model, device="cpu", dtype="bfloat16"))
    assert len({id(base), id(merged), id(bf16)}) == 3
    assert pool.loads == 0  # asking checks files; weights load on first use
    assert base.module is base.module is not merged.module
    assert (base.loads, merged.loads, bf16.loads, pool.loads) == (1, 1, 0, 2)
    pool.close()
    assert not base.loaded and not merged.loaded


def test_a_pool_hashes_each_checkpoint_once_for_all_its_models(
    tiny_model: Path, tiny_lora: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clgate.runtime import _pool

    hashed: list[tuple[Path, Path | None]] = []
    real = _pool.model_digest
    monkeypatch.setattr(
        _pool, "model_digest", lambda path, adapter: hashed.append((path, adapter)) or real(path, adapter)
    )
    with ModelPool() as pool:
        fp32, bf16 = (pool.get(ModelSpec(tiny_model, device="cpu", dtype=d)) for d in ("float32", "bfloat16"))
        merged = pool.get(ModelSpec(tiny_model, tiny_lora, device="cpu"))
        assert fp32.digest == bf16.digest == real(tiny_model, None) != merged.digest
    assert len(hashed) == 2  # the checkpoint once for both placements, and once with the adapter


def test_policy_options_choose_a_checks_placement(tiny_model: Path) -> None:
    from clgate.audit.check_inputs import GateInputs

    inputs = GateInputs(parent=tiny_model, device="cpu", options={"evals": {"dtype": "bfloat16"}})
    assert inputs.placement("evals") == {"device": "cpu", "dtype": "bfloat16"}
    assert inputs.placement("activations") == {"device": "cpu", "dtype": "auto"}
    assert (inputs.numerics("evals"), inputs.numerics("activations")) == ("cpu-bfloat16", "cpu-float32")


def test_hidden_states_are_the_decoder_layer_outputs(tiny_model: Path) -> None:
    model = load_model(tiny_model, device="cpu")
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    with torch.inference_mode():
        states = model.hidden(ids, mask, hooks=[resid_post(0), FINAL])
        reference = model.module(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert torch.equal(states.at[resid_post(0)], reference[1])
    assert torch.equal(states.at[FINAL], reference[2]) and torch.equal(states.last, reference[2])


def test_a_prompt_head_cache_gives_the_states_of_the_whole_prompt(tiny_model: Path) -> None:
    model = load_model(tiny_model, device="cpu")
    full = torch.tensor([[5, 6, 7, 8, 9, 10, 11]])
    with torch.inference_mode():
        whole = model.hidden(full, torch.ones_like(full)).last
        cache = model.head_cache([5, 6, 7], rows=2)
        rest = torch.tensor([[8, 9, 10, 11], [8, 9, 10, 11]])
        part = model.hidden(rest, torch.ones((2, 7), dtype=torch.long), cache=cache).last
    torch.testing.assert_close(part[1], whole[0, 3:], atol=1e-5, rtol=1e-5)


def test_unknown_hook_points_are_named(tiny_model: Path) -> None:
    from clgate.errors import InputError

    model = load_model(tiny_model, device="cpu")
    ids = torch.tensor([[5, 6]])
    with pytest.raises(InputError, match=r"unknown hook point 'blocks\.2\.hook_resid_post'"):
        model.hidden(ids, torch.ones_like(ids), hooks=[resid_post(2)])
