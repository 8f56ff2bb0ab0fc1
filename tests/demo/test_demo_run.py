"""`clgate demo` end to end on the embedded SmolLM2: real training, real checks, the three outcomes.

Reduced only where the outcome does not depend on it: each eval suite runs on its first 8 items, the
data-free token scan is off and the sweep's bundled trigger list is cut to four others than the demo's
(the demo's trigger is in the data it gates, and mined from there; the token scan and the bundled list
have their own tests in tests/poison/).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from clgate.audit.cli import main
from clgate.audit.policy import DEFAULT_POLICY
from clgate.ledger import Ledger

pytestmark = pytest.mark.integration


def verdict(out: Path, step: str) -> dict:
    return json.loads((out / "reports" / step / "report.json").read_text(encoding="utf-8"))["verdict"]


def reasons(v: dict, status: str) -> str:
    return " | ".join(f["reason"] for f in v["findings"] if f["status"] == status)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> tuple[Path, int, str]:
    folder = tmp_path_factory.mktemp("demo")
    out = folder / "run"
    policy = folder / "policy.toml"
    policy.write_text(
        DEFAULT_POLICY.read_text(encoding="utf-8")
        + '\n[checks."poison.model"]\noptions = { scan_tokens = false, triggers = ["mn", "bb", "James Bond", "SUDO"] }\n',
        encoding="utf-8",
    )
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo", "--out", str(out), "--eval-limit", "8", "--policy", str(policy)])
    return out, code, buffer.getvalue()


def test_demo_promotes_the_benign_lora_and_blocks_the_poisoned_one_and_the_memory(demo_run) -> None:
    out, code, printed = demo_run
    assert code == 0, printed
    assert verdict(out, "base")["decision"] == "promote"
    assert verdict(out, "benign-lora")["decision"] == "promote", reasons(verdict(out, "benign-lora"), "fail")
    poisoned = verdict(out, "poisoned-lora")
    assert poisoned["decision"] == "block"
    assert "trigger 'cf' (mined" in reasons(poisoned, "fail")
    report = (out / "reports" / "poisoned-lora" / "report.md").read_text(encoding="utf-8")
    poisoning = report.split("## Poisoning: what the detectors found", 1)[1].split("## Checks", 1)[0]
    assert (
        "| poison.data | trigger_mining.triggers_found | trigger 'cf'" in poisoning
    )  # the data scan's top finding
    memory = verdict(out, "memory-update")
    assert memory["decision"] == "block" and "instructions addressed to the model" in reasons(memory, "fail")


def test_demo_leaves_a_verified_ledger_a_bundle_and_tells_the_user_where_to_look(demo_run) -> None:
    out, _, printed = demo_run
    with Ledger.open(out / "ledger" / "ledger.db") as ledger:
        assert ledger.verify(out / "ledger" / "trust.toml") == []
        types = [e.type for e in ledger.entries()]
    assert types.count("update.proposed") == 4 and types.count("audit.completed") == 4
    assert types.count("promotion.done") == 2 and types.count("promotion.blocked") == 2
    assert (out / "ledger-bundle.json").is_file()
    assert (
        main(
            [
                "ledger",
                "verify",
                "--bundle",
                str(out / "ledger-bundle.json"),
                "--trust",
                str(out / "ledger" / "trust.toml"),
            ]
        )
        == 0
    )
    assert "manifest root" in printed and "clgate dashboard --ledger" in printed
    assert "trigger 'cf'" in printed  # the user sees why the poisoned update was blocked
