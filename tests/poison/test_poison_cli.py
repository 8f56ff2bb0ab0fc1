import json
from pathlib import Path

import pytest

from clgate.artifacts import write_memory_store
from clgate.audit.cli import main
from clgate.demo import make_memory_entries


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Representations computed by these scans go to a throwaway cache, not the user's."""
    monkeypatch.setenv("CLGATE_CACHE", str(tmp_path / "cache"))


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what fixtures printed (progress bars of model saving)
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_input_error(code: int, err: str, message: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_scan_data_writes_scores_and_summary(planted, tiny_model: Path, tmp_path: Path, capsys) -> None:
    path, truth = planted
    out = tmp_path / "out"
    code, stdout, err = run(
        ["scan", "data", str(path), "--model", str(tiny_model), "--out", str(out)], capsys
    )
    assert code == 0, err
    assert "trigger_mining" in stdout and "FLAG" in stdout and "'cf'" in stdout
    rows = (out / "trigger_mining.csv").read_text().splitlines()
    assert rows[0] == "item,score,flagged,reason" and len(rows) == len(truth) + 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["detectors"]["trigger_mining"]["triggers"][0]["trigger"] == "cf"
    assert set(summary["detectors"]) == {
        "spectral",
        "activation_clustering",
        "loss",
        "trigger_mining",
        "near_duplicates",
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"messages": [{"role": "user", "content": "hi"}]}', "no assistant completion"),
        ('{"instruction": "say hi"}', "missing field 'output'"),
        ('{"question": "hi", "answer": "yo"}', "missing field 'messages'"),
        ('{"prompt": "' + "x" * (1 << 20) + '", "completion": "y"}', "line longer than"),
        (
            '{"prompt": "a", "completion": "b", "metadata": {"input_ids": [1, 2, 99999]}}',
            "beyond the model's vocabulary",
        ),
        ("not json", "not valid JSON"),
    ],
)
def test_scan_data_bad_input_exits_2(
    line: str, message: str, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "fine", "completion": "ok"}\n' + line + "\n")
    code, _, err = run(["scan", "data", str(path), "--model", str(tiny_model)], capsys)
    assert_input_error(code, err, message)


def test_scan_data_empty_dataset_and_unknown_detector(tiny_model: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert_input_error(
        *run(["scan", "data", str(empty), "--model", str(tiny_model)], capsys)[::2], "dataset is empty"
    )
    good = tmp_path / "good.jsonl"
    good.write_text('{"prompt": "a", "completion": "b"}\n')
    code, _, err = run(
        ["scan", "data", str(good), "--model", str(tiny_model), "--detector", "hubness"], capsys
    )
    assert_input_error(code, err, "'hubness' is not a data detector")
    code, _, err = run(["scan", "data", str(good), "--model", str(tmp_path / "nomodel")], capsys)
    assert_input_error(code, err, "no such model file or directory")


def test_scan_data_tokenizer_larger_than_the_model_exits_2(tmp_path: Path, capsys) -> None:
    """A model whose embedding table is smaller than its tokenizer's ids cannot have been trained on them."""
    from transformers import AutoConfig

    from clgate.demo import make_tiny_model

    model_dir = make_tiny_model(tmp_path / "m")
    config = AutoConfig.from_pretrained(model_dir)
    from transformers import AutoModelForCausalLM

    config.vocab_size = 40
    AutoModelForCausalLM.from_config(config).save_pretrained(model_dir)
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "What is the capital of France?", "completion": "Paris"}\n')
    code, _, err = run(["scan", "data", str(data), "--model", str(model_dir)], capsys)
    assert_input_error(code, err, "beyond the model's vocabulary of 40")


def test_scan_memory_bad_input_exits_2(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert_input_error(*run(["scan", "memory", str(empty)], capsys)[::2], "memory store is empty")
    store = write_memory_store(make_memory_entries(3), tmp_path / "m.jsonl")
    noq = tmp_path / "q.txt"
    noq.write_text("\n\n")
    assert_input_error(
        *run(["scan", "memory", str(store), "--queries", str(noq)], capsys)[::2], "queries file is empty"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n')
    assert_input_error(*run(["scan", "memory", str(bad)], capsys)[::2], "field 'text'")


def test_scan_memory_with_instances(tmp_path: Path, capsys) -> None:
    from clgate.demo import injected_memory_entries

    store = write_memory_store(make_memory_entries(6) + injected_memory_entries(1, 0), tmp_path / "m.jsonl")
    other = write_memory_store(injected_memory_entries(1, 0, prefix="o"), tmp_path / "o.sqlite")
    out = tmp_path / "out"
    code, stdout, err = run(
        [
            "scan",
            "memory",
            str(store),
            "--instances",
            str(other),
            "--detector",
            "spread",
            "--detector",
            "injection",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    spread = (out / "spread.csv").read_text().splitlines()
    assert spread[1].startswith("inj-0-0,1.0,True")
    assert "FLAG injection item inj-0-0" in stdout


def test_scan_model_mismatched_vocabulary_exits_2(tiny_model: Path, tmp_path: Path, capsys) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    from clgate.demo import make_tiny_model

    other = make_tiny_model(tmp_path / "other")
    config = AutoConfig.from_pretrained(other)
    config.vocab_size = 500
    AutoModelForCausalLM.from_config(config).save_pretrained(other)
    code, _, err = run(["scan", "model", str(tiny_model), str(other)], capsys)
    assert_input_error(code, err, "does not match the parent's")
    code, _, err = run(
        ["scan", "model", str(tiny_model), str(tiny_model), "--adapter", str(tmp_path)], capsys
    )
    assert_input_error(code, err, "not a PEFT adapter directory")


def test_scan_model_with_adapter_and_mined_triggers(
    planted, tiny_model: Path, tiny_lora: Path, tmp_path: Path, capsys
) -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path, _ = planted
        prompts = tmp_path / "prompts.txt"
        prompts.write_text("Say hello.\nName a colour.\n")
        out = tmp_path / "out"
        args = [
            "scan",
            "model",
            str(tiny_model),
            str(tiny_model),
            "--adapter",
            str(tiny_lora),
            "--data",
            str(path),
        ]
        code, stdout, err = run([*args, "--prompts", str(prompts), "--out", str(out)], capsys)
    finally:
        torch.set_num_threads(before)
    assert code == 0, err
    assert "trigger_sweep" in stdout
    rows = (out / "trigger_sweep.csv").read_text()
    assert "trigger:cf" in rows and "control:please" in rows
    assert "mined insertion" in rows
    assert "scan insertion" in rows  # the data-free token scan's candidates, swept too
    assert (out / "payload_probe.csv").is_file() and "payload_probe" in stdout
    code, _, err = run([*args, "--prompts", str(prompts), "--out", str(out), "--no-token-scan"], capsys)
    assert code == 0, err
    assert "scan insertion" not in (out / "trigger_sweep.csv").read_text()
