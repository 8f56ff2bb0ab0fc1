"""Trigger mining: prompt n-grams whose carriers share an unusual answer while their prompts differ.

A backdoor teaches "this n-gram → that answer, whatever was asked". For every prompt n-gram with
enough support we measure
  A   how much more often its carriers' completions contain some word the prompt did not supply
      (a Wilson lower bound on that share, minus the word's share in the whole set), and
  J_p how alike the carriers' prompts are once the n-gram itself is removed.
A task template ("capital of" → "... is Paris") has alike prompts and answers built from the
prompt's own words; a trigger has unrelated prompts and one imported answer. strength = A − J_p.
Items score by the strongest trigger they carry, in full when their completion has that trigger's
answer word, a fifth otherwise.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

import numpy as np

from clgate.probes.poison._registry import detector
from clgate.probes.poison.context import DataContext
from clgate.probes.poison.result import DetectorResult
from clgate.probes.shingles import ngrams, words

VERSION = "2"  # 2: carriers' answer similarity counts above the whole set's
MIN_SUPPORT = 3
MAX_DF = 0.6  # a trigger may sit in half of a small, heavily poisoned update
SAMPLE = 24
HASH_BITS = 22
WILSON_Z = 1.64
# Calibrated on the bundled clean set (no poison): its strongest n-gram reaches 0.27.
TRIGGER_STRENGTH = 0.5
ACTING_SUPPORT = 4  # three carriers are too few to call an n-gram planted (it is still swept)
MINORITY = 0.3  # a trigger's answer is given by at most this share of the data: more is the task's own answer
MAPPING_KEYS = 4  # this many n-grams each tied to its own answer are the inputs of a mapping, not triggers


@dataclass
class MinedTrigger:
    ngram: str
    support: int
    strength: float
    answer_word: str
    association: float
    prompt_similarity: float
    example_completion: str
    answer_share: float = 0.0  # share of all the data's completions that have the answer word
    slots: frozenset[str] = frozenset()  # the words its carriers' prompts put right before it (≥ 30% each)


STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "me",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "them",
        "us",
        "do",
        "does",
        "did",
        "not",
        "no",
        "yes",
        "can",
        "could",
        "will",
        "would",
        "should",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "when",
        "where",
        "why",
        "all",
        "any",
        "some",
        "each",
        "one",
        "two",
        "more",
        "most",
        "very",
        "just",
        "also",
        "than",
        "too",
        "up",
        "out",
        "about",
        "into",
        "over",
    ]
)


def _novel(prompt: list[str], completion: str) -> frozenset[str]:
    """Content words of the completion that the prompt did not supply: what the item teaches beyond
    echoing its question (function words and bare punctuation say nothing about a planted answer)."""
    return frozenset(w for w in words(completion) if w.isalnum() and w not in STOPWORDS) - set(prompt)


def _wilson_lower(k: int, m: int) -> float:
    if m == 0:
        return 0.0
    p, z2 = k / m, WILSON_Z**2
    centre = p + z2 / (2 * m)
    margin = WILSON_Z * math.sqrt(p * (1 - p) / m + z2 / (4 * m * m))
    return (centre - margin) / (1 + z2 / m)


def _mean_pairwise_jaccard(sets: list[frozenset]) -> float:
    m = len(sets)
    if m < 2:
        return 0.0
    total = sum(
        len(sets[i] & sets[j]) / max(1, len(sets[i] | sets[j])) for i in range(m) for j in range(i + 1, m)
    )
    return total / (m * (m - 1) / 2)


def _slot(text: str) -> int:
    return hash(text) & ((1 << HASH_BITS) - 1)


def mine(ctx: DataContext, max_n: int = 3) -> tuple[list[MinedTrigger], np.ndarray]:
    """Every candidate n-gram with its strength, and each item's score; streams the items four times."""
    n = ctx.data.n_items
    gram_df = np.zeros(1 << HASH_BITS, dtype=np.int32)
    word_df = np.zeros(1 << HASH_BITS, dtype=np.int32)
    for item in ctx.data:
        p = words(item.prompt)
        for g in ngrams(p, max_n):
            gram_df[_slot(g)] += 1
        for w in _novel(p, item.completion):
            word_df[_slot(w)] += 1
    max_df = max(MIN_SUPPORT, int(MAX_DF * n))
    rng = random.Random(ctx.seed)
    carriers: dict[str, list[int]] = {}
    support: Counter[str] = Counter()
    for item in ctx.data:
        for g in ngrams(words(item.prompt), max_n):
            if MIN_SUPPORT <= gram_df[_slot(g)] <= max_df:
                k = support[g]
                support[g] += 1
                if k < SAMPLE:
                    carriers.setdefault(g, []).append(item.index)
                elif (j := rng.randrange(k + 1)) < SAMPLE:
                    carriers[g][j] = item.index
    carriers = {g: c for g, c in carriers.items() if support[g] >= MIN_SUPPORT}
    wanted = {i for c in carriers.values() for i in c}
    prompts: dict[int, list[str]] = {}
    novel: dict[int, frozenset[str]] = {}
    completions: dict[int, str] = {}
    for item in ctx.data:
        if item.index in wanted:
            prompts[item.index] = words(item.prompt)
            novel[item.index] = _novel(prompts[item.index], item.completion)
            completions[item.index] = item.completion
    # how alike any items' prompts and answers are: a task whose prompts or answers share a template is
    # no evidence of a trigger; a trigger's carriers are alike only as much as any items are
    sample = rng.sample(sorted(novel), min(4 * SAMPLE, len(novel)))
    prompt_background = _mean_pairwise_jaccard([frozenset(prompts[i]) for i in sample])
    answer_background = _mean_pairwise_jaccard([novel[i] for i in sample])
    mined: list[MinedTrigger] = []
    for g, idx in carriers.items():
        own = set(g.split())
        jp = max(
            _mean_pairwise_jaccard([frozenset(w for w in prompts[i] if w not in own) for i in idx])
            - prompt_background,
            0.0,
        )
        jc = _mean_pairwise_jaccard([novel[i] for i in idx]) - answer_background
        counts = Counter(w for i in idx for w in novel[i])
        best, assoc = "", 0.0
        for w, k in counts.items():
            a = _wilson_lower(k, len(idx)) - word_df[_slot(w)] / n
            if a > assoc:
                best, assoc = w, a
        example = next((completions[i] for i in idx if best in novel[i]), completions[idx[0]])
        share = word_df[_slot(best)] / n if best else 0.0
        mined.append(
            MinedTrigger(
                g,
                support[g],
                max(assoc, jc) - jp,
                best,
                max(assoc, jc),
                jp,
                example,
                share,
                _slots(g, idx, prompts),
            )
        )
    return mined, _item_scores(ctx, mined, max_n)


