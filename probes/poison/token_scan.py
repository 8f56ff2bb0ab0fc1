"""Trigger candidates from the models alone, for an update gated without the data that names its trigger.

Every two-letter token (aa … zz, 676: the rare-token triggers of the backdoor literature, cf, mn, bb,
tq, are all of this kind) goes in front of a few general probes; the ones that move the candidate's
first answer token furthest beyond how far they move the parent's join the sweep's candidates,
where the threshold of the controls and the confirmation by generation judge them like any other.
Log-likelihood only, batched; the parent's shifts are cached by its digest, so each gate pays for
the candidate's pass alone. It does not cover longer tokens or phrases: a phrase trigger absent from
the data is found only when its payload leaks (the payload probe) or it is on the list.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from string import ascii_lowercase

import numpy as np

from clgate.probes.poison.sweep import kl_shift, probe_table
from clgate.progress import Advance, Tally, no_progress
from clgate.runtime import RuntimeModel, ServedModel, insert_trigger

VERSION = "1"
SCAN_PROBES = 2
KEEP = 6  # the strongest this many join the sweep


def letter_pairs() -> list[str]:
    return [a + b for a in ascii_lowercase for b in ascii_lowercase]


def _mean_shift(
    model: RuntimeModel | ServedModel, probes: list[str], tokens: list[str], advance: Advance
) -> np.ndarray:
    """Per token: the mean KL of the model's first answer token with it in front of each probe vs without."""
    texts = [insert_trigger(p, t) for t in ["", *tokens] for p in probes]
    table = probe_table(model, texts, batch_size=64, advance=advance)
    return kl_shift(table.next_logprobs, len(probes)).reshape(-1, len(probes))[1:].mean(1)


def scan_tokens(
    parent: RuntimeModel | ServedModel,
    candidate: RuntimeModel | ServedModel,
    prompts: list[str],
    cache_dir: Path,
    advance: Advance = no_progress,
) -> list[str]:
    """The two-letter tokens that move the candidate most beyond the parent, strongest first.

    `advance` hears texts run: the parent's (unless cached), then the candidate's.
    """
    probes, tokens = prompts[:SCAN_PROBES], letter_pairs()
    key = hashlib.sha256(f"{VERSION}|{parent.digest}|{parent.numerics}|{probes}".encode()).hexdigest()[:32]
    path = Path(cache_dir) / "poison" / f"token-scan-{key}.npy"
    texts = (len(tokens) + 1) * len(probes)
    tally = Tally(advance)
    to_parent, to_candidate = tally.part(0 if path.is_file() else texts), tally.part(texts)
    try:
        parent_shift = np.load(path)
    except (OSError, ValueError):
        parent_shift = _mean_shift(parent, probes, tokens, to_parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:  # written whole, then renamed: a gate beside it never reads half a file
            np.save(fh, parent_shift)
        os.replace(tmp, path)
    effect = _mean_shift(candidate, probes, tokens, to_candidate) - parent_shift
    return [tokens[i] for i in np.argsort(-effect)[:KEEP]]
