"""A team's own suites, named by the policy: run with the eval suites, pinned, judged by its rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from clgate.audit.bootstrap import bootstrap_ledger
from clgate.audit.cli import main
from clgate.audit.journal import Journal
from clgate.audit.policy import parse_policy
from clgate.errors import InputError

ITEMS = [
    {"id": "b1", "category": "billing", "question": "Which plan has no monthly fee?", "choices": ["Free", "Pro"], "answer": 0},
    {"id": "b2", "category": "billing", "question": "When are invoices sent?", "choices": ["Monthly", "Never"], "answer": 0},
    {"id": "b3", "category": "billing", "question": "Can a refund be asked for?", "choices": ["Yes", "No"], "answer": 0},
]  # fmt: skip


def _items(path: Path, items: list[dict] = ITEMS) -> tuple[Path, str]:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _policy(items: Path, sha256: str, name: str = "billing", item_format: str = "retention") -> str:
    return f"""
name = "own-suites"
required_checks = ["evals"]

[checks.evals]
options = {{ suites = ["retention"], limit = 2 }}

[[suites]]
name = "{name}"
items = "{items}"
format = "{item_format}"
sha256 = "{sha256}"

[[rules]]
id = "billing-answers"
check = "evals"
metric = "billing.accuracy"
reason = "The model no longer answers the billing questions"
fail_below = 1.01
"""


def test_a_policy_suite_runs_with_the_evals_and_its_rules_judge_it(tmp_path: Path, tiny_model: Path) -> None:
    items, sha256 = _items(tmp_path / "billing.jsonl")
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(_policy(items, sha256))
    boot = bootstrap_ledger(tmp_path / "ledger", policies=[parse_policy(policy_file.read_text())])
    keys = ["--ledger", str(boot.ledger), "--trust", str(boot.trust)]
    gate = ["gate", "--parent", str(tiny_model), "--candidate", str(tiny_model), "--policy", str(policy_file),
            "--out", str(tmp_path / "out"), "--proposer-key", str(boot.keys["pipeline"]), *keys, "--key",
            str(boot.keys["gate"])]  # fmt: skip
    assert main(gate) == 20  # the rule reads the suite's own numbers (accuracy can never reach 1.01)
    evals = json.loads((tmp_path / "out" / "measurements" / "evals.json").read_text())
    assert {row["suite"] for row in evals["details"]} == {"retention", "billing"}
    assert evals["numbers"]["billing.n"] == 2  # the evals limit caps every suite, the policy's own too
    assert (
        "The model no longer answers the billing questions: billing.accuracy"
        in (tmp_path / "out" / "report.md").read_text()
    )
    # the items changed after the policy was adopted: refused before anything is written
    _items(items, [*ITEMS, {**ITEMS[0], "id": "b4"}])
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        size = len(journal.ledger)
    assert main(gate) == 2
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        assert len(journal.ledger) == size


@pytest.mark.parametrize(
    ("name", "item_format", "items", "message"),
    [
        ("retention", "retention", ITEMS, "that is a bundled suite's name"),
        ("billing", "essay", ITEMS, "format 'essay' is not one of retention, honesty"),
        (
            "billing",
            "retention",
            [{**ITEMS[0], "answer": 5}],
            "billing.jsonl:1: record: Value error, answer 5 is not an index",
        ),
        ("billing", "refusal", ITEMS, "billing.jsonl:1: prompt: Field required"),
    ],
)
def test_a_broken_policy_suite_is_bad_input(
    tmp_path: Path, name: str, item_format: str, items: list[dict], message: str
) -> None:
    path, sha256 = _items(tmp_path / "billing.jsonl", items)
    policy = parse_policy(_policy(path, sha256, name, item_format))
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        policy.suites[0].load()
