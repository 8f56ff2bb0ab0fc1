"""Drift across the ledger history: every audited number of every update, in ledger order.

Any measurement works: each number becomes a series `check / metric`. A number named
`<metric>.ci_low` / `<metric>.ci_high` is the confidence interval of `<metric>`, drawn as error
bars rather than as a series of its own. Threshold lines come from the policy's rules.
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
    "verdict",
    "timestamp",
    "check",
    "metric",
    "value",
    "ci_low",
    "ci_high",
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
                        "verdict": u.decision,
                        "timestamp": u.proposed_at,
                        "check": check,
                        "metric": metric,
                        "value": value,
                        "ci_low": m.numbers.get(f"{metric}.ci_low"),
                        "ci_high": m.numbers.get(f"{metric}.ci_high"),
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def thresholds(policy: Policy | None, check: str, metric: str) -> list[tuple[str, float]]:
    """(label, value) of every warn/fail threshold the policy sets on this number."""
    if policy is None:
        return []
    out = []
    for rule in policy.rules:
        if rule.check == check and rule.metric == metric:
            for name in ("warn_above", "fail_above", "warn_below", "fail_below"):
                value = getattr(rule, name)
                if value is not None:
                    out.append((f"{rule.id}: {name}", value))
    return out
