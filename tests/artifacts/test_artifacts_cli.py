import json
import subprocess
import sys
from pathlib import Path

import pytest

from clgate.artifacts._embedded import EMBEDDED_MODEL_ROOT
from clgate.audit.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == "0.1.0"


def test_manifest_json_round_trips(tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", str(tiny_model), "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "model" and data["root"].startswith("sha256:")
    assert any(f["tensors"] for f in data["files"])


def test_manifest_table_ends_with_root(tiny_lora: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", str(tiny_lora)]) == 0
    out = capsys.readouterr().out
    assert "adapter manifest" in out and out.strip().splitlines()[-1].startswith("root sha256:")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing", "no such file or directory"),
        (
            lambda d: (d / "x.safetensors").write_bytes(b"\x05") and d / "x.safetensors",
            "not a safetensors file",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message
) -> None:
    path = make(tmp_path)
    code = main(["manifest", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "No such command" in capsys.readouterr().err


@pytest.mark.integration
def test_pulling_the_embedded_model_is_quiet_and_gives_the_recorded_root(tmp_path: Path) -> None:
    """A fresh dequantisation in a new process, as `make install` runs it: clgate's own lines only (no
    library progress bars or warnings between them), and the root README records."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "clgate"), "models", "pull-embedded", "--cache", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert f"root      {EMBEDDED_MODEL_ROOT} (as recorded)" in done.stdout.splitlines()
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["model", "root", "gguf", "embedder"]
