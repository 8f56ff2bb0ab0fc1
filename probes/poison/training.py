"""A small LoRA fine-tune on CPU: how the benchmark and the demo make benign and poisoned updates.

Plain torch: AdamW on the LoRA factors only, loss on the completion tokens only, fixed seed, a few
dozen steps. Saved as a PEFT adapter directory that `clgate.artifacts.load_causal_lm(..., adapter=)`
loads.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clgate.artifacts import DatasetRecord
from clgate.errors import InputError
from clgate.probes.poison.encoding import Encoder

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class TrainingRun:
    adapter: Path
    steps: int
    final_loss: float
    seconds: float


def train_lora(
    base_dir: Path,
    records: Sequence[DatasetRecord],
    out_dir: Path,
    steps: int = 40,
    seed: int = 0,
    rank: int = 8,
    alpha: int = 16,
    learning_rate: float = 2e-3,
    batch_size: int = 8,
    max_tokens: int = 96,
    targets: tuple[str, ...] = DEFAULT_TARGETS,
) -> TrainingRun:
    """Fine-tune a LoRA adapter on `records` (chat records with an assistant completion) and save it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from clgate.artifacts import load_tokenizer, resolve_model_dir

    if not records:
        raise InputError("train_lora: no training records")
    base_dir = resolve_model_dir(Path(base_dir))
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = load_tokenizer(base_dir)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), local_files_only=True, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0, task_type="CAUSAL_LM"
        ),
    )
    encoder = Encoder(tokenizer, max_tokens)
    examples = []
    for r in records:
        if r.messages[-1].role != "assistant":
            raise InputError("train_lora: every record needs a final assistant completion")
        examples.append(encoder.encode(tuple(m.model_dump() for m in r.prompt_messages), r.completion))
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.train()
    start, loss_value = time.perf_counter(), float("nan")
    order: list[int] = []
    for _ in range(steps):
        if len(order) < batch_size:
            order += rng.sample(range(len(examples)), len(examples))
        batch, order = [examples[i] for i in order[:batch_size]], order[batch_size:]
        width = max(len(e.ids) for e in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full_like(ids, -100)
        mask = torch.zeros_like(ids)
        for row, e in enumerate(batch):
            ids[row, : len(e.ids)] = torch.tensor(e.ids)
            labels[row, e.prompt_len : len(e.ids)] = torch.tensor(e.ids[e.prompt_len :])
            mask[row, : len(e.ids)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    return TrainingRun(out_dir, steps, loss_value, time.perf_counter() - start)
