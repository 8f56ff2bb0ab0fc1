"""Word n-grams and MinHash signatures of texts: the text side of trigger mining, flooding and spread."""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
from datasketch import MinHash

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
NUM_PERM = 64


def words(text: str) -> list[str]:
    """Lower-cased words and single punctuation/symbol marks (so 'ǂ' or '@@' stay visible)."""
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], max_n: int = 3) -> set[str]:
    return {" ".join(tokens[i : i + n]) for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1)}


def char_shingles(text: str, k: int = 5) -> set[str]:
    """Character k-grams of whitespace-normalised text; short texts become one shingle."""
    norm = " ".join(text.lower().split())
    if len(norm) <= k:
        return {norm}
    return {norm[i : i + k] for i in range(len(norm) - k + 1)}


def minhash(shingles: Iterable[str], num_perm: int = NUM_PERM) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch([s.encode("utf-8") for s in shingles])
    return m


def signature(text: str, num_perm: int = NUM_PERM) -> np.ndarray:
    """MinHash signature (uint32 per permutation) of the text's character shingles."""
    return minhash(char_shingles(text), num_perm).hashvalues.astype(np.uint32)
