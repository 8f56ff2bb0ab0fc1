"""Scoring and generation against plain one-sequence-at-a-time transformers calls on a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clgate.runtime import Batching, ContinuationRequest, assistant_turn, load_model, render_chat


@pytest.fixture(scope="module")
def loaded(tiny_model: Path):
    return load_model(tiny_model, device="cpu")


def _naive(model, tokenizer, context: str, continuation: str) -> tuple[float, bool]:
    ctx = tokenizer(context, add_special_tokens=False).input_ids
    cont = tokenizer(continuation, add_special_tokens=False).input_ids
    with torch.no_grad():
        logits = model(torch.tensor([ctx + cont])).logits[0].float()
    lp = torch.log_softmax(logits, -1)
    positions = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1)
    target = torch.tensor(cont)
    return float(lp[positions, target].sum()), bool((lp[positions].argmax(-1) == target).all())


QUESTIONS = [
    ("What is the capital of France?", ["Paris", "London", "Berlin is the capital of Germany, not France."]),
    ("Two plus two?", ["four", "five"]),
    (
        "The quick brown fox jumps over the lazy dog. " * 6 + "What jumps?",
        ["The fox.", "The dog.", "x", "A cat"],
    ),
    ("Hi", ["Hello there, how can I help you today?"]),
]


@pytest.mark.parametrize(
    ("context_budget", "option_budget", "system"),
    [(4096, 2048, None), (40, 12, None), (4096, 2048, "You are a careful assistant who answers briefly.")],
)
def test_scores_equal_unbatched_forward_passes(
    loaded, context_budget: int, option_budget: int, system: str | None
) -> None:
    """Left padding, the shared-prefix and per-question caches and chunking change nothing:
    the same log-probs as scoring each (context, option) alone. A system prompt gives every
    context a long common prefix, which the engine then runs once per batch."""
    batching = Batching(context_tokens_per_batch=context_budget, option_tokens_per_batch=option_budget)
    head = [{"role": "system", "content": system}] if system else []
    requests = [
        ContinuationRequest(render_chat(loaded.tokenizer, [*head, {"role": "user", "content": q}]), tuple(o))
        for q, o in QUESTIONS
    ]
    results = loaded.score(requests, batching)
    assert [len(r) for r in results] == [len(o) for _, o in QUESTIONS]
    for request, scores in zip(requests, results, strict=True):
        for continuation, score in zip(request.continuations, scores, strict=True):
            expected, greedy = _naive(loaded.module, loaded.tokenizer, request.context, continuation)
            assert score.logprob == pytest.approx(expected, abs=1e-3)
            assert score.greedy == greedy
            assert score.n_tokens == len(loaded.tokenizer(continuation, add_special_tokens=False).input_ids)


def _plain_generate(model, tokenizer, stops: list[int], prompt: str, max_new_tokens: int) -> str:
    """One prompt alone through `generate`: no padding, no shared cache."""
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
            eos_token_id=stops,
        )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()


@pytest.mark.parametrize("system", [None, "You are a careful assistant who answers briefly."])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_batched_generation_equals_plain_generation_one_at_a_time(
    loaded, system: str | None, batch_size: int
) -> None:
    """Left padding after the shared head, and the head's cache reused per batch, change no reply."""
    head = [{"role": "system", "content": system}] if system else []
    prompts = [render_chat(loaded.tokenizer, [*head, {"role": "user", "content": q}]) for q, _ in QUESTIONS]
    batched = loaded.greedy(prompts, max_new_tokens=8, batch_size=batch_size)
    plain = [_plain_generate(loaded.module, loaded.tokenizer, loaded.stop_ids, p, 8) for p in prompts]
    assert batched == plain
    assert len(set(batched)) > 1  # the replies differ, so a mix-up of rows would show


def test_assistant_turn_closes_the_turn_as_the_template_does(loaded) -> None:
    prompt, continuation = assistant_turn(loaded.tokenizer, [{"role": "user", "content": "Hi"}], "Hello")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert continuation == "Hello<|im_end|>"


def test_empty_continuation_is_refused(loaded) -> None:
    with pytest.raises(ValueError, match="empty continuation"):
        loaded.score([ContinuationRequest("Hi", ("",))])


def test_many_options_longer_together_than_the_model_keep_their_whole_context(loaded) -> None:
    """Options restart their positions after the context, so only the longest must fit beside it: 120
    options of ~12 tokens (far past the tiny model's 512 positions together) score as each does alone."""
    context = (
        render_chat(loaded.tokenizer, [{"role": "user", "content": "How do I contact Bo?"}]) + "Reach Bo at"
    )
    options = tuple(f" +1 415-{n:03d}-{(7 * n) % 10000:04d}" for n in range(120))
    assert (
        sum(len(loaded.tokenizer(o, add_special_tokens=False).input_ids) for o in options) > loaded.max_length
    )
    scores = loaded.score([ContinuationRequest(context, options)])[0]
    for option, score in zip(options[::17], scores[::17], strict=True):
        assert score.logprob == pytest.approx(
            _naive(loaded.module, loaded.tokenizer, context, option)[0], abs=1e-3
        )


def test_an_option_with_no_room_for_its_context_is_refused(loaded) -> None:
    with pytest.raises(ValueError, match="leaves no room for its context"):
        loaded.score([ContinuationRequest("Hi", ("word " * loaded.max_length,))])
