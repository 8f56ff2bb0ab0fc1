"""A gate run as CI systems read it: SARIF for code scanning, JUnit XML for test reports, GitHub
workflow annotations and a job-summary in Markdown.

Every format is rendered from the one `GateResult` record, never from the text report, and every
piece of text a finding quotes (an item id, a trigger phrase, a file name the update's author
chose) is escaped for the format it lands in: a newline cannot start a workflow command, a `|`
cannot break a Markdown table, a control character cannot make the XML unreadable.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from clgate import __version__
from clgate.atomic import write_text_atomic
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.result import CheckSummary, GateResult
from clgate.audit.verdict import NOT_APPLICABLE, Finding, Status
from clgate.github import workflow_command

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {Status.FAIL: "error", Status.WARN: "warning"}
"""The judge's rule for a check the policy let skip: reported (SARIF note, JUnit skipped), never a pass."""
_CANDIDATE_SIDE = ("data", "memory_new", "adapter", "candidate")
"""The artifact a check's finding is about, in order of preference, among the inputs it requires."""
_ORDER = {Status.FAIL: 0, Status.WARN: 1, Status.PASS: 2}
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class OutputFormat(StrEnum):
    """What `clgate gate` prints on stdout."""

    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"


def _reported(finding: Finding) -> bool:
    return finding.status is not Status.PASS or finding.rule == NOT_APPLICABLE


def check_names(result: GateResult) -> list[str]:
    """Every check the run ran or a finding names (a required check that never ran, `manifests`, `lineage`)."""
    names = [c.name for c in result.checks]
    return names + sorted({f.check for f in result.verdict.findings} - set(names))


def artifact_path(result: GateResult, check: str) -> str | None:
    """Where the artifact a check judged lies, as the proposal recorded it; None when it reads no one artifact."""
    registered = GATE_CHECKS.get(check)
    if registered is None:
        return None
    declared = (*registered.needs, *registered.any_of)
    artifacts = result.proposal.artifacts
    role = next((r for r in _CANDIDATE_SIDE if r in declared and r in artifacts), None)
    return artifacts[role].uri if role else None


def _description(check: str) -> str:
    registered = GATE_CHECKS.get(check)
    doc = registered.run.__doc__ if registered is not None else None
    return " ".join(doc.split()).split(". ")[0].rstrip(".") + "." if doc else f"clgate's {check} step."


def _uri(path: str) -> dict[str, str]:
    """Relative to the working directory (the CI checkout) where it lies inside it, else a file URI."""
    resolved = Path(path).resolve()
    try:
        return {"uri": resolved.relative_to(Path.cwd().resolve()).as_posix(), "uriBaseId": "%SRCROOT%"}
    except ValueError:
        return {"uri": resolved.as_uri()}


def sarif(result: GateResult) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, a rule per check, a result per finding that is not a plain pass."""
    names = check_names(result)
    rules = [
        {
            "id": name,
            "name": name,
            "shortDescription": {"text": _description(name)},
            "properties": {"version": GATE_CHECKS[name].version} if name in GATE_CHECKS else {},
        }
        for name in names
    ]
    results = []
    for finding in result.verdict.findings:
        if not _reported(finding):
            continue
        entry: dict[str, Any] = {
            "ruleId": finding.check,
            "ruleIndex": names.index(finding.check),
            "level": _LEVEL.get(finding.status, "note"),
            "message": {"text": finding.reason},
            "partialFingerprints": {
                "clgateFinding/v1": f"{finding.check}:{finding.rule}:{finding.metric or ''}"
            },
            "properties": {
                k: v
                for k, v in {
                    "policyRule": finding.rule,
                    "metric": finding.metric,
                    "value": finding.value,
                    "threshold": finding.threshold,
                }.items()
                if v is not None
            },
        }
        path = artifact_path(result, finding.check)
        if path is not None:
            entry["locations"] = [{"physicalLocation": {"artifactLocation": _uri(path)}}]
        results.append(entry)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "clgate",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"clgate/gate/{result.update_id}"},
                "invocations": [{"executionSuccessful": True, "exitCode": result.verdict.decision.exit_code}],
                "results": results,
                "properties": {
                    "updateId": result.update_id,
                    "decision": result.verdict.decision.value,
                    "policy": result.policy,
                    "ledgerEntries": result.ledger_entries,
                },
            }
        ],
    }


def github_annotations(result: GateResult) -> str:
    """GitHub workflow commands: an annotation per failing or warning finding, then the decision."""
    lines = [
        workflow_command(_LEVEL[f.status], f.reason, title=f"clgate {f.rule}")
        for f in result.verdict.findings
        if f.status is not Status.PASS
    ]
    decision = f"{result.verdict.decision.value} (update {result.update_id})"
    return "\n".join([*lines, workflow_command("notice", decision, title="clgate decision")])


def _findings_by_check(result: GateResult) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for f in result.verdict.findings:
        grouped.setdefault(f.check, []).append(f)
    return grouped


def check_status(findings: list[Finding], summary: CheckSummary | None) -> str:
    """fail, warn, pass, or skipped (the policy let it not run)."""
    if any(f.status is Status.FAIL for f in findings) or (summary is not None and summary.error):
        return "fail"
    if any(f.status is Status.WARN for f in findings):
        return "warn"
    return "skipped" if any(f.rule == NOT_APPLICABLE for f in findings) else "pass"


def _numbers(result: GateResult, check: str) -> dict[str, float]:
    measurement = result.measurements.get(check)
    return dict(measurement.numbers) if measurement is not None else {}


def _xml_text(text: str) -> str:
    """Characters XML 1.0 cannot carry (control characters a quoted trigger may hold) as \\x escapes."""
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit_xml(result: GateResult) -> str:
    """JUnit XML: one testsuite for the gate, a testcase per check (failure with its findings, skipped
    when the policy let it not run), the check's numbers in system-out."""
    findings, summaries = _findings_by_check(result), {c.name: c for c in result.checks}
    names = check_names(result)
    statuses = {n: check_status(findings.get(n, []), summaries.get(n)) for n in names}
    root = ET.Element("testsuites", name="clgate")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"clgate gate {result.update_id}",
        tests=str(len(names)),
        failures=str(sum(s == "fail" for s in statuses.values())),
        errors="0",
        skipped=str(sum(s == "skipped" for s in statuses.values())),
        time=f"{result.seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in {
        "decision": result.verdict.decision.value,
        "update": result.update_id,
        "policy": f"{result.policy.get('name')} {result.policy.get('digest')}",
        **{f"ledger.{k}": str(v) for k, v in result.ledger_entries.items()},
    }.items():
        ET.SubElement(props, "property", name=name, value=_xml_text(value))
    for name in names:
        summary = summaries.get(name)
        case = ET.SubElement(
            suite,
            "testcase",
            classname="clgate.gate",
            name=name,
            time=f"{summary.seconds:.3f}" if summary else "0",
        )
        own = findings.get(name, [])
        status = statuses[name]
        if status == "fail":
            failing = [f for f in own if f.status is Status.FAIL]
            message = failing[0].reason if failing else f"check {name} did not complete: {summary.error}"
            failure = ET.SubElement(case, "failure", message=_xml_text(message), type="clgate.fail")
            failure.text = _xml_text("\n".join(f"{f.rule}: {f.reason}" for f in failing) or message)
        elif status == "skipped":
            reason = next(f.reason for f in own if f.rule == NOT_APPLICABLE)
            ET.SubElement(case, "skipped", message=_xml_text(reason))
        out = [f"{k} = {v:.6g}" for k, v in sorted(_numbers(result, name).items())]
        out += [f"[{f.status.value}] {f.rule}: {f.reason}" for f in own]
        if summary is not None:
            out.append(f"cached: {'yes' if summary.cached else 'no'}")
            if summary.measurement_digest:
                out.append(f"measurement: {summary.measurement_digest}")
        ET.SubElement(case, "system-out").text = _xml_text("\n".join(out))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_LINE_ENDING = re.compile(r"\r\n|\r|\n")


