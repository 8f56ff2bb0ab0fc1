"""One model's residual stream on the prompt set, pooled per prompt, for every layer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from clgate.atomic import atomic_path
from clgate.progress import Advance, no_progress
from clgate.runtime import RuntimeModel, common_prefix, repeat_cache, resid_post

VERSION = "2"  # 2: the shared prompt prefix reaches the bridge as a KV cache (it was ignored)
HOOK = "hook_resid_post"


@dataclass
class Residuals:
    """One model's residual stream on the prompt set, pooled two ways, for every layer."""

    last: np.ndarray  # (prompts, layers, d_model): at the last prompt token
    mean: np.ndarray  # (prompts, layers, d_model): mean over the prompt's own tokens
    backend: str
    seconds: float = 0.0
    cached: bool = False

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, last=self.last, mean=self.mean, backend=self.backend, seconds=self.seconds)

    @classmethod
    def load(cls, path: Path) -> Residuals:
        with np.load(path) as z:
            return cls(z["last"], z["mean"], str(z["backend"]), float(z["seconds"]), cached=True)


def capture_residuals(
    model: RuntimeModel,
    prompts: tuple[str, ...],
    batch_size: int,
    max_tokens: int,
    advance: Advance = no_progress,
) -> Residuals:
    """Pool each block's resid_post per prompt: length-sorted, right-padded batches after a shared prefix.

    The prefix every prompt starts with is run once and its KV cache reused, so only each prompt's
    own tokens are computed; causal attention makes the result equal to running each prompt whole.
    Prompts are left-truncated to `max_tokens`, so the post-instruction tokens survive.
    """
    started = time.perf_counter()
    hooks = model.hooked()
    names = [resid_post(layer) for layer in range(model.n_layers)]
    ids = [model.chat_ids([{"role": "user", "content": p}])[-max_tokens:] for p in prompts]
    head = common_prefix(ids, min(map(len, ids)) - 1)
    prefix = len(head)
    pad = model.tokenizer.pad_token_id or 0
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    last = mean = None
    with torch.inference_mode():
        state = hooks.head_cache(head) if head else None
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            own = [ids[i][prefix:] for i in batch]
            width = max(len(x) for x in own)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, x in enumerate(own):
                input_ids[row, : len(x)] = torch.tensor(x)
                mask[row, : len(x)] = 1
            full_mask = torch.cat([torch.ones((len(batch), prefix), dtype=torch.long), mask], dim=1)
            cache = repeat_cache(state, len(batch)) if state is not None else None
            resid = hooks.run(input_ids, full_mask, names, cache)
            pooled_last, pooled_mean = _pool([resid[n] for n in names], mask)
            if last is None:
                shape = (len(ids), len(names), pooled_last.shape[-1])
                last, mean = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
            last[batch] = pooled_last
            mean[batch] = pooled_mean
            advance(start + len(batch), len(ids))
    return Residuals(last, mean, hooks.backend, time.perf_counter() - started)


def _pool(layers: list[torch.Tensor], mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(rows, layers, d_model) at the last prompt token and averaged over the prompt's own tokens,
    pooled layer by layer where the states are (a GPU's memory holds one layer's batch at a time)."""
    device = layers[0].device
    mask = mask.to(device)
    weights = (mask / mask.sum(1, keepdim=True))[:, :, None]
    at_last = torch.arange(len(mask), device=device), mask.sum(1) - 1
    last = torch.stack([states.float()[at_last] for states in layers], dim=1)
    mean = torch.stack([(states.float() * weights).sum(1) for states in layers], dim=1)
    return last.cpu().numpy(), mean.cpu().numpy()
