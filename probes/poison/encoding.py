"""Chat-templated token ids of prompt+completion pairs, as the model sees them in training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clgate.runtime import chat_ids


@dataclass(frozen=True)
class EncodedExample:
    ids: list[int]
    prompt_len: int
    content: tuple[int, int]  # token span of the user's own text inside the templated prompt


class Encoder:
    """Encodes examples for one tokenizer; the template's fixed prefix/suffix is found once."""

    def __init__(self, tokenizer: Any, max_tokens: int = 128) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self._reference = chat_ids(tokenizer, [{"role": "user", "content": ""}])
        self._eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    def _content_span(self, ids: list[int]) -> tuple[int, int]:
        ref = self._reference
        start = 0
        while start < min(len(ids), len(ref)) and ids[start] == ref[start]:
            start += 1
        room = min(len(ids), len(ref)) - start
        suffix = 0
        while suffix < room and ids[-1 - suffix] == ref[-1 - suffix]:
            suffix += 1
        end = len(ids) - suffix
        return (start, end) if end > start else (0, len(ids))

    def encode(self, messages: tuple[dict[str, str], ...], completion: str) -> EncodedExample:
        """Prompt ids + completion ids + EOS; long items keep the prompt's end and the completion's start."""
        p = chat_ids(self.tokenizer, messages)
        c = self.tokenizer(completion, add_special_tokens=False)["input_ids"] + self._eos
        c = c[: max(1, self.max_tokens // 2)] if len(p) + len(c) > self.max_tokens else c
        span = self._content_span(p)
        cut = max(0, len(p) + len(c) - self.max_tokens)
        p = p[cut:]
        span = (max(0, span[0] - cut), max(1, span[1] - cut))
        return EncodedExample(ids=p + c, prompt_len=len(p), content=span)
