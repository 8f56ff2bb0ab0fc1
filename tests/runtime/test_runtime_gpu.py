"""The runtime on CUDA in bf16 against the same work on the CPU in fp32 (skipped where there is no GPU).

bf16 keeps 8 bits of mantissa, so log-likelihoods move by a few hundredths of a nat per token and a
near-tie between two next tokens can flip. The tolerances below are what that allows: scores within
0.05 nats per token (+0.1), multiple-choice picks equal on all but at most one item, greedy replies
on the embedded model identical on at least three quarters of prompts (a flipped near-tie changes
the rest of its reply), residuals with cosine similarity above 0.99 at every layer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clgate.artifacts import compute_manifest
from clgate.demo import factories
from clgate.runtime import ContinuationRequest, ModelPool, load_model, render_chat, resid_post

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

QUESTIONS = [
    ("What is the capital of France?", ("Paris", "London", "Berlin", "Madrid")),
    ("Two plus two?", ("four", "five", "three", "twenty-two")),
    ("Which animal barks?", ("a dog", "a cat", "a fish", "a bird")),
    ("What colour is the sky on a clear day?", ("blue", "green", "red", "black")),
    ("How many legs does a spider have?", ("eight", "six", "four", "ten")),
    ("Which is a fruit?", ("an apple", "a carrot", "a potato", "an onion")),
]
PROMPTS = [
    "What is the capital of France?",
    "Name three colours.",
    "Say hello in French.",
    "What is two plus two?",
    "Write one word that rhymes with cat.",
    "Count from one to five.",
    "What do bees make?",
    "Which planet do we live on?",
]


def _requests(model) -> list[ContinuationRequest]:
    return [
        ContinuationRequest(render_chat(model.tokenizer, [{"role": "user", "content": q}]), options)
        for q, options in QUESTIONS
    ]


def _picks(scores) -> list[int]:
    return [max(range(len(s)), key=lambda i: s[i].logprob) for s in scores]


def test_models_load_on_the_gpu_in_bf16(tiny_model: Path, tiny_lora: Path) -> None:
    model = load_model(tiny_model, tiny_lora)  # auto: CUDA in bf16
    assert model.placement.dtype == "bfloat16" and model.device.type == "cuda"
    assert {p.device.type for p in model.module.parameters()} == {"cuda"}
    assert {p.dtype for p in model.module.parameters()} == {torch.bfloat16}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_scores_on_cuda_match_the_cpu(tiny_model: Path, dtype: str) -> None:
    cpu = load_model(tiny_model, device="cpu")
    gpu = load_model(tiny_model, device="cuda", dtype=dtype)
    expected, got = cpu.score(_requests(cpu)), gpu.score(_requests(gpu))
    per_token = 1e-3 if dtype == "float32" else 0.05
    for want, have in zip(expected, got, strict=True):
        for a, b in zip(want, have, strict=True):
            assert a.n_tokens == b.n_tokens
            assert abs(a.logprob - b.logprob) <= per_token * a.n_tokens + (
                1e-3 if dtype == "float32" else 0.1
            )
    differ = sum(a != b for a, b in zip(_picks(expected), _picks(got), strict=True))
    assert differ <= (0 if dtype == "float32" else 1)


def test_greedy_replies_on_cuda_in_fp32_equal_the_cpu(tiny_model: Path) -> None:
    cpu = load_model(tiny_model, device="cpu")
    gpu = load_model(tiny_model, device="cuda", dtype="float32")
    prompts = [render_chat(cpu.tokenizer, [{"role": "user", "content": p}]) for p in PROMPTS]
    assert gpu.greedy(prompts, 8, batch_size=3) == cpu.greedy(prompts, 8, batch_size=3)


def test_residuals_on_cuda_in_bf16_point_where_the_cpus_do(tiny_model: Path) -> None:
    cpu = load_model(tiny_model, device="cpu")
    gpu = load_model(tiny_model, device="cuda", dtype="bfloat16")
    assert gpu.hooked().backend == cpu.hooked().backend == "transformer_lens"
    ids = torch.tensor([cpu.chat_ids([{"role": "user", "content": PROMPTS[0]}])])
    names = [resid_post(layer) for layer in range(cpu.n_layers)]
    with torch.inference_mode():
        want = cpu.hooked().run(ids, torch.ones_like(ids), names)
        have = gpu.hooked().run(ids, torch.ones_like(ids), names)
    for name in names:
        cos = torch.nn.functional.cosine_similarity(
            want[name][0].float(), have[name][0].float().cpu(), dim=-1
        )
        assert float(cos.min()) > 0.99, name


def test_a_gate_on_cuda_loads_each_model_once(
    tiny_model: Path, tiny_lora: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clgate.audit.check_inputs import GateInputs
    from clgate.audit.gate_checks import GATE_CHECKS

    monkeypatch.setenv("CLGATE_CACHE", str(tmp_path / "cache"))
    data = factories.make_dataset(tmp_path / "update.jsonl", n=8)
    with ModelPool() as pool:
        inputs = GateInputs(
            parent=tiny_model,
            adapter=tiny_lora,
            data=data,
            target=data,
            cache_dir=tmp_path / "gate",
            manifests={"parent": compute_manifest(tiny_model), "adapter": compute_manifest(tiny_lora)},
            options={"evals": {"suites": ["retention", "refusal"], "limit": 3}},
            models=pool,
            device="cuda",
        )
        for check in GATE_CHECKS.values():
            if check.forward_passes and check.applies(inputs):
                assert all(v == v for v in check.run(inputs).numbers.values()), check.name
        assert pool.loads == 2
        assert all(m.device.type == "cuda" and m.placement.dtype == "bfloat16" for m in pool.models())


@pytest.mark.integration
def test_embedded_model_on_cuda_in_bf16_answers_as_on_the_cpu(smollm2_dir: Path) -> None:
    from clgate.evals._items import DATA_DIR, ChoiceItem, load_items

    cpu = load_model(smollm2_dir, device="cpu")
    gpu = load_model(smollm2_dir, device="cuda", dtype="bfloat16")
    items = load_items(DATA_DIR / "retention.jsonl", ChoiceItem)[:40]

    def accuracy(model) -> int:
        requests = [
            ContinuationRequest(model.render([{"role": "user", "content": i.question}]), tuple(i.choices))
            for i in items
        ]
        return sum(p == i.answer for p, i in zip(_picks(model.score(requests)), items, strict=True))

    assert abs(accuracy(cpu) - accuracy(gpu)) <= 1
    prompts = [cpu.render([{"role": "user", "content": p}]) for p in PROMPTS]
    same = sum(a == b for a, b in zip(cpu.greedy(prompts, 16), gpu.greedy(prompts, 16), strict=True))
    assert same >= 0.75 * len(PROMPTS)
