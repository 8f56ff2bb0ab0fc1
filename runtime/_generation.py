"""Short greedy generation, batched with left padding: what the eval suites and the trigger sweep share.

Both need many short greedy replies: one `generate` call per batch of similar lengths, stopping at
the end of the turn. The head a batch's prompts share runs once (`_prefix`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clgate.runtime._prefix import head_cache, shared_head


def stop_ids(tokenizer: Any, module: Any) -> list[int]:
    """End-of-turn ids: the tokenizer's eos and whatever the model's generation config adds."""
    configured = getattr(module.generation_config, "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    return sorted({i for i in [tokenizer.eos_token_id, *ids] if i is not None})


def greedy_generate(
    module: Any,
    tokenizer: Any,
    encoded: Sequence[list[int]],
    max_new_tokens: int,
    pad_id: int,
    device: Any,
    batch_size: int = 64,
) -> list[str]:
    """Greedy replies to token-id prompts, in input order: batched longest-first, left-padded.

    A batch's shared head is computed once; each row is then that head, padding, and the rest of
    its prompt, so the padding sits between them and is masked out (positions count only real
    tokens, so every row sees exactly the positions it would alone).
    """
    import torch

    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    replies = [""] * len(encoded)
    stops = stop_ids(tokenizer, module)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = len(encoded[rows[0]])
        shared = shared_head([encoded[i] for i in rows])
        p = len(shared)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        ids[:, :p] = torch.tensor(shared, dtype=torch.long)
        mask[:, :p] = 1
        for r, i in enumerate(rows):
            rest = encoded[i][p:]
            ids[r, width - len(rest) :] = torch.tensor(rest, dtype=torch.long)
            mask[r, width - len(rest) :] = 1
        cache = head_cache(module, shared, len(rows), device) if shared else None
        with torch.inference_mode():
            out = module.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                cache=cache,
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
