"""Chat rendering: how every check turns messages into the prompt a model answers.

One rule for a tokenizer without a chat template: each message as `role: content` on its own
line, then `assistant: `; its ids get the tokenizer's special tokens (a BOS), which a template
writes itself. Eval suites refuse such tokenizers (they test chat behaviour); the probes accept
them, so a base model can still be diffed and scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Messages = Sequence[dict[str, str]]


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_chat(tokenizer: Any, messages: Messages) -> str:
    """The prompt that asks the model for the next assistant turn."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Ids of a rendered prompt: special tokens only where no chat template wrote them."""
    return tokenizer(text, add_special_tokens=not has_chat_template(tokenizer))["input_ids"]


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Ids of text that continues a prompt (an answer, an option): never with special tokens."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def chat_ids(tokenizer: Any, messages: Messages) -> list[int]:
    return encode_prompt(tokenizer, render_chat(tokenizer, messages))


def assistant_turn(tokenizer: Any, messages: Messages, answer: str) -> tuple[str, str]:
    """(prompt, continuation): `answer` as the assistant's whole turn, closed as the template closes it.

    Scoring the closing token too means a continuation that is all the model would say ranks
    above one it would only begin with; greedy decoding reproduces the reference exactly iff
    every one of these tokens is the argmax.
    """
    prompt = render_chat(tokenizer, messages)
    if not has_chat_template(tokenizer):
        return prompt, answer
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": answer}], tokenize=False
    )
    if full.startswith(prompt) and full[len(prompt) :].startswith(answer):
        return prompt, full[len(prompt) :].rstrip()
    return prompt, answer


class ChatPrompts:
    """Prompt methods of a model, local or served: both render with the model's own tokenizer."""

    tokenizer: Any

    def render(self, messages: Messages) -> str:
        return render_chat(self.tokenizer, messages)

    def chat_ids(self, messages: Messages) -> list[int]:
        return chat_ids(self.tokenizer, messages)

    def encode_prompt(self, text: str) -> list[int]:
        return encode_prompt(self.tokenizer, text)

    def encode_text(self, text: str) -> list[int]:
        return encode_text(self.tokenizer, text)
