"""Batched log-likelihood scoring and short greedy generation on a local causal LM.

Scoring follows lm-evaluation-harness: requests are reordered longest-first and every
continuation of one context is scored in the same forward pass. Here the context is not
repeated per option either: a row holds the context once followed by all its options, and an
attention mask keeps the options from seeing each other, so the model runs each token of a
question exactly once. Log-probs are exact (no generation, no parsing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from clgate.errors import InputError
from clgate.generation import greedy_generate
from clgate.prompt_head import head_cache, shared_head

ENGINE_VERSION = "2"  # 2: generation starts from the shared prompt head's KV cache


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


def render_chat(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The chat-template prompt that asks the model for the next assistant turn."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("tokenizer has no chat template (clgate's eval suites prompt models as chat)")
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def assistant_turn(tokenizer: Any, messages: Sequence[dict[str, str]], answer: str) -> tuple[str, str]:
    """(prompt, continuation): `answer` as the assistant's whole turn, closed as the template closes it.

    Scoring the closing token too means a continuation that is all the model would say ranks
    above one it would only begin with; greedy decoding reproduces the reference exactly iff
    every one of these tokens is the argmax.
    """
    prompt = render_chat(tokenizer, messages)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": answer}], tokenize=False
    )
    if full.startswith(prompt) and full[len(prompt) :].startswith(answer):
        return prompt, full[len(prompt) :].rstrip()
    return prompt, answer


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


class ScoringEngine:
    """Runs one model: `score` (log-likelihoods) and `generate` (greedy, short), both batched."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        context_tokens_per_batch: int = 2048,
        option_tokens_per_batch: int = 1024,
        generation_batch_size: int = 64,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.context_tokens_per_batch = context_tokens_per_batch
        self.option_tokens_per_batch = option_tokens_per_batch
        self.generation_batch_size = generation_batch_size
        self.max_length = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.device = next(model.parameters()).device

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # --- log-likelihood ------------------------------------------------------------------

    @torch.inference_mode()
    def score(self, requests: Sequence[ContinuationRequest]) -> list[list[ContinuationScore]]:
        """Log-likelihood of every continuation of every request, in request order."""
        groups = [self._tokenize(i, r) for i, r in enumerate(requests)]
        groups.sort(key=lambda g: -(len(g.context) + max(map(len, g.continuations))))
        results: list[list[ContinuationScore]] = [[] for _ in requests]
        for batch in self._batches(groups):
            for group, scores in zip(batch, self._score_batch(batch), strict=True):
                results[group.index] = scores
        return results

    def _tokenize(self, index: int, request: ContinuationRequest) -> _Group:
        if not request.continuations:
            raise ValueError("a continuation request needs at least one continuation")
        continuations = [self._encode(c) for c in request.continuations]
        if any(not c for c in continuations):
            raise ValueError("empty continuation")
        context = self._encode(request.context) or [self.pad_id]
        room = self.max_length - sum(map(len, continuations))
        return _Group(index, context[-room:], continuations)

    def _batches(self, groups: list[_Group]) -> list[list[_Group]]:
        """Greedy packing under two budgets: padded tokens, and positions whose logits are kept.

        Groups arrive longest first, so rows of a batch have similar lengths and little padding.
        """
        batches: list[list[_Group]] = []
        current: list[_Group] = []
        width = kept = 0
        for g in groups:
            w, k = max(width, g.packed_length), max(kept, g.scored_positions)
            if current and (
                w * (len(current) + 1) > self.context_tokens_per_batch
                or k * (len(current) + 1) > self.option_tokens_per_batch
            ):
                batches.append(current)
                current, w, k = [], g.packed_length, g.scored_positions
            current.append(g)
            width, kept = w, k
        if current:
            batches.append(current)
        return batches

    def _score_batch(self, batch: list[_Group]) -> list[list[ContinuationScore]]:
        """One forward pass for the whole batch: each row is a context followed by all its options.

        A 4D attention mask lets every option see its own context and its own earlier tokens
        only, and position ids restart each option where the context ends, so each option is
        scored exactly as if it ran alone after the context. The prefix all rows share (the chat
        template's system prompt and turn header) runs once beforehand, as a KV cache.
        """
        shared = shared_head([g.context for g in batch])
        p = len(shared)
        cache = head_cache(self.model, shared, len(batch)) if p else None

        width = max(g.packed_length for g in batch) - p
        kept = max(g.scored_positions for g in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
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

        mask = _option_mask(segment, p)
        out = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            past_key_values=cache,
            use_cache=cache is not None,
            logits_to_keep=kept,
        )
        logits = out.logits.float()
        r, c, tgt = (torch.tensor(x, device=self.device) for x in (rows, cols, targets))
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

    # --- generation ----------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        """Greedy completions, batched longest-first with left padding; stops at end of turn."""
        encoded = [self._encode(p)[-(self.max_length - max_new_tokens) :] for p in prompts]
        return greedy_generate(
            self.model, self.tokenizer, encoded, max_new_tokens, self.pad_id, self.generation_batch_size
        )


def _option_mask(segment: torch.Tensor, prefix: int) -> torch.Tensor:
    """Boolean [rows, 1, width, prefix + width] mask, True = may attend.

    Causal within a row; a context token sees the context; an option token sees the context
    and its own option; everything sees the shared prefix; padding sees only itself.
    """
    rows, width = segment.shape
    q, k = segment.unsqueeze(-1), segment.unsqueeze(-2)
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    allowed = causal & (q >= 0) & ((k == 0) | (k == q))
    allowed |= torch.eye(width, dtype=torch.bool) & (q < 0)
    shared = torch.ones((rows, width, prefix), dtype=torch.bool)
    return torch.cat([shared, allowed], dim=-1).unsqueeze(1)
