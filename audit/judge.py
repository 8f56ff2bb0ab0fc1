"""Turns check outcomes into findings and a verdict, failing closed on anything missing."""

from __future__ import annotations

import math
from dataclasses import dataclass

from clgate.audit.policy import Policy, Rule
from clgate.audit.verdict import NOT_APPLICABLE, Finding, Status, Verdict
from clgate.measurement import Measurement


@dataclass(frozen=True)
class CheckOutcome:
    """What running one check produced: its measurement, or why there is none."""

    name: str
    measurement: Measurement | None
    error: str | None = None
    seconds: float = 0.0
    cached: bool = False
    not_applicable: str | None = None
    """Why the policy let this check not run (a served update, a check that needs the weights)."""


def _judge_rule(rule: Rule, measurement: Measurement) -> Finding:
    value = measurement.numbers.get(rule.metric)
    base = {"rule": rule.id, "check": rule.check, "metric": rule.metric}
    if value is None or math.isnan(value):
        return Finding(**base, status=Status.FAIL, reason=f"{rule.check} produced no value for {rule.metric}")
    for status, side, threshold in (
        (Status.FAIL, "above", rule.fail_above),
        (Status.FAIL, "below", rule.fail_below),
        (Status.WARN, "above", rule.warn_above),
        (Status.WARN, "below", rule.warn_below),
    ):
        if threshold is not None and (value > threshold if side == "above" else value < threshold):
            behind = measurement.explain.get(rule.metric)
            return Finding(
                **base,
                status=status,
                value=value,
                threshold=threshold,
                reason=f"{rule.reason}: {rule.metric} = {value:.4g} is {side} {threshold:g}"
                + (f" ({behind})" if behind else ""),
            )
    return Finding(
        **base, status=Status.PASS, value=value, reason=f"{rule.metric} = {value:.4g} within limits"
    )


def judge(policy: Policy, outcomes: dict[str, CheckOutcome], kind: str = "model") -> Verdict:
    findings: list[Finding] = []
    for name in policy.required_for(kind):
        outcome = outcomes.get(name)
        if outcome is None:
            findings.append(Finding(rule="required-check", check=name, status=Status.FAIL,
                                    reason=f"required check {name} did not run"))  # fmt: skip
    for name, outcome in outcomes.items():
        if outcome.not_applicable is not None:
            findings.append(Finding(rule=NOT_APPLICABLE, check=name, status=Status.PASS,
                                    reason=f"check {name} not run: {outcome.not_applicable}"))  # fmt: skip
        if outcome.error is not None:
            findings.append(Finding(rule="check-error", check=name, status=Status.FAIL,
                                    reason=f"check {name} did not complete: {outcome.error}"))  # fmt: skip
    for rule in policy.rules:
        outcome = outcomes.get(rule.check)
        if outcome is not None and outcome.measurement is not None:
            findings.append(_judge_rule(rule, outcome.measurement))
    weights = outcomes.get("weights")
    if policy.modules and weights is not None and weights.measurement is not None:
        changed = list(weights.measurement.meta.get("changed_modules", []))
        outside = policy.modules.disallowed(changed)
        status = Status(policy.modules.severity) if outside else Status.PASS
        reason = (
            f"modules outside the allowed set changed: {', '.join(outside[:5])}"
            + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
            if outside
            else f"all {len(changed)} changed modules are allowed"
        )
        findings.append(Finding(rule="modules-allowed", check="weights", status=status, reason=reason))
    return Verdict.from_findings(findings)
