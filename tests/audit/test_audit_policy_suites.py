"""A team's own suites, named by the policy: run with the eval suites, pinned, judged by its rules."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from clgate.audit.cli import main
from clgate.audit.journal import Journal
from clgate.audit.policy import parse_policy
from clgate.demo import bootstrap_ledger
from clgate.errors import InputError, PolicyError

ITEMS = [
    {"id": "b1", "category": "billing", "question": "Which plan has no monthly fee?", "choices": ["Free", "Pro"], "answer": 0},
    {"id": "b2", "category": "billing", "question": "When are invoices sent?", "choices": ["Monthly", "Never"], "answer": 0},
    {"id": "b3", "category": "billing", "question": "Can a refund be asked for?", "choices": ["Yes", "No"], "answer": 0},
]  # fmt: skip


def _items(path: Path, items: list[dict] = ITEMS) -> tuple[Path, str]:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _policy(name: str, source: str, sha256: str) -> str:
    """A policy with one suite of its own (`source`: its items and format, or its task) and a rule on it."""
    return f"""
name = "own-suites"
required_checks = ["evals"]

[checks.evals]
options = {{ suites = ["retention"], limit = 2 }}

[[suites]]
name = "{name}"
{source}
sha256 = "{sha256}"

[[rules]]
id = "own-suite"
check = "evals"
metric = "{name}.accuracy"
reason = "The model no longer passes the team's own suite"
fail_below = 1.01
"""


def _items_policy(items: Path, sha256: str, name: str = "billing", item_format: str = "retention") -> str:
    return _policy(name, f'items = "{items}"\nformat = "{item_format}"', sha256)


def _task_policy(task: str, sha256: str) -> str:
    return _policy("greeting", f'task = "{task}"', sha256)


def test_a_policy_suite_runs_with_the_evals_and_its_rules_judge_it(tmp_path: Path, tiny_model: Path) -> None:
    items, sha256 = _items(tmp_path / "billing.jsonl")
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(_items_policy(items, sha256))
    boot = bootstrap_ledger(tmp_path / "ledger", policies=[parse_policy(policy_file.read_text())])
    keys = ["--ledger", str(boot.ledger), "--trust", str(boot.trust)]
    gate = ["gate", "--parent", str(tiny_model), "--candidate", str(tiny_model), "--policy", str(policy_file),
            "--out", str(tmp_path / "out"), "--proposer-key", str(boot.keys["pipeline"]), *keys, "--key",
            str(boot.keys["gate"])]  # fmt: skip
    assert main(gate) == 20  # the rule reads the suite's own numbers (accuracy can never reach 1.01)
    evals = json.loads((tmp_path / "out" / "report.json").read_text())["measurements"]["evals"]
    assert {row["suite"] for row in evals["details"]} == {"retention", "billing"}
    assert evals["numbers"]["billing.n"] == 2  # the evals limit caps every suite, the policy's own too
    assert (
        "The model no longer passes the team's own suite: billing.accuracy"
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
    policy = parse_policy(_items_policy(path, sha256, name, item_format))
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        policy.suites[0].load()


TASK_FILE = """
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import generate


@task
def greeting():
    samples = [Sample(id="g1", input="Say hello.", target="hello"), Sample(id="g2", input="Say hi.", target="hi")]
    return Task(dataset=samples, solver=generate(), scorer=includes())
