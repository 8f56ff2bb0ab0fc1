"""`clgate eval`: run, compare, list, and every bad-input path (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clgate.audit.cli import main
from clgate.measurement import Measurement


def test_eval_model_writes_a_measurement(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.json"
    args = ["eval", str(tiny_model), "--suite", "retention,honesty", "--limit", "5"]
    code = main([*args, "--json", str(out), "--no-cache", "--log-dir", str(tmp_path / "logs")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "retention" in printed and "honesty" in printed and "inspect logs" in printed
    m = Measurement.from_json(out.read_text())
    assert m.numbers["retention.n"] == 5 and 0 <= m.numbers["honesty.accuracy"] <= 1
    assert {r["suite"] for r in m.details} == {"retention", "honesty"}


def test_eval_compare_prints_paired_statistics(
    tiny_model: Path, tiny_model_other: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "eval",
            "compare",
            str(tiny_model),
            str(tiny_model_other),
            "--suite",
            "sycophancy",
            "--limit",
            "6",
            "--json",
            "-",
            "--no-cache",
            "--log-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "evals.compare" and data["parent"] != data["candidate"]
    assert {"sycophancy.mcnemar_p", "sycophancy.delta_ci_low", "sycophancy.flipped.delta"} <= set(
        data["numbers"]
    )


def test_eval_list_names_every_suite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("retention", "over_refusal", "prompt_injection", "target", "triggers"):
        assert name in out


def _broken_dataset(tmp_path: Path) -> Path:
    path = tmp_path / "update.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": \n')
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (lambda m, t: ["eval", str(m), "--suite", "nope"], "unknown suite 'nope'"),
        (
            lambda m, t: ["eval", str(m), "--suite", "target", "--dataset", str(_broken_dataset(t))],
            "update.jsonl:2: not valid JSON",
        ),
        (lambda m, t: ["eval", str(t), "--suite", "retention"], "not a model directory (no config.json)"),
        (
            lambda m, t: ["eval", str(t / "missing"), "--suite", "retention"],
            "no such model file or directory",
        ),
        (
            lambda m, t: [
                "eval",
                "compare",
                str(m),
                str(t / "missing"),
                "--suite",
                "retention",
                "--limit",
                "2",
            ],
            "no such model file or directory",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv, message: str
) -> None:
    code = main([*argv(tiny_model, tmp_path), "--no-cache", "--log-dir", str(tmp_path / "logs")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_tokenizer_without_chat_template_is_refused(
    no_template_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["eval", str(no_template_model), "--suite", "retention", "--no-cache", "--log-dir", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "tokenizer has no chat template" in err and len(err.strip().splitlines()) == 1
