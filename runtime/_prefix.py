"""The head every prompt of a batch shares, run once: a chat template's system prompt and turn header.

Scoring, the trigger sweep's probe table, generation and the activation diff all batch chat prompts
whose first tokens are identical, often half of a short prompt. The head runs once as a KV cache
that every row of the batch continues from.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

MIN_SHARED = 4
"""Shorter heads are not worth a separate forward pass."""


def common_prefix(seqs: Sequence[list[int]], limit: int) -> list[int]:
    """The ids every sequence starts with, at most `limit` of them."""
    first = seqs[0]
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return first[:n]


def shared_head(seqs: Sequence[list[int]]) -> list[int]:
    """The ids all `seqs` start with, leaving each at least one of its own; [] if under MIN_SHARED."""
    if not seqs:
        return []
    head = common_prefix(seqs, min(map(len, seqs)) - 1)
    return head if len(head) >= MIN_SHARED else []


def head_cache(module: Any, head: list[int], rows: int, device: Any) -> Any:
    """The KV cache of `head` (one forward pass of a causal LM), repeated for `rows` rows."""
    import torch

    with torch.inference_mode():
        out = module(input_ids=torch.tensor([head], device=device), use_cache=True, logits_to_keep=1)
    cache = out.cache
    cache.batch_repeat_interleave(rows)
    return cache


def repeat_cache(cache: Any, rows: int) -> Any:
    """A copy of a one-row cache for `rows` rows; the original stays for the next batch."""
    repeated = copy.deepcopy(cache)
    repeated.batch_repeat_interleave(rows)
    return repeated