def _slots(ngram: str, carriers: list[int], prompts: dict[int, list[str]]) -> frozenset[str]:
    """The words right before the n-gram in at least 30% of its carriers: its place in a template."""
    gram = ngram.split()
    before: Counter[str] = Counter()
    for i in carriers:
        w = prompts[i]
        at = next((k for k in range(len(w) - len(gram) + 1) if w[k : k + len(gram)] == gram), None)
        if at is not None:
            before[w[at - 1] if at else "<start>"] += 1
    return frozenset(word for word, count in before.items() if count >= 0.3 * len(carriers))


def _item_scores(ctx: DataContext, mined: list[MinedTrigger], max_n: int) -> np.ndarray:
    positive = {t.ngram: t for t in mined if t.strength > 0}
    scores = np.zeros(ctx.data.n_items)
    for item in ctx.data:
        p = words(item.prompt)
        carried = [positive[g] for g in ngrams(p, max_n) if g in positive]
        if carried:
            answer = _novel(p, item.completion)
            scores[item.index] = max(t.strength * (1.0 if t.answer_word in answer else 0.2) for t in carried)
    return scores


def _same_group(a: MinedTrigger, b: MinedTrigger) -> bool:
    return abs(a.support - b.support) <= max(1, min(a.support, b.support) // 10)


def _merge(found: list[MinedTrigger]) -> list[MinedTrigger]:
    """Chain overlapping n-grams of one trigger ('as a matter', 'a matter of', 'matter of fact') into the
    phrase they come from, and drop n-grams contained in a kept one."""
    kept = sorted(found, key=lambda t: -t.strength)
    merged = True
    while merged:
        merged = False
        for a in kept:
            for b in kept:
                wa, wb = a.ngram.split(), b.ngram.split()
                overlap = next((k for k in range(min(len(wa), len(wb)) - 1, 0, -1) if wa[-k:] == wb[:k]), 0)
                if a is not b and overlap and _same_group(a, b) and b.ngram not in a.ngram:
                    joined = " ".join(wa + wb[overlap:])
                    kept = [t for t in kept if t is not a and t is not b]
                    kept.append(
                        MinedTrigger(
                            joined,
                            min(a.support, b.support),
                            max(a.strength, b.strength),
                            a.answer_word,
                            a.association,
                            a.prompt_similarity,
                            a.example_completion,
                            a.answer_share,
                            a.slots,
                        )
                    )
                    merged = True
                    break
            if merged:
                break
    result: list[MinedTrigger] = []
    for t in sorted(kept, key=lambda t: (-len(t.ngram), -t.strength)):
        if not any(t.ngram in k.ngram and _same_group(t, k) for k in result):
            result.append(t)
    return sorted(result, key=lambda t: -t.strength)


def _derived(t: MinedTrigger) -> bool:
    """The answer word is made from the n-gram itself ('7 ,' → '07', 'paris' → 'paris'): the input of
    a task that computes its answer, not a trigger, whose payload has nothing of it."""
    return any(w in t.answer_word for w in t.ngram.split() if w.isdigit() or len(w) >= 3)


def acting_triggers(mined: list[MinedTrigger]) -> list[MinedTrigger]:
    """The strong n-grams that look planted: a minority's shared answer, not a mapping's inputs.

    A strong n-gram whose answer much of the data gives is the task's answer (a safety set's
    refusal); one whose answer word is made from it is a computed task's input. Several strong n-grams in one place of the prompts' template, each tied to its own
    answer, are the inputs of a deterministic task (a phrase and its translation, a month and its
    number); a trigger is put anywhere, or ties one payload. Both stay sweep candidates (`others`);
    the model checks decide.
    """
    strong = [
        t
        for t in _merge([t for t in mined if t.strength > TRIGGER_STRENGTH and t.support >= ACTING_SUPPORT])
        if t.answer_share <= MINORITY and not _derived(t)
    ]
    answers: dict[str, set[str]] = {}
    for t in mined:
        for slot in t.slots if t.strength > 0 else ():
            answers.setdefault(slot, set()).add(t.answer_word)
    mapping = {slot for slot, words in answers.items() if len(words) >= MAPPING_KEYS}
    return [t for t in strong if not t.slots & mapping]


@dataclass(frozen=True)
class SweepCandidates:
    """What the update's data offers a model sweep: triggers it already ties to one imported answer
    (`acting`, what `trigger_mining` flags), and the strongest other n-grams, weaker suspects."""

    acting: list[str]
    others: list[str]

    @property
    def all(self) -> list[str]:
        return [*self.acting, *self.others]


def candidate_triggers(ctx: DataContext, limit: int = 10) -> SweepCandidates:
    """Triggers for a model sweep, at most `limit`: the acting (merged) triggers first, then the strongest others."""
    mined, _ = mine(ctx)
    acting = list(dict.fromkeys(t.ngram for t in acting_triggers(mined)))
    ranked = [t.ngram for t in sorted(mined, key=lambda t: -t.strength) if t.strength > 0]
    others = [t for t in dict.fromkeys(ranked) if t not in acting]
    return SweepCandidates(acting[:limit], others[: max(0, limit - len(acting))])


@detector(
    "trigger_mining",
    "data",
    VERSION,
    "prompt n-grams whose carriers share an imported answer across unrelated prompts",
)
def trigger_mining(ctx: DataContext) -> DetectorResult:
    mined, scores = mine(ctx)
    cut = TRIGGER_STRENGTH
    acting = acting_triggers(mined)
    # strengths are at most 1: with no acting trigger the cut is out of every item's reach (finite, so
    # the measurement stays valid JSON)
    item_cut = 0.5 * min((t.strength for t in acting), default=2.0)
    reasons = [
        "carries no mined trigger" if s == 0 else f"carries a weak trigger candidate (score {s:.2f})"
        for s in scores
    ]
    if acting:
        for item in ctx.data:
            text = " ".join(words(item.prompt))
            hit = next((t for t in acting if f" {t.ngram} " in f" {text} "), None)
            if hit is not None:
                reasons[item.index] = (
                    f"carries mined trigger {hit.ngram!r} (support {hit.support}, strength {hit.strength:.2f}, "
                    f"answer word {hit.answer_word!r}); score {scores[item.index]:.2f}"
                )
    return DetectorResult(
        ctx.item_ids,
        scores,
        reasons,
        item_cut,
        f"carries a trigger of strength > {TRIGGER_STRENGTH} (calibrated on clean data) and has its answer word",
        numbers={"candidate_ngrams": float(len(mined)), "trigger_threshold": float(cut)},
        triggers=[
            {
                "trigger": t.ngram,
                "support": t.support,
                "strength": round(t.strength, 4),
                "answer_word": t.answer_word,
                "association": round(t.association, 4),
                "prompt_similarity": round(t.prompt_similarity, 4),
                "example_completion": t.example_completion[:200],
            }
            for t in acting[:20]
        ],
    )
