"""Device and dtype resolution, and every bad placement as a one-line error (exit 2 through the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clgate.audit.cli import main
from clgate.errors import InputError
from clgate.runtime import ModelSpec, Placement, resolve_placement


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch):
    """torch sees two GPUs; `bf16` says whether they support bfloat16."""

    def install(bf16: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)

    return install


def test_auto_is_the_cpu_in_fp32_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_placement() == Placement("cpu", "float32")
    assert resolve_placement("cpu", "bfloat16") == Placement("cpu", "bfloat16")
    assert resolve_placement().tag == "cpu-float32"


def test_auto_is_cuda_in_bf16_when_present(fake_cuda) -> None:
    fake_cuda(bf16=True)
    assert resolve_placement() == Placement("cuda", "bfloat16")
    assert resolve_placement("cuda:1", "float16") == Placement("cuda:1", "float16")
    assert resolve_placement("cpu") == Placement("cpu", "float32")
    assert resolve_placement("cuda:0", "float32").tag == resolve_placement("cuda:1", "float32").tag


def test_auto_is_fp16_on_a_gpu_without_bf16(fake_cuda) -> None:
    fake_cuda(bf16=False)
    assert resolve_placement() == Placement("cuda", "float16")
    with pytest.raises(InputError, match="no bf16 support"):
        resolve_placement("cuda", "bfloat16")


def test_a_gpu_that_is_not_there_is_refused(fake_cuda) -> None:
    fake_cuda()
    with pytest.raises(InputError, match=r"device cuda:2 asked for, but only 2 CUDA device\(s\) are visible"):
        resolve_placement("cuda:2")


@pytest.mark.parametrize(
    ("device", "dtype", "message"),
    [
        ("tpu", "auto", "unknown device 'tpu' (one of auto, cpu, cuda, cuda:N)"),
        ("cuda:x", "auto", "unknown device 'cuda:x'"),
        ("cpu", "int8", "unknown dtype 'int8' (one of auto, float32, bfloat16, float16)"),
        ("cpu", "float16", "dtype float16 is not supported on the CPU"),
    ],
)
def test_bad_placements_are_one_line_errors(device: str, dtype: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        resolve_placement(device, dtype)
    assert message in str(err.value) and len(str(err.value).splitlines()) == 1


def test_a_spec_checks_its_spelling_when_made() -> None:
    with pytest.raises(InputError, match="unknown device 'gpu'"):
        ModelSpec(Path("m"), device="gpu")
    assert ModelSpec("m", "a").adapter == Path("a")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where CUDA is absent")
def test_cuda_asked_for_without_cuda() -> None:
    with pytest.raises(InputError, match=r"device cuda asked for, but CUDA is not available \(torch "):
        resolve_placement("cuda")


def _commands(tiny_model: Path, tiny_lora: Path, data: Path) -> dict[str, list[str]]:
    return {
        "eval": ["eval", str(tiny_model), "--suite", "retention", "--limit", "2", "--no-cache"],
        "eval compare": [
            "eval",
            "compare",
            str(tiny_model),
            str(tiny_model),
            "--suite",
            "retention",
            "--no-cache",
        ],
        "diff activations": ["diff", "activations", str(tiny_model), str(tiny_lora)],
        "scan model": ["scan", "model", str(tiny_model), str(tiny_model), "--adapter", str(tiny_lora)],
        "scan data": ["scan", "data", str(data), "--model", str(tiny_model)],
    }


@pytest.mark.parametrize("command", ["eval", "eval compare", "diff activations", "scan model", "scan data"])
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--dtype", "int8"], "unknown dtype 'int8'"),
        (["--device", "cpu", "--dtype", "float16"], "dtype float16 is not supported on the CPU"),
        pytest.param(
            ["--device", "cuda"],
            "CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here"),
        ),
    ],
)
def test_cli_refuses_bad_placements_with_exit_2(
    command: str,
    flags: list[str],
    message: str,
    tiny_model: Path,
    tiny_lora: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from clgate.demo import make_dataset

    monkeypatch.setenv("CLGATE_CACHE", str(tmp_path / "cache"))
    data = make_dataset(tmp_path / "data.jsonl")
    args = [*_commands(tiny_model, tiny_lora, data)[command], *flags]
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "cache" / "activations").exists() and not (tmp_path / "cache" / "poison").exists()
