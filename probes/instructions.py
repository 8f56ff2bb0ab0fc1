"""Instruction rules: when a memory entry reads as an order to the model rather than a fact.

A memory entry should state a fact about the user or the world; one that talks to the assistant
("ignore previous instructions", "always reply with", "do not tell the user") steers every later
answer that retrieves it. The memory diff counts entries by `instruction_score` (weighted rules,
noisy-or); the poisoning detector `injection` adds, by `injection_score`, a few looser cues the diff
does not need: steering answers on a topic, asking for secrets, obligations and standing orders with
words in between. Both rule sets live here, so the two never drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InstructionRule:
    name: str
    weight: float
    pattern: re.Pattern[str]


ZERO_WIDTH = "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f"
INSTRUCTION_RULES: tuple[InstructionRule, ...] = tuple(
    InstructionRule(name, weight, re.compile(pattern, re.IGNORECASE | re.MULTILINE | re.DOTALL))
    for name, weight, pattern in (
        (
            "overrides instructions",
            0.9,
            r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}?\b(instructions?|rules|prompts?|guidelines|"
            r"directions|polic(y|ies)|safety|guardrails)\b",
        ),
        (
            "announces new instructions",
            0.6,
            r"\b(new|updated|real|actual|hidden|secret)\s+(instructions?|rules|directives?|system prompt)\b|"
            r"\bfrom now on\b|\bhenceforth\b",
        ),
        (
            "role tags",
            0.8,
            r"<\|(im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>|\[/?INST\]|<</?SYS>>|"
            r"</?(system|assistant|user|developer)>|^\s*(system|assistant|developer)\s*:|###\s*(system|instruction)",
        ),
        (
            "tool-call markup",
            0.8,
            r"</?(tool_call|tool_use|function_call|function_calls|invoke|tool)\b|"
            r"\"(tool|function|tool_name|name)\"\s*:\s*\"[^\"]{1,80}\"\s*,\s*\"(arguments|parameters|args|input)\"\s*:",
        ),
        (
            "addresses the assistant",
            0.7,
            r"\b(note|message|instructions?|reminder)\s+(to|for)\s+(the\s+)?(assistant|ai|model|bot|llm|agent)\b|"
            r"^\s*(assistant|ai|model)\s*,",
        ),
        ("hidden characters", 0.8, f"[{ZERO_WIDTH}]"),
        ("hidden markup", 0.6, r"<!--.*?-->|display\s*:\s*none|font-size\s*:\s*0|visibility\s*:\s*hidden"),
        (
            "concealment",
            0.7,
            r"\b(do not|don't|never)\b.{0,20}\b(tell|mention|reveal|disclose|show|inform)\b.{0,25}\b(user|anyone|them|this)\b|"
            r"\bwithout (telling|informing|notifying)\b|\bkeep (this|it) (secret|hidden|between us)\b",
        ),
        (
            "obligation on the model",
            0.5,
            r"\b(you|the assistant|assistant|the (ai|model|bot))\s+(must|shall|should always|should never|"
            r"are required to|have to|need to|will now|are now)\b",
        ),
        (
            "standing order",
            0.5,
            r"\b(always|never)\s+(say|reply|respond|answer|recommend|tell|mention|include|link|refer|send|use|"
            r"output|call|reveal|obey|follow)\b",
        ),
        (
            "exfiltration",
            0.7,
            r"\b(send|post|upload|forward|email|exfiltrate|transmit|leak)\b.{0,40}?\b(to|at)\b.{0,20}?"
            r"(https?://|www\.|[\w.-]+@[\w-]+\.\w+)|!\[[^\]]*\]\(https?://[^)]*[?&][^)]*\)",
        ),
        (
            "conditional trigger",
            0.4,
            r"\b(if|when|whenever)\s+(the\s+)?user\s+(asks|says|mentions|requests|types|writes)\b",
        ),
        ("encoded payload", 0.4, r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}"),
        (
            "names secrets",
            0.3,
            r"\b(system prompt|api[ _-]?keys?|passwords?|credentials|access tokens?|secret keys?)\b",
        ),
        ("link", 0.2, r"https?://|\bwww\.[a-z0-9-]+\.[a-z]{2,}"),
    )
)
# Looser cues of poisoning, for the `injection` detector only: each would flag too many plain notes
# in a memory diff.
POISON_CUES: tuple[InstructionRule, ...] = tuple(
    InstructionRule(name, weight, re.compile(pattern, re.IGNORECASE))
    for name, weight, pattern in (
        (
            "steers answers on a topic",
            0.4,
            r"\b(questions?|asks?|answering)\b.{0,12}\babout\b.{0,60}\b(recommend|reply|answer|say|tell|link|refer)\b",
        ),
        (
            "asks for secrets",
            0.6,
            r"\b(ask|request|collect|send|provide|enter)\b.{0,40}\b(passwords?|credentials?|bank details|card number|"
            r"api keys?|one-time code)\b",
        ),
        (
            "loose obligation",
            0.4,
            r"\b(you|assistant|the model)\b.{0,20}\b(must|should|need to|have to|are required to)\b",
        ),
        (
            "loose standing order",
            0.4,
            r"\b(always|never|from now on|whenever|every time)\b.{0,40}\b(say|reply|respond|answer|recommend|tell|"
            r"mention|ask|link|refer|first)\b",
        ),
    )
)


def _matches(rules: Sequence[InstructionRule], text: str) -> tuple[InstructionRule, ...]:
    return tuple(rule for rule in rules if rule.pattern.search(text))


def instruction_score(text: str) -> tuple[float, tuple[str, ...]]:
    """How much `text` reads as an instruction to the model: noisy-or of the weights of the rules it matches."""
    hits = _matches(INSTRUCTION_RULES, text)
    return 1.0 - float(np.prod([1.0 - rule.weight for rule in hits])), tuple(rule.name for rule in hits)


def instruction_scores(texts: Iterable[str]) -> np.ndarray:
    """Per-text instruction-likeness in [0, 1], for detectors that rank entries (see `instruction_score`)."""
    return np.array([instruction_score(t)[0] for t in texts], dtype=np.float64)


def injection_score(text: str) -> tuple[float, list[str]]:
    """(score in [0, 1], names of the rules and cues that matched): `instruction_score` joined by
    noisy-or with the looser `POISON_CUES`."""
    base, rules = instruction_score(text)
    hits = _matches(POISON_CUES, text)
    score = 1.0 - (1.0 - base) * float(np.prod([1.0 - rule.weight for rule in hits]))
    return score, [*rules, *(rule.name for rule in hits)]
