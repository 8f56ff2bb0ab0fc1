"""Batched log-likelihood scoring of continuations.

Scoring follows lm-evaluation-harness: requests are reordered longest-first and every
continuation of one context is scored in the same forward pass. Here the context is not
repeated per option either: a row holds the context once followed by all its options, and an
attention mask keeps the options from seeing each other, so the model runs each token of a
question exactly once. Log-probs are exact (no generation, no parsing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clgate.runtime._prefix import head_cache, shared_head

if TYPE_CHECKING:
    import torch

    from clgate.runtime._model import RuntimeModel


@dataclass(frozen=True)
class ContinuationRequest:
    """A rendered prompt and the continuations to score after it."""

    context: str
    continuations: tuple[str, ...]


@dataclass(frozen=True)
class ContinuationScore:
    """Log-likelihood of one continuation given its context."""

    logprob: float
    n_tokens: int
    greedy: bool
    """Every token is the argmax given the ones before it: greedy decoding would produce it."""

    @property
    def mean_logprob(self) -> float:
        return self.logprob / self.n_tokens if self.n_tokens else 0.0


@dataclass(frozen=True)
class Batching:
    """Batch budgets: padded tokens and kept logit positions per scoring batch, rows per generation batch."""

    context_tokens_per_batch: int = 2048
    option_tokens_per_batch: int = 1024
    generation_batch_size: int = 64


@dataclass
class _Group:
    index: int
    context: list[int]
    continuations: list[list[int]]

    @property
    def packed_length(self) -> int:
        return len(self.context) + sum(map(len, self.continuations))

    @property
    def scored_positions(self) -> int:
        """Trailing positions whose logits are needed: the last context token and every option token."""
        return 1 + sum(map(len, self.continuations))


def score_continuations(
    model: RuntimeModel, requests: Sequence[ContinuationRequest], batching: Batching
) -> list[list[ContinuationScore]]:
    """Log-likelihood of every continuation of every request, in request order."""
    import torch

    groups = [_tokenize(model, i, r) for i, r in enumerate(requests)]
    groups.sort(key=lambda g: -(len(g.context) + max(map(len, g.continuations))))
    results: list[list[ContinuationScore]] = [[] for _ in requests]
    with torch.inference_mode():
        for batch in _batches(groups, batching):
            for group, scores in zip(batch, _score_batch(model, batch), strict=True):
                results[group.index] = scores
    return results


def _tokenize(model: RuntimeModel, index: int, request: ContinuationRequest) -> _Group:
    if not request.continuations:
        raise ValueError("a continuation request needs at least one continuation")
    continuations = [model.encode_text(c) for c in request.continuations]
    if any(not c for c in continuations):
        raise ValueError("empty continuation")
    context = model.encode_prompt(request.context) or [model.pad_id]
    room = model.max_length - max(
        map(len, continuations)
    )  # every option's positions restart after the context
    if room < 1:
        raise ValueError(
            f"a continuation of {max(map(len, continuations))} tokens leaves no room for its context"
        )
    return _Group(index, context[-room:], continuations)


def _batches(groups: list[_Group], batching: Batching) -> list[list[_Group]]:
    """Greedy packing under two budgets: padded tokens, and positions whose logits are kept.

    Groups arrive longest first, so rows of a batch have similar lengths and little padding.
    """
    batches: list[list[_Group]] = []
    current: list[_Group] = []
    width = kept = 0
    for g in groups:
        w, k = max(width, g.packed_length), max(kept, g.scored_positions)
        if current and (
            w * (len(current) + 1) > batching.context_tokens_per_batch
            or k * (len(current) + 1) > batching.option_tokens_per_batch
        ):
            batches.append(current)
            current, w, k = [], g.packed_length, g.scored_positions
        current.append(g)
        width, kept = w, k
    if current:
        batches.append(current)
    return batches


def _score_batch(model: RuntimeModel, batch: list[_Group]) -> list[list[ContinuationScore]]:
    """One forward pass for the whole batch: each row is a context followed by all its options.

    A 4D attention mask lets every option see its own context and its own earlier tokens
    only, and position ids restart each option where the context ends, so each option is
    scored exactly as if it ran alone after the context. The prefix all rows share (the chat
    template's system prompt and turn header) runs once beforehand, as a KV cache.
    """
    import torch

    shared = shared_head([g.context for g in batch])
    p = len(shared)
    cache = head_cache(model.module, shared, len(batch), model.device) if p else None

    width = max(g.packed_length for g in batch) - p
    kept = max(g.scored_positions for g in batch)
    ids = torch.full((len(batch), width), model.pad_id, dtype=torch.long)
    segment = torch.full((len(batch), width), -1, dtype=torch.long)  # -1 pad, 0 context, k+1 option k
    positions = torch.zeros((len(batch), width), dtype=torch.long)
    rows, cols, targets = [], [], []
    for i, g in enumerate(batch):
        rest = g.context[p:]
        offset = width - (len(rest) + sum(map(len, g.continuations)))
        ids[i, offset : offset + len(rest)] = torch.tensor(rest)
        segment[i, offset : offset + len(rest)] = 0
        positions[i, offset : offset + len(rest)] = torch.arange(p, p + len(rest))
        start, last_context = offset + len(rest), offset + len(rest) - 1
        for k, cont in enumerate(g.continuations):
            span = slice(start, start + len(cont))
            ids[i, span] = torch.tensor(cont)
            segment[i, span] = k + 1
            positions[i, span] = torch.arange(p + len(rest), p + len(rest) + len(cont))
            for t, token in enumerate(cont):
                rows.append(i)
                cols.append((last_context if t == 0 else start + t - 1) - (width - kept))
                targets.append(token)
            start += len(cont)

    device = model.device
    out = model.module(
        input_ids=ids.to(device),
        attention_mask=_option_mask(segment, p).to(device),
        position_ids=positions.to(device),
        cache=cache,
        use_cache=cache is not None,
        logits_to_keep=kept,
    )
    logits = out.logits.float()
    r, c, tgt = (torch.tensor(x, device=logits.device) for x in (rows, cols, targets))
    picked = logits[r, c]
    lp = (picked.gather(-1, tgt.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(picked, dim=-1)).tolist()
    greedy = (picked.argmax(-1) == tgt).tolist()

    results: list[list[ContinuationScore]] = []
    k = 0
    for g in batch:
        scores = []
        for cont in g.continuations:
            n = len(cont)
            scores.append(ContinuationScore(float(sum(lp[k : k + n])), n, all(greedy[k : k + n])))
            k += n
        results.append(scores)
    return results


def _option_mask(segment: torch.Tensor, prefix: int) -> torch.Tensor:
    """Boolean [rows, 1, width, prefix + width] mask, True = may attend.

    Causal within a row; a context token sees the context; an option token sees the context
    and its own option; everything sees the shared prefix; padding sees only itself.
    """
    import torch

    rows, width = segment.shape
    q, k = segment.unsqueeze(-1), segment.unsqueeze(-2)
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    allowed = causal & (q >= 0) & ((k == 0) | (k == q))
    allowed |= torch.eye(width, dtype=torch.bool) & (q < 0)
    shared = torch.ones((rows, width, prefix), dtype=torch.bool)
    return torch.cat([shared, allowed], dim=-1).unsqueeze(1)
