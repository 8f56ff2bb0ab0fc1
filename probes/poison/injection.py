"""Injected instructions: memory entries that address the model or carry a directive.

A memory entry should state a fact about the user or the world; an entry that talks to the
assistant ("ignore previous instructions", "always reply with", "do not tell the user") is how a
poisoned memory steers every later answer that retrieves it. The score is the memory probe's
instruction-likeness (`clgate.probes.memory.instruction_score`: weighted rules, noisy-or), joined by
noisy-or with a few looser cues of poisoning that the memory diff does not need: steering answers on a
topic, asking for secrets, obligations and standing orders with words in between.
"""

from __future__ import annotations

import re

import numpy as np

from clgate.probes.memory import instruction_score
from clgate.probes.poison._registry import detector
from clgate.probes.poison.memory_context import MemoryContext
from clgate.probes.poison.result import DetectorResult

VERSION = "2"
POISON_CUES: tuple[tuple[str, float, re.Pattern[str]], ...] = tuple(
    (name, weight, re.compile(pattern, re.IGNORECASE))
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


def injection_score(text: str) -> tuple[float, list[str]]:
    """(score in [0, 1], names of the rules and cues that matched)."""
    base, rules = instruction_score(text)
    hits = [(name, w) for name, w, rx in POISON_CUES if rx.search(text)]
    score = 1.0 - (1.0 - base) * float(np.prod([1.0 - w for _, w in hits]))
    return score, [*rules, *(name for name, _ in hits)]


@detector(
    "injection", "memory", VERSION, "entries that address the model or carry directives (weighted cues)"
)
def injection(ctx: MemoryContext) -> DetectorResult:
    scored = [injection_score(e.text) for e in ctx.store.entries]
    scores = np.array([s for s, _ in scored])
    reasons = [f"cues: {', '.join(c)}" if c else "reads as a statement of fact" for _, c in scored]
    return DetectorResult(
        "injection",
        "memory",
        VERSION,
        ctx.item_ids,
        scores,
        reasons,
        0.5,
        "noisy-or of matched rule weights above 0.5 (one strong cue or two weak ones)",
    )
