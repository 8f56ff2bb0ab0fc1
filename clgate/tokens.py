"""Token-id helpers shared by the layers that run models (evals' scoring engine, the trigger sweep)."""

from __future__ import annotations


def common_prefix(seqs: list[list[int]], limit: int) -> list[int]:
    """The ids every sequence starts with, at most `limit` of them (a chat template's shared head)."""
    first = seqs[0]
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return first[:n]
