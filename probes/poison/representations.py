"""One forward pass of the parent over the update's items feeds every representation-based detector.

Per item: the mean hidden state of one middle-to-late layer over the user's text (prompt) and over
the completion, and the completion's mean token log-likelihood. Streamed in length-sorted windows,
stored as float16, cached on disk by (model digest, dataset digest, settings).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clgate.errors import InputError
from clgate.probes.poison.encoding import EncodedExample, Encoder
from clgate.probes.poison.items import UpdateItem
from clgate.progress import Advance, no_progress
from clgate.runtime import FINAL, RuntimeModel, resid_post

VERSION = "1"


@dataclass
class Representations:
    prompt: np.ndarray  # (n, d) mean over the user's text, layer `layer`
    completion: np.ndarray  # (n, d) mean over the completion tokens
    logprob: np.ndarray  # (n,) mean log p(completion token | prefix) under the model
    n_tokens: np.ndarray  # (n,) tokens per item after truncation
    layer: int
    forward_seconds: float = 0.0
    cached: bool = False

    def __len__(self) -> int:
        return len(self.logprob)

    def save(self, path: Path) -> None:
        from clgate.atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                prompt=self.prompt,
                completion=self.completion,
                logprob=self.logprob,
                n_tokens=self.n_tokens,
                layer=self.layer,
                forward_seconds=self.forward_seconds,
            )

    @classmethod
    def load(cls, path: Path) -> Representations:
        with np.load(path) as z:
            return cls(
                z["prompt"],
                z["completion"],
                z["logprob"],
                z["n_tokens"],
                int(z["layer"]),
                float(z["forward_seconds"]),
                cached=True,
            )


def default_layer(model: RuntimeModel) -> int:
    """Two thirds of the way up: late enough to be semantic, early enough not to be next-token logits."""
    return max(1, round(2 * model.n_layers / 3))


def hook_for(layer: int, n_layers: int) -> str:
    """The hook point of HF's `hidden_states[layer]`: block `layer - 1`'s output, the final norm's for the last."""
    return FINAL if layer == n_layers else resid_post(layer - 1)


def cache_key(model_digest: str, data_digest: str, layer: int, max_tokens: int) -> str:
    text = f"{VERSION}|{model_digest}|{data_digest}|{layer}|{max_tokens}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _batches(encoded: list[EncodedExample], token_budget: int) -> Iterable[list[int]]:
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
    batch: list[int] = []
    for i in order:
        if batch and len(encoded[i].ids) * (len(batch) + 1) > token_budget:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def vocab_size(model: RuntimeModel) -> int:
    """From the config, so a check against cached representations loads no weights."""
    return int(model.config.vocab_size)


def compute_representations(
    model: RuntimeModel,
    items: Iterable[UpdateItem],
    n_items: int,
    layer: int | None = None,
    max_tokens: int = 128,
    window: int = 256,
    token_budget: int = 2048,
    advance: Advance = no_progress,
) -> Representations:
    """Stream `items` through `model` window by window; memory is O(n·d) float16 plus one window."""
    import torch

    layer = default_layer(model) if layer is None else layer
    if not 1 <= layer <= model.n_layers:
        raise InputError(f"layer {layer} out of range 1..{model.n_layers}")
    hook = hook_for(layer, model.n_layers)
    tokenizer = model.tokenizer
    encoder = Encoder(tokenizer, max_tokens)
    vocab = vocab_size(model)
    d = model.config.hidden_size
    prompt = np.zeros((n_items, d), dtype=np.float16)
    completion = np.zeros((n_items, d), dtype=np.float16)
    logprob = np.zeros(n_items, dtype=np.float32)
    n_tokens = np.zeros(n_items, dtype=np.int32)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    start = time.perf_counter()
    done = 0  # items run so far, across windows

    def run(window_items: list[UpdateItem]) -> None:
        nonlocal done
        encoded = [encoder.encode(it.prompt_messages, it.completion) for it in window_items]
        for batch in _batches(encoded, token_budget):
            width = max(len(encoded[i].ids) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : len(encoded[i].ids)] = torch.tensor(encoded[i].ids)
                mask[row, : len(encoded[i].ids)] = 1
            top = int(ids.max())
            if top >= vocab:
                raise InputError(
                    f"item {window_items[batch[0]].index + 1}: token id {top} is beyond the model's "
                    f"vocabulary of {vocab}: the model does not match the tokenizer"
                )
            out = model.hidden(ids, mask, hooks=[hook])
            hidden, last = out.at[hook].float().cpu(), out.last
            rows, positions, targets = [], [], []
            for row, i in enumerate(batch):
                ex, item = encoded[i], window_items[i]
                a, b = ex.content
                prompt[item.index] = hidden[row, a:b].mean(0).numpy()
                completion[item.index] = hidden[row, ex.prompt_len : len(ex.ids)].mean(0).numpy()
                n_tokens[item.index] = len(ex.ids)
                pos = range(ex.prompt_len - 1, len(ex.ids) - 1)
                rows += [row] * len(pos)
                positions += list(pos)
                targets += ex.ids[ex.prompt_len :]
            at = last.device
            logits = model.unembed(last[torch.tensor(rows, device=at), torch.tensor(positions, device=at)])
            picked = torch.tensor(targets, device=logits.device)[:, None]
            token_lp = torch.log_softmax(logits.float(), -1).gather(1, picked)[:, 0].cpu()
            owner = torch.tensor(rows)
            for row, i in enumerate(batch):
                logprob[window_items[i].index] = float(token_lp[owner == row].mean())
            done += len(batch)
            advance(done, n_items)

    with torch.inference_mode():
        buf: list[UpdateItem] = []
        for item in items:
            buf.append(item)
            if len(buf) == window:
                run(buf)
                buf = []
        if buf:
            run(buf)
    return Representations(prompt, completion, logprob, n_tokens, layer, time.perf_counter() - start)


def check_token_ids(max_token_id: int, model: RuntimeModel, where: str) -> None:
    """Pre-tokenised items must fit the model's vocabulary, or the model is not the one they were made for."""
    vocab = vocab_size(model)
    if max_token_id >= vocab:
        raise InputError(
            f"{where}: token id {max_token_id} is beyond the model's vocabulary of {vocab}: "
            "the dataset was tokenised for another model"
        )
