"""`clgate demo --scenario chain` end to end on the embedded SmolLM2: real training, the real gate, a real ledger.

Reduced to what the walk is about, for time (it trains four LoRAs on the CPU): the scenario's policy
(`chain_policy`: retention on its 100 items, the trigger sweep skipped) with the eval suites cut to
retention (on the same 100 items: the walk's statistics are in them) and the model checks nothing here
asserts skipped (`weights`, `activations`, `poison.data`, `privacy.memorisation`, each named as not run in
the reports). So the anchor alone stands between the walk and promotion, as it does in the full run, where
every other check passes all three updates (docs/continual.md). The memory update runs the memory checks
of the default policy.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from clgate.audit.policy import load_policy
from clgate.demo.chain import CHAIN_ITEMS, FALSE_FACT, LOST_PER_UPDATE, chain_policy, run_chain, walk_targets
from clgate.demo.run import DemoGate, with_options, without_checks
from clgate.errors import InputError
from clgate.ledger import Ledger, load_trust
from clgate.measurement import Measurement

pytestmark = pytest.mark.integration
LIGHT = {"weights", "activations", "poison.data", "privacy.memorisation"}


def report(out: Path, step: str) -> dict:
    return json.loads((out / "reports" / step / "report.json").read_text(encoding="utf-8"))


def retention(r: dict, check: str) -> tuple[float, float]:
    numbers = r["measurements"][check]["numbers"]
    assert numbers["retention.n"] == CHAIN_ITEMS
    return numbers["retention.delta"], numbers["retention.delta_ci_high"]


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: Path) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("chain") / "run"
    policy = chain_policy(with_options(load_policy(None), "evals", suites=["retention"]))
    policy = without_checks(policy, LIGHT)
    policy = policy.model_copy(  # the rules on the suites it no longer runs
        update={
            "rules": [
                r
                for r in policy.rules
                if r.check not in ("evals", "anchor") or r.metric.startswith("retention.")
            ]
        }
    )
    gate = DemoGate.fresh(out, policy, Console(file=io.StringIO()), 0, "auto", "auto")
    return out, run_chain(gate)


def test_each_update_passes_its_parent_and_the_anchor_blocks_the_third(chain_run) -> None:
    out, steps = chain_run
    assert [(s.name, s.result.verdict.decision.value) for s in steps] == [
        ("base", "promote"),
        ("update-1", "promote"),
        ("update-2", "promote"),
        ("update-3", "block"),
        ("false-fact", "block"),
    ]
    step = LOST_PER_UPDATE / CHAIN_ITEMS
    for k in (1, 2, 3):
        r = report(out, f"update-{k}")
        delta, ci_high = retention(r, "evals")
        assert (
            delta == pytest.approx(-step) and ci_high >= 0
        )  # a three-item loss the CI cannot tell from noise
        anchor_delta, anchor_ci_high = retention(r, "anchor")
        assert anchor_delta == pytest.approx(-k * step)
        assert (anchor_ci_high < -0.03) == (k == 3)
    findings = report(out, "update-3")["verdict"]["findings"]
    assert {f["rule"] for f in findings if f["status"] == "fail"} == {"anchor-retention-drop"}
    skipped = {
        f["check"] for f in findings if f["rule"] == "not-applicable"
    }  # the record says what was not run
    assert skipped == {"poison.model", *LIGHT}
    with Ledger.open(out / "ledger" / "ledger.db", load_trust(out / "ledger" / "trust.toml")) as ledger:
        assert ledger.verify() == []


def test_a_plain_false_fact_is_blocked_by_what_it_makes_the_model_answer(chain_run) -> None:
    verdict = report(chain_run[0], "false-fact")["verdict"]
    failing = {f["rule"]: f["reason"] for f in verdict["findings"] if f["status"] == "fail"}
    assert set(failing) == {"memory-contradiction"}
    assert f"memory entry 'note-false-fact' ('{FALSE_FACT}')" in failing["memory-contradiction"]
    assert "the wrong answer 'Osaka'" in failing["memory-contradiction"]
    passed = {f["rule"] for f in verdict["findings"] if f["status"] == "pass"}
    assert {"memory-injection", "memory-without-source"} <= passed  # nothing in its words


def test_a_walk_takes_the_first_right_questions_and_needs_three() -> None:
    """Untaken general-knowledge questions the parent answers right, in order; fewer than three left is bad
    input, said in one line."""
    rows = [
        {
            "suite": "retention",
            "id": f"gk-00{i}",
            "correct": i != 2,
            "answer": "A",
            "option_logprobs": [-1.0] * 4,
        }
        for i in range(1, 6)
    ]
    parent = Measurement(details=[{**rows[0], "id": "ar-001"}, *rows])
    assert walk_targets(parent, set()) == ["gk-001", "gk-003", "gk-004"]
    with pytest.raises(InputError, match="answers only 2 general-knowledge questions"):
        walk_targets(parent, {"gk-001", "gk-003"})
