"""Deployment-time audits: deployed files against the promoted manifest, on demand and on a schedule."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clgate.audit import Journal
from clgate.audit.cli import main
from clgate.audit.policy import load_policy
from clgate.audit.schedule import parse_interval
from clgate.errors import InputError
from clgate.ledger import PolicyAdopted, load_private_key


@pytest.fixture
def deployed(world, tiny_model: Path, tmp_path: Path) -> Path:
    """The base model promoted through the gate, and a copy of it as the serving host has it."""
    assert world.gate("--candidate", str(tiny_model)) == 0
    assert world.run("promote", next(iter(world.state().updates)), key="approver") == 0
    copy = tmp_path / "serving" / "model"
    shutil.copytree(tiny_model, copy)
    return copy


def test_untouched_deployment_passes_and_is_recorded(world, deployed: Path, capsys) -> None:
    assert world.audit(deployed) == 0
    out = capsys.readouterr().out
    assert "deployed base matches promoted update" in out and "promote (recorded at entry" in out
    ((_, run),) = world.state().scheduled_runs
    assert run.verdict == "promote" and run.deployed[0].slot == "base"


def test_tampered_weights_are_a_blocking_finding_naming_the_file(world, deployed: Path, capsys) -> None:
    weights = deployed / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0x01
    weights.write_bytes(bytes(data))
    (deployed / "extra.py").write_text("print('hi')")
    assert world.audit(deployed) == 20
    out = capsys.readouterr().out
    assert (
        "differs from promoted update" in out
        and "changed: model.safetensors" in out
        and "extra: extra.py" in out
    )
    assert world.state().scheduled_runs[-1][1].verdict == "block"


def test_deploying_what_was_never_promoted_blocks(world, tiny_lora: Path, deployed: Path, capsys) -> None:
    assert world.audit(deployed, tiny_lora) == 20
    assert "no adapter was ever promoted" in capsys.readouterr().out


def test_intervals() -> None:
    assert parse_interval("6h") == 21600 and parse_interval("30s") == 30 and parse_interval("1.5m") == 90
    for bad in ("6", "h", "-1h", "0s", "soon"):
        with pytest.raises(InputError, match="is not like"):
            parse_interval(bad)
    with pytest.raises(InputError, match="'99999999999999999999d' is longer than a year"):
        parse_interval("99999999999999999999d")


def test_a_run_judged_by_a_policy_nobody_adopted_is_refused(world, deployed: Path, capsys) -> None:
    """As for a gate: a lenient policy of the signer's own would record monitoring evidence nobody agreed to."""
    world.policy.write_text(world.policy.read_text().replace('name = "', 'name = "mine-', 1))
    capsys.readouterr()
    assert world.audit(deployed) == 2
    assert "is not adopted in this ledger" in capsys.readouterr().err
    assert world.state().scheduled_runs == []


def test_serve_with_input_that_fails_every_run_exits_2_at_once(world, deployed: Path, capsys) -> None:
    """A missing key would fail every run: the first run's error ends the command, it never loops."""
    args = ["audit", "serve", "--every", "1s", "--deployed", str(deployed), "--ledger", str(world.boot.ledger),
            "--key", str(deployed.parent / "nokey.pem"), "--trust", str(world.boot.trust)]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 2
    assert "private key file not found" in capsys.readouterr().err


def test_serve_runs_on_schedule_and_stops_on_sigterm(world, deployed: Path) -> None:
    """The daemon, in its own process, judges by the default policy: an admin adopted it."""
    default = load_policy(None)
    adopted = PolicyAdopted(name=default.name, digest=default.digest, text=default.canonical_text)
    with Journal.open(
        world.boot.ledger, load_private_key(world.boot.keys["admin"]), world.boot.trust
    ) as journal:
        journal.append(adopted, default.digest)
    cmd = [
        sys.executable,
        "-c",
        "from clgate.audit.cli import main; main()",
        "audit",
        "serve",
        "--every",
        "1s",
        "--deployed",
        str(deployed),
        "--ledger",
        str(world.boot.ledger),
        "--key",
        str(world.boot.keys["gate"]),
        "--trust",
        str(world.boot.trust),
        "--cache",
        str(deployed.parent / "cache"),
    ]
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        deadline = time.monotonic() + 60
        while len(world.state().scheduled_runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(world.state().scheduled_runs) >= 2
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "scheduled audit: promote" in stderr and "stopped" in stderr and "Traceback" not in stderr
