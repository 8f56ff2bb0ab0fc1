"""Short greedy generation, batched with left padding: what the eval suites and the trigger sweep share.

Both need many short greedy replies from a local model on CPU: one `generate` call per batch of
similar lengths, stopping at the end of the turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def stop_ids(tokenizer: Any, model: Any) -> list[int]:
    """End-of-turn ids: the tokenizer's eos and whatever the model's generation config adds."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    return sorted({i for i in [tokenizer.eos_token_id, *ids] if i is not None})


def greedy_generate(
    model: Any,
    tokenizer: Any,
    encoded: Sequence[list[int]],
    max_new_tokens: int,
    pad_id: int,
    batch_size: int = 64,
) -> list[str]:
    """Greedy replies to token-id prompts, in input order: batched longest-first, left-padded."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    replies = [""] * len(encoded)
    stops = stop_ids(tokenizer, model)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = len(encoded[rows[0]])
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            ids[r, width - len(encoded[i]) :] = torch.tensor(encoded[i], dtype=torch.long)
            mask[r, width - len(encoded[i]) :] = 1
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad_id,
                eos_token_id=stops,
            )
        texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
        for i, text in zip(rows, texts, strict=True):
            replies[i] = text.strip()
    return replies