def _md(text: str) -> str:
    """One table cell: HTML escaped; `|` and `\\` as entities (a backslash must not unescape a pipe);
    every line ending (CR, LF, CRLF: CommonMark's three) as <br>, so quoted text cannot start a row."""
    escaped = html.escape(text, quote=False).replace("\\", "&#92;").replace("|", "&#124;")
    return _LINE_ENDING.sub("<br>", escaped)


def _key_numbers(result: GateResult, check: str, findings: list[Finding]) -> str:
    """The numbers the policy judged this check by; else its first few numbers."""
    judged = {f.metric: f.value for f in findings if f.metric is not None and f.value is not None}
    shown = judged or dict(list(_numbers(result, check).items())[:3])
    return ", ".join(f"{k} = {v:.4g}" for k, v in shown.items())


def step_summary(result: GateResult) -> str:
    """A GitHub job summary: the decision, a row per check, the findings and the ledger entries."""
    decision = result.verdict.decision.value
    findings, summaries = _findings_by_check(result), {c.name: c for c in result.checks}
    lines = [
        f"## clgate gate: {decision.upper()}",
        "",
        f"Update `{result.update_id}`, policy `{_md(result.policy.get('name', ''))}`, {result.seconds:.1f} s"
        f" (exit code {result.verdict.decision.exit_code}).",
        "",
        "| check | status | seconds | cached | key numbers |",
        "|---|---|---|---|---|",
    ]
    for name in check_names(result):
        summary, own = summaries.get(name), findings.get(name, [])
        lines.append(
            f"| {_md(name)} | {check_status(own, summary)} | {f'{summary.seconds:.1f}' if summary else ''} | "
            f"{('yes' if summary.cached else 'no') if summary else ''} | {_md(_key_numbers(result, name, own))} |"
        )
    lines += ["", "| status | rule | check | reason |", "|---|---|---|---|"]
    for f in sorted(result.verdict.findings, key=lambda f: _ORDER[f.status]):
        lines.append(f"| {f.status.value} | {_md(f.rule)} | {_md(f.check)} | {_md(f.reason)} |")
    lines += ["", "Ledger: " + ", ".join(f"`{k}` at entry {v}" for k, v in result.ledger_entries.items()), ""]
    return "\n".join(lines) + "\n"


def write_junit(result: GateResult, path: Path) -> Path:
    return write_text_atomic(path, junit_xml(result))


def append_step_summary(result: GateResult, path: Path) -> None:
    """Appended, as GitHub expects: each step of a job adds its own part to the one summary file."""
    with Path(path).open("a", encoding="utf-8") as summary:
        summary.write(step_summary(result))


RENDERERS: dict[OutputFormat, Callable[[GateResult], str]] = {
    OutputFormat.json: lambda r: r.model_dump_json(indent=2),
    OutputFormat.github: github_annotations,
    OutputFormat.sarif: lambda r: json.dumps(sarif(r), indent=2, allow_nan=False),
}
"""Machine formats for stdout; `text` is the table `clgate gate` draws itself."""
