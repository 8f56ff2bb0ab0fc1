"""The core install: `pip install clgate` in a fresh venv, no model library, verifies a bundle.

An auditor who only checks a ledger should not need torch, inspect-ai or streamlit; a command that
does need one says which extra to install. This builds the wheel from this checkout, installs it
with the versions requirements.lock pins, and drives the installed `clgate` as that auditor would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
HEAVY = ("torch", "transformers", "inspect_ai", "streamlit", "presidio_analyzer", "numpy", "ray")


def _source_tree(dest: Path) -> Path:
    """The files a wheel is built from (the checkout without its venv, tests or caches)."""
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "tests", "benchmarks", "docs", "*.egg-info", "__pycache__"
    )
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("core")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    source = _source_tree(base / "src")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-c", str(ROOT / "requirements.lock"), str(source)], check=True)
    return venv


def clgate(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "clgate"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_core_installs_no_model_library(core_venv: Path) -> None:
    python = str(core_venv / "bin" / "python")
    for module in HEAVY:
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
        assert found.returncode != 0, f"the core install brought {module}"


def test_the_core_keeps_a_ledger_and_verifies_its_bundle_offline(core_venv: Path, tmp_path: Path) -> None:
    for name in ("admin", "pipeline"):
        assert clgate(core_venv, tmp_path, "keys", "new", name).returncode == 0
    env_args = ("--ledger", "ledger.db", "--trust", "trust.toml")
    done = clgate(core_venv, tmp_path, "ledger", "init", "--key", "admin.key", *env_args)
    assert done.returncode == 0, done.stderr
    done = clgate(core_venv, tmp_path, "keys", "add", "pipeline.pub", "--role", "pipeline", "--key", "admin.key",
                  *env_args)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for i in range(3):
        done = clgate(core_venv, tmp_path, "ledger", "append", "--key", "pipeline.key", "--type", "note",
                      "--body", json.dumps({"text": f"note {i}"}), *env_args)  # fmt: skip
        assert done.returncode == 0, done.stderr
    done = clgate(core_venv, tmp_path, "ledger", "export", "--out", "bundle.json", *env_args)
    assert done.returncode == 0, done.stderr

    verified = clgate(
        core_venv, tmp_path, "ledger", "verify", "--bundle", "bundle.json", "--trust", "trust.toml"
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok: 5 entries")

    bundle = json.loads((tmp_path / "bundle.json").read_text())
    bundle["entries"][-1]["envelope"]["payload"] = bundle["entries"][-2]["envelope"]["payload"]
    (tmp_path / "forged.json").write_text(json.dumps(bundle))
    forged = clgate(
        core_venv, tmp_path, "ledger", "verify", "--bundle", "forged.json", "--trust", "trust.toml"
    )
    assert forged.returncode == 1, forged.stdout + forged.stderr


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("eval", "list"), "evals"),
        (("scan", "data", "data.jsonl"), "models"),
        (("diff", "weights", "a", "b"), "models"),
    ],
)
def test_a_command_of_a_missing_extra_names_the_extra(
    core_venv: Path, tmp_path: Path, args, extra: str
) -> None:
    done = clgate(core_venv, tmp_path, *args)
    assert done.returncode == 2
    assert f"pip install 'clgate[{extra}]'" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
