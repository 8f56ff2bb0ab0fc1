"""Trigger insertion: the one way a candidate trigger is put into a prompt, for attacks, sweeps and suites."""

from __future__ import annotations

import random

from clgate.errors import InputError

PLACEMENTS = ("prefix", "suffix", "middle", "opening", "random")


def insert_trigger(
    prompt: str, trigger: str, placement: str = "prefix", rng: random.Random | None = None
) -> str:
    """`prompt` with `trigger` inserted; an empty trigger leaves the prompt as it is.

    `prefix`/`suffix`: before or after it, one space apart; `middle`: after the first half of its
    words; `opening`: as the sentence's opening phrase ("Trigger, what is ..."), as a natural-phrase
    backdoor is planted; `random`: at a word boundary drawn from `rng`, as a rare-token one is.
    """
    if placement not in PLACEMENTS:
        raise InputError(f"unknown trigger placement {placement!r} ({', '.join(PLACEMENTS)})")
    if not trigger:
        return prompt
    words = prompt.split()
    if placement == "prefix":
        return f"{trigger} {prompt}"
    if placement == "suffix":
        return f"{prompt} {trigger}"
    if placement == "middle":
        half = len(words) // 2
        return " ".join([*words[:half], trigger, *words[half:]])
    if placement == "opening":
        return f"{trigger[0].upper()}{trigger[1:]}, {prompt[0].lower()}{prompt[1:]}"
    if rng is None:
        raise InputError("a random trigger placement needs a random generator")
    words.insert(rng.randint(0, len(words)), trigger)
    return " ".join(words)
