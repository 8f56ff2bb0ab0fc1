"""A small LoRA fine-tune on CPU: how the benchmark and the demo make benign and poisoned updates.

Plain torch: AdamW on the LoRA factors only, loss on the completion tokens only, fixed seed, a few
dozen steps. The LoRA sits on the top `top_layers` decoder layers only: the frozen layers below are
run once per example (`FrozenTrunk`) and each step runs only the top layers, forward and backward,
a fraction of the work. The top layers see every token, so a trigger
anywhere in the prompt can still be learned. Saved as a PEFT adapter directory that `clgate.runtime.load_model(..., adapter=)`
loads.
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clgate.artifacts import DatasetRecord
from clgate.errors import InputError
from clgate.probes.poison.encoding import Encoder
from clgate.progress import Advance, no_progress

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class _Reached(Exception):
    """Raised by a hook to stop a forward pass once the frozen trunk's output is known."""


class FrozenTrunk:
    """The decoder layers below the LoRA never change while it trains, so their output is computed once.

    Each example's input to the first trained layer is cached; every step then runs only the trained
    top layers (and the LM head on the completion tokens), which is exactly the same function as
    the full model but a fraction of the work. With `split` 0 (LoRA everywhere, or a backbone whose
    layers are not at `.layers`) it runs the whole model.
    """

    def __init__(self, model: Any, split: int) -> None:
        self.inner = model.get_base_model().base_model  # the transformer without its LM head
        layers = getattr(self.inner, "layers", None)
        self.split = split if layers is not None else 0
        self.layers = layers

    def inputs(self, sequences: list[list[int]]) -> list[Any]:
        """Per sequence: the trunk's output (when there is a trunk) or its token ids."""
        import torch

        if not self.split:
            return [torch.tensor(s) for s in sequences]
        box: dict[str, Any] = {}

        def grab(module: Any, args: tuple, kwargs: dict) -> None:
            box["hidden"] = args[0] if args else kwargs["hidden_states"]
            raise _Reached

        handle = self.layers[self.split].register_forward_pre_hook(grab, with_kwargs=True)
        out = []
        try:
            with torch.no_grad():
                for seq in sequences:
                    try:
                        self.inner(input_ids=torch.tensor([seq]))
                    except _Reached:
                        out.append(box["hidden"][0].detach())
        finally:
            handle.remove()
        return out

    @contextmanager
    def top_only(self) -> Iterator[None]:
        """While training, the model's layer stack is only the trained top layers."""
        import torch

        if not self.split:
            yield
            return
        self.inner.layers = torch.nn.ModuleList(list(self.layers)[self.split :])
        try:
            yield
        finally:
            self.inner.layers = self.layers

    def stack_forward(self, items: list[Any]) -> Any:
        """Right-padded batch through the (top) layers: the last hidden state per position."""
        import torch

        width = max(len(x) for x in items)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, x in enumerate(items):
            mask[row, : len(x)] = 1
        if not self.split:
            ids = torch.zeros((len(items), width), dtype=torch.long)
            for row, x in enumerate(items):
                ids[row, : len(x)] = x
            return self.inner(input_ids=ids, attention_mask=mask).last_hidden_state
        embeds = torch.zeros((len(items), width, items[0].shape[-1]), dtype=items[0].dtype)
        for row, x in enumerate(items):
            embeds[row, : len(x)] = x
        return self.inner(inputs_embeds=embeds, attention_mask=mask).last_hidden_state


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
    learning_rate: float = 4e-3,
    batch_size: int = 8,
    max_tokens: int = 96,
    targets: tuple[str, ...] = DEFAULT_TARGETS,
    top_layers: int | None = 8,
    advance: Advance = no_progress,
) -> TrainingRun:
    """Fine-tune a LoRA adapter on `records` (chat records with an assistant completion) and save it.

    `advance` hears optimiser steps taken.
    """
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
    n_layers = model.config.num_hidden_layers
    layers = (
        None if top_layers is None or top_layers >= n_layers else list(range(n_layers - top_layers, n_layers))
    )
    with warnings.catch_warnings():  # peft probes a property transformers has deprecated
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(
            model,
            LoraConfig(
                r=rank,
                lora_alpha=alpha,
                target_modules=list(targets),
                layers_to_transform=layers,
                lora_dropout=0.0,
                task_type="CAUSAL_LM",
            ),
        )
    encoder = Encoder(tokenizer, max_tokens)
    examples = []
    for r in records:
        if r.messages[-1].role != "assistant":
            raise InputError("train_lora: every record needs a final assistant completion")
        examples.append(encoder.encode(tuple(m.model_dump() for m in r.prompt_messages), r.completion))
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    trunk = FrozenTrunk(model, n_layers - len(layers) if layers else 0)
    inputs = trunk.inputs([e.ids for e in examples])
    head = model.get_output_embeddings()
    model.train()
    start, loss_value = time.perf_counter(), float("nan")
    order: list[int] = []
    with trunk.top_only():
        for step in range(1, steps + 1):
            if len(order) < batch_size:
                order += rng.sample(range(len(examples)), len(examples))
            batch, order = order[:batch_size], order[batch_size:]
            hidden = trunk.stack_forward([inputs[i] for i in batch])
            rows, cols, targets = [], [], []
            for row, i in enumerate(batch):
                e = examples[i]
                for t in range(e.prompt_len, len(e.ids)):
                    rows.append(row)
                    cols.append(t - 1)
                    targets.append(e.ids[t])
            logits = head(hidden[torch.tensor(rows), torch.tensor(cols)])
            loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor(targets))
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)
            loss_value = float(loss.detach())
            advance(step, steps)
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the adapter is the update alone, never a copy of the base's LM head, even when a LoRA targets it
    model.save_pretrained(str(out_dir), safe_serialization=True, save_embedding_layers=False)
    return TrainingRun(out_dir, steps, loss_value, time.perf_counter() - start)


def merge_lora(model_dir: Path, adapter: Path, out_dir: Path) -> Path:
    """A fine-tune's result as a full checkpoint, as a pipeline that merges before it promotes ships it:
    the next fine-tune trains on it, and a gate audits it as a new model against its parent."""
    from clgate.runtime import load_model

    model = load_model(Path(model_dir), Path(adapter), device="cpu", dtype="float32")
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        model.module.save_pretrained(str(out_dir), safe_serialization=True)
        model.tokenizer.save_pretrained(str(out_dir))
    finally:
        model.release()
    return Path(out_dir)
