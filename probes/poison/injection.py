"""Injected instructions: memory entries that address the model or carry a directive.

A memory entry should state a fact about the user or the world; an entry that talks to the
assistant is how a poisoned memory steers every later answer that retrieves it. The score is
`clgate.probes.instructions.injection_score`: the memory diff's instruction rules joined by noisy-or
with a few looser cues of poisoning.
"""

from __future__ import annotations

import numpy as np

from clgate.probes.instructions import injection_score
from clgate.probes.poison._registry import detector
from clgate.probes.poison.memory_context import MemoryContext
from clgate.probes.poison.result import DetectorResult

VERSION = "2"


@detector(
    "injection", "memory", VERSION, "entries that address the model or carry directives (weighted cues)"
)
def injection(ctx: MemoryContext) -> DetectorResult:
    scored = [injection_score(e.text) for e in ctx.store.entries]
    scores = np.array([s for s, _ in scored])
    reasons = [f"cues: {', '.join(c)}" if c else "reads as a statement of fact" for _, c in scored]
    return DetectorResult(
        ctx.item_ids,
        scores,
        reasons,
        0.5,
        "noisy-or of matched rule weights above 0.5 (one strong cue or two weak ones)",
    )
