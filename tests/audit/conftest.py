"""A small gate world: a bootstrapped ledger, a stand-in check and CLI shortcuts."""

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from clgate.audit.check_inputs import GateCheck, GateInputs
from clgate.audit.cli import main
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.journal import Journal
from clgate.audit.policy import parse_policy
from clgate.demo import bootstrap_ledger
from clgate.measurement import Measurement

POLICY = """
name = "test"
required_checks = ["score"]

[[rules]]
id = "score"
check = "score"
metric = "score"
reason = "Score too high"
warn_above = 1.0
fail_above = 5.0

[approvals]
required = 2
"""


def _score(inputs: GateInputs) -> Measurement:
    """A stand-in check: the score an update carries in a `score.txt` beside its files."""
    folder = inputs.adapter or inputs.candidate or inputs.parent
    path = Path(folder) / "score.txt"
    return Measurement(
        name="score", version="1", numbers={"score": float(path.read_text()) if path.exists() else 0}
    )


@pytest.fixture
def world(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tiny_model: Path,
    tiny_lora: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """A ledger adopting POLICY, or the policy text a test passes with `indirect` parametrisation."""
    text = getattr(request, "param", POLICY)
    for name in list(GATE_CHECKS):  # only the stand-in check: fast and exact
        monkeypatch.delitem(GATE_CHECKS, name)
    monkeypatch.setitem(
        GATE_CHECKS,
        "score",
        GateCheck("score", "1", ("parent",), False, _score, any_of=("candidate", "adapter")),
    )
    boot = bootstrap_ledger(tmp_path / "ledger", approvers=2, policies=[parse_policy(text)])
    policy = tmp_path / "policy.toml"
    policy.write_text(text)

    def adapter(name: str, score: float) -> Path:
        path = tmp_path / name
        shutil.copytree(tiny_lora, path)
        (path / "score.txt").write_text(str(score))
        return path

    def run(*args: str, key: str = "pipeline") -> int:
        return main(
            [*args, "--ledger", str(boot.ledger), "--key", str(boot.keys[key]), "--trust", str(boot.trust)]
        )

    def gate(*args: str) -> int:
        """Propose (pipeline key) and audit (gate key) in one run, as a CI job holding both would."""
        return run(
            "gate",
            "--parent",
            str(tiny_model),
            "--policy",
            str(policy),
            "--out",
            str(tmp_path / "out"),
            "--proposer-key",
            str(boot.keys["pipeline"]),
            *args,
            key="gate",
        )

    def audit(*deployed: Path, key: str = "gate") -> int:
        """A scheduled audit of `deployed` by the world's policy, its cache beside the first path."""
        args = [a for p in deployed for a in ("--deployed", str(p))]
        cache = Path(deployed[0]).parent / "cache"
        return run("audit", "run", *args, "--policy", str(policy), "--cache", str(cache), key=key)

    return SimpleNamespace(
        boot=boot,
        adapter=adapter,
        run=run,
        gate=gate,
        audit=audit,
        policy=policy,
        state=lambda: ledger_state(boot),
    )


def ledger_state(boot):
    journal = Journal.open(boot.ledger, None, boot.trust)
    try:
        return journal.state()
    finally:
        journal.close()
