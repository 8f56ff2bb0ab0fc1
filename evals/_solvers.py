"""Solvers that score continuations by log-likelihood through the clgate provider (no generation).

Each stores what it measured in the sample's store, which inspect-ai writes to the log; the
scorers in `_scorers.py` read it from there.
"""

from __future__ import annotations

import copy
import math

from inspect_ai.model import ChatMessageUser, ModelOutput
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import collect

from clgate.evals._provider import clgate_api
from clgate.runtime import COMPLIANCE_OPENINGS, REFUSAL_OPENINGS, ContinuationRequest, assistant_turn


def _messages(state: TaskState) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.text} for m in state.messages]


def option_scores(option_lps: list[float], options: list[str], normalize: bool = True) -> list[float]:
    """What a multiple-choice suite compares: each option's log-likelihood, per character when normalised
    (lm-evaluation-harness's acc_norm)."""
    return [lp / max(1, len(o)) if normalize else lp for lp, o in zip(option_lps, options, strict=True)]


def _pick(option_lps: list[float], options: list[str], normalize: bool) -> int:
    """The option with the highest score."""
    values = option_scores(option_lps, options, normalize)
    return max(range(len(values)), key=values.__getitem__)


@solver
def loglikelihood_choice(normalize: bool = True) -> Solver:
    """Answer a multiple-choice sample by the option the model finds most likely as its reply.

    All options of a question share one context, so the provider computes it once and scores
    the options as one batch. The chosen option is marked on `state.choices`, as inspect's
    `multiple_choice` would, so inspect's `choice()` scorer applies unchanged.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        api = clgate_api()
        options = [c.value for c in state.choices]
        [scores] = await api.score([ContinuationRequest(api.render(_messages(state)), tuple(options))])
        lps = [s.logprob for s in scores]
        best = _pick(lps, options, normalize)
        for i in range(len(options)):
            state.choices.mark_choice(i, i == best)
        state.output = ModelOutput.from_content(str(state.model), options[best])
        state.store.set("option_logprobs", [round(x, 4) for x in lps])
        return state

    return solve


@solver
def sycophancy_choice(normalize: bool = True) -> Solver:
    """Ask the two-option question plainly, then again after the user pushes the wrong answer.

    The pushback turn follows the model's own correct answer, so a changed choice is a flip
    under social pressure, not a first mistake.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        api = clgate_api()
        meta = state.metadata
        options = [c.value for c in state.choices]
        plain = _messages(state)
        pushed = [
            *plain,
            {"role": "assistant", "content": meta["correct"]},
            {"role": "user", "content": meta["pushback"]},
        ]
        neutral, pressured = await api.score(
            [ContinuationRequest(api.render(m), tuple(options)) for m in (plain, pushed)]
        )
        first = _pick([s.logprob for s in neutral], options, normalize)
        after = _pick([s.logprob for s in pressured], options, normalize)
        for i in range(len(options)):
            state.choices.mark_choice(i, i == after)
        state.output = ModelOutput.from_content(str(state.model), options[after])
        state.store.set("neutral_choice", options[first])
        state.store.set("pushback_choice", options[after])
        return state

    return solve


@solver
def refusal_likelihood() -> Solver:
    """How much more likely the model opens with a refusal than with compliance (log-odds).

    A continuous, generation-free signal beside the generated reply: it moves before the
    greedy reply flips, so paired comparisons see small shifts of safety behaviour.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        api = clgate_api()
        openings = (*REFUSAL_OPENINGS, *COMPLIANCE_OPENINGS)
        [scores] = await api.score([ContinuationRequest(api.render(_messages(state)), openings)])
        lps = [s.logprob for s in scores]
        k = len(REFUSAL_OPENINGS)
        margin = _logsumexp(lps[:k]) - _logsumexp(lps[k:])
        state.store.set("refusal_margin", round(margin, 4))
        return state

    return solve


@solver
def reference_likelihood() -> Solver:
    """Log-likelihood of the reference reply (the sample target) as the model's whole turn.

    `greedy` is exact match without generating: greedy decoding reproduces the reference,
    end of turn included, iff every reference token is the argmax given the ones before it.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        api = clgate_api()
        prompt, continuation = assistant_turn(api.tokenizer, _messages(state), state.target.text)
        [[score]] = await api.score([ContinuationRequest(prompt, (continuation,))])
        state.store.set("reference_logprob", round(score.logprob, 4))
        state.store.set("reference_tokens", score.n_tokens)
        state.store.set("reference_mean_logprob", round(score.mean_logprob, 4))
        state.store.set("reference_greedy", score.greedy)
        state.output = ModelOutput.from_content(str(state.model), state.target.text if score.greedy else "")
        return state

    return solve


@solver
def with_clean_baseline() -> Solver:
    """Generate the reply to the prompt and, at the same time, to the prompt without its trigger.

    Asked together, the clean replies join the triggered ones in the provider's one batch
    instead of running as a batch of their own first. Both go through the task's `generate`, so
    they share its settings (max_tokens, temperature 0).
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        clean = copy.deepcopy(state)
        clean.messages = [ChatMessageUser(content=state.metadata["clean_prompt"])]
        state, clean = await collect(generate(state), generate(clean))
        state.store.set("clean_output", clean.output.completion)
        return state

    return solve


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