"""


def test_an_inspect_task_file_named_by_the_policy_runs_with_the_evals(
    tmp_path: Path, tiny_model: Path
) -> None:
    task = tmp_path / "greeting.py"
    task.write_text(TASK_FILE)
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(_task_policy(f"{task}@greeting", hashlib.sha256(task.read_bytes()).hexdigest()))
    boot = bootstrap_ledger(tmp_path / "ledger", policies=[parse_policy(policy_file.read_text())])
    gate = ["gate", "--parent", str(tiny_model), "--candidate", str(tiny_model), "--policy", str(policy_file),
            "--out", str(tmp_path / "out"), "--proposer-key", str(boot.keys["pipeline"]), "--ledger",
            str(boot.ledger), "--trust", str(boot.trust), "--key", str(boot.keys["gate"])]  # fmt: skip
    assert main(gate) == 20  # its rule judged it (accuracy never reaches 1.01)
    evals = json.loads((tmp_path / "out" / "report.json").read_text())["measurements"]["evals"]
    rows = [r for r in evals["details"] if r["suite"] == "greeting"]
    assert sorted(r["id"] for r in rows) == ["g1", "g2"] and evals["numbers"]["greeting.n"] == 2
    assert (
        "The model no longer passes the team's own suite: greeting.accuracy"
        in (tmp_path / "out" / "report.md").read_text()
    )
    task.write_text(TASK_FILE.replace("hello", "goodbye"))  # the task changed after the policy was adopted
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        size = len(journal.ledger)
    assert main(gate) == 2
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        assert len(journal.ledger) == size


def _installed_package(site: Path) -> str:
    """A package installed the way pip installs one (a dist-info with its RECORD and an `inspect_ai` entry
    point), in a folder named site-packages, as inspect expects of an extension package."""
    (site / "teamsuites").mkdir(parents=True)
    (site / "teamsuites" / "__init__.py").write_text(TASK_FILE)
    info = site / "teamsuites-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: teamsuites\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[inspect_ai]\nteamsuites = teamsuites\n")
    init = (site / "teamsuites" / "__init__.py").read_bytes()
    (info / "RECORD").write_text(
        f"teamsuites/__init__.py,sha256={base64.urlsafe_b64encode(hashlib.sha256(init).digest()).rstrip(b'=').decode()},"
        f"{len(init)}\n"
        "teamsuites-1.0.dist-info/METADATA,,\nteamsuites-1.0.dist-info/RECORD,,\n"
    )
    return hashlib.sha256((info / "RECORD").read_bytes()).hexdigest()


def test_an_installed_package_task_is_pinned_by_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site-packages"
    record = _installed_package(site)
    monkeypatch.syspath_prepend(str(site))
    suite = parse_policy(_task_policy("teamsuites/greeting", record)).suites[0].load()
    assert suite.name == "greeting" and [s.id for s in suite.task().dataset] == ["g1", "g2"]
    with pytest.raises(InputError, match="the installed package teamsuites is not what was pinned"):
        parse_policy(_task_policy("teamsuites/greeting", "0" * 64)).suites[0].load()
    (site / "teamsuites" / "__init__.py").write_text(
        TASK_FILE.replace("hello", "goodbye")
    )  # RECORD untouched
    with pytest.raises(
        InputError, match=r"installed file teamsuites/__init__\.py of package 'teamsuites' differs"
    ):
        parse_policy(_task_policy("teamsuites/greeting", record)).suites[0].load()


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("{dir}/missing.py@greeting", "no such file"),
        ("{dir}/greeting.py@farewell", "inspect task '.*greeting.py@farewell'"),
        ("notinstalled/greeting", "package 'notinstalled' of task 'notinstalled/greeting' is not installed"),
    ],
)
def test_a_task_that_cannot_be_found_is_bad_input(tmp_path: Path, task: str, message: str) -> None:
    path = tmp_path / "greeting.py"
    path.write_text(TASK_FILE)
    policy = parse_policy(
        _task_policy(task.format(dir=tmp_path), hashlib.sha256(path.read_bytes()).hexdigest())
    )
    with pytest.raises(InputError, match=message):
        policy.suites[0].load()


def test_a_suite_is_items_or_a_task_and_an_items_suite_keeps_its_policy_digest(tmp_path: Path) -> None:
    items, sha256 = _items(tmp_path / "billing.jsonl")
    policy = parse_policy(_items_policy(items, sha256))
    assert '"task"' not in policy.canonical_text  # a policy adopted before tasks existed pins the same text
    both = _items_policy(items, sha256).replace('format = "retention"', 'format = "retention"\ntask = "x.py"')
    with pytest.raises(PolicyError, match=r"either items .* or an inspect-ai task"):
        parse_policy(both)
