"""Short greedy generation, batched with left padding: what the eval suites and the trigger sweep share.

Both need many short greedy replies from a local model on CPU: one `generate` call per batch of
similar lengths, stopping at the end of the turn. On CPU the cost is the matrix products, so every
token not computed counts: the head all prompts share (a chat template's system prompt and turn
header, often half of a short prompt) runs once, as a KV cache each batch starts from.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from clgate.tokens import common_prefix

MIN_SHARED_PREFIX = 4


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
    """Greedy replies to token-id prompts, in input order: batched longest-first, left-padded.

    The prompts' common head is computed once; each row is then that head, padding, and the rest
    of its prompt, so the padding sits between them and is masked out (positions count only real
    tokens, so every row sees exactly the positions it would alone).
    """
    import torch

    if not encoded:
        return []
    device = next(model.parameters()).device
    shared = common_prefix(list(encoded), limit=min(map(len, encoded)) - 1)
    if len(shared) < MIN_SHARED_PREFIX:
        shared = []
    head_cache = _prefix_cache(model, shared, device) if shared else None
    p = len(shared)
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    replies = [""] * len(encoded)
    stops = stop_ids(tokenizer, model)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = len(encoded[rows[0]])
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        ids[:, :p] = torch.tensor(shared, dtype=torch.long)
        mask[:, :p] = 1
        for r, i in enumerate(rows):
            rest = encoded[i][p:]
            ids[r, width - len(rest) :] = torch.tensor(rest, dtype=torch.long)
            mask[r, width - len(rest) :] = 1
        cache = None
        if head_cache is not None:
            cache = copy.deepcopy(head_cache)
            cache.batch_repeat_interleave(len(rows))
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                past_key_values=cache,
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


def _prefix_cache(model: Any, shared: list[int], device: Any) -> Any:
    """The KV cache of the shared head, for one row (each batch copies and repeats it)."""
    import torch

    with torch.inference_mode():
        out = model(input_ids=torch.tensor([shared], device=device), use_cache=True, logits_to_keep=1)
    return out.past_key_values
