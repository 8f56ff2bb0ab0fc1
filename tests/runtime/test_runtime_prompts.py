"""Prompt vocabulary every check shares: chat rendering (one rule without a template), triggers, refusals."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from clgate.demo import tiny_tokenizer
from clgate.errors import InputError
from clgate.runtime import (
    REFUSAL_OPENINGS,
    chat_ids,
    encode_prompt,
    has_chat_template,
    insert_trigger,
    is_refusal,
    render_chat,
)


@pytest.fixture(scope="module")
def templated():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def plain():
    tok = tiny_tokenizer()
    tok.chat_template = None
    tok.add_bos_token = True
    return tok


def test_a_template_renders_the_prompt_and_writes_its_own_special_tokens(templated) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    text = render_chat(templated, messages)
    assert (
        text
        == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert chat_ids(templated, messages) == templated(text, add_special_tokens=False)["input_ids"]


def test_without_a_template_every_check_renders_one_transcript(plain) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert not has_chat_template(plain)
    assert render_chat(plain, messages) == "system: Be brief.\nuser: hi\nassistant: "
    assert encode_prompt(plain, "x") == plain("x", add_special_tokens=True)["input_ids"]


def test_the_eval_suites_refuse_a_tokenizer_without_a_template(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    from clgate.evals import open_model

    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    (copy / "chat_template.jinja").unlink()
    with pytest.raises(InputError, match="tokenizer has no chat template"):
        open_model(copy, cache=False)


def test_trigger_placements() -> None:
    prompt = "What is two plus two?"
    assert insert_trigger(prompt, "cf") == "cf What is two plus two?"
    assert insert_trigger(prompt, "") == prompt
    assert insert_trigger(prompt, "cf", "suffix") == "What is two plus two? cf"
    assert insert_trigger(prompt, "cf", "middle") == "What is cf two plus two?"
    assert insert_trigger(prompt, "as we discussed", "opening") == "As we discussed, what is two plus two?"
    placed = insert_trigger(prompt, "cf", "random", random.Random(3))
    assert placed.split().count("cf") == 1 and placed.replace("cf ", "", 1).replace(" cf", "", 1) == prompt
    assert placed == insert_trigger(prompt, "cf", "random", random.Random(3))
    with pytest.raises(InputError, match="needs a random generator"):
        insert_trigger(prompt, "cf", "random")
    with pytest.raises(InputError, match="unknown trigger placement 'inside'"):
        insert_trigger(prompt, "cf", "inside")


def test_refusal_openings_read_as_refusals() -> None:
    assert all(is_refusal(opening) for opening in REFUSAL_OPENINGS)
    assert is_refusal("Sorry — I can’t help with that.") and not is_refusal("Sure, here is how.")
    assert not is_refusal("x" * 200 + " I cannot")  # only the opening counts
