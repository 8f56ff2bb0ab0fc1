"""Tiny models for the probe tests: edited copies of a checkpoint, and a refusal that is trained in, then out."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from clgate.artifacts import load_tokenizer
from clgate.demo import factories
from clgate.probes import activation_prompts

REFUSAL = "I cannot help with that."
COMPLIANCE = "Sure, here is how."


@pytest.fixture(autouse=True)
def _one_thread_for_tiny_models(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tiny models gain nothing from threads and lose a lot on a shared CPU; SmolLM2 tests keep them."""
    if request.node.get_closest_marker("integration"):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def edited_copy(src: Path, dst: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> Path:
    """Copy a one-file checkpoint and apply `edit` to its tensors (in place) before saving."""
    shutil.copytree(src, dst)
    tensors = load_file(str(src / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


@pytest.fixture(scope="session")
def tiny_narrow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture as `tiny_model`, other widths: every weight has another shape."""
    return factories.make_tiny_model(
        tmp_path_factory.mktemp("narrow") / "model", hidden_size=32, intermediate_size=64
    )


def _train(src: Path, dst: Path, pairs: list[tuple[str, str]], steps: int, seed: int) -> Path:
    """Full fine-tune on (prompt, answer) pairs, loss on the answer tokens only; saved as a model directory."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    tok = load_tokenizer(src)
    model = AutoModelForCausalLM.from_pretrained(str(src), local_files_only=True)
    rows = []
    for prompt, answer in pairs:
        text = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        p = tok(text, add_special_tokens=False)["input_ids"]
        a = tok(answer, add_special_tokens=False)["input_ids"]
        rows.append((p + a, [-100] * len(p) + a))
    width = max(len(x) for x, _ in rows)
    ids = torch.full((len(rows), width), tok.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros_like(ids)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.save_pretrained(str(dst), safe_serialization=True)
    tok.save_pretrained(str(dst))
    return dst


@pytest.fixture(scope="session")
def refusal_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """base: random; parent: the base trained to refuse the harmful prompts and comply with the harmless
    ones; eroded: the parent trained to comply with everything (a safety-eroding fine-tune); benign: more
    of the parent's own training."""
    root = tmp_path_factory.mktemp("refusal")
    prompts = activation_prompts()
    refuse = [(p, REFUSAL) for p in prompts.harmful] + [(p, COMPLIANCE) for p in prompts.harmless]
    comply = [(p, COMPLIANCE) for p in prompts.harmful + prompts.harmless]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = factories.make_tiny_model(root / "base", seed=0)
        parent = _train(base, root / "parent", refuse, steps=60, seed=0)
        return {
            "base": base,
            "parent": parent,
            "eroded": _train(parent, root / "eroded", comply, steps=20, seed=1),
            "benign": _train(parent, root / "benign", refuse, steps=15, seed=2),
        }
    finally:
        torch.set_num_threads(threads)
