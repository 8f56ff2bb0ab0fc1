"""Drift across the ledger history: every audited number of every update, in ledger order.

Any measurement works: each number becomes a series `check / metric`. A number named
`<metric>.ci_low` / `<metric>.ci_high` is the confidence interval of `<metric>`, drawn as error
bars rather than as a series of its own. Threshold lines come from the rules of the policy each
audit judged by (its text is in the ledger, pinned by the digest the audit recorded), so a chart
shows the limits that held at the time of each audit, not today's.
"""

from __future__ import annotations

import pandas as pd

from clgate.audit.policy import Policy
from clgate.dashboard.data import LedgerView

CI_SUFFIXES = (".ci_low", ".ci_high")
COLUMNS = [
    "entry",
    "update_id",
    "kind",
    "decision",
    "timestamp",
    "check",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "policy",
]


def drift_frame(view: LedgerView) -> pd.DataFrame:
    """One row per (audited update, check, metric), in the order the audits were recorded."""
    rows = []
    audited = sorted(
        (u for u in view.state.updates.values() if u.audit_index is not None), key=lambda u: u.audit_index
    )
    for u in audited:
        for check, digest in u.measurements.items():
            m = view.measurement(digest)
            if m is None:
                continue
            for metric, value in m.numbers.items():
                if metric.endswith(CI_SUFFIXES):
                    continue
                rows.append(
                    {
                        "entry": u.audit_index,
                        "update_id": u.update_id,
                        "kind": u.kind,
                        "decision": u.decision,
                        "timestamp": u.proposed_at,
                        "check": check,
                        "metric": metric,
                        "value": value,
                        "ci_low": m.numbers.get(f"{metric}.ci_low"),
                        "ci_high": m.numbers.get(f"{metric}.ci_high"),
                        "policy": u.audit.policy.digest if u.audit else None,
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def audit_policies(view: LedgerView) -> dict[str, Policy]:
    """Every policy adopted in the ledger, by digest, parsed from the text the ledger pins."""
    return {d: Policy.model_validate_json(p.text) for d, p in view.state.governance.policies.items()}


def thresholds(series: pd.DataFrame, policies: dict[str, Policy], check: str, metric: str) -> pd.DataFrame:
    """Per audited update of `series`: each warn/fail threshold its audit's policy set on this number."""
    rows = []
    for update_id, digest in zip(series["update_id"], series["policy"], strict=True):
        policy = policies.get(digest)
        for rule in policy.rules if policy else ():
            if (rule.check, rule.metric) != (check, metric):
                continue
            for name in ("warn_above", "fail_above", "warn_below", "fail_below"):
                if (value := getattr(rule, name)) is not None:
                    rows.append({"update_id": update_id, "label": f"{rule.id}: {name}", "value": value})
    return pd.DataFrame(rows, columns=["update_id", "label", "value"])
