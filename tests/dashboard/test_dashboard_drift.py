"""Drift thresholds are those each audit judged by: a policy changed mid-history draws a step."""

import pandas as pd

from clgate.audit.policy import parse_policy
from clgate.dashboard.drift import thresholds

POLICY = """
name = "{name}"
required_checks = ["evals"]

[[rules]]
id = "retention-drop"
check = "evals"
metric = "retention.delta"
reason = "Retention fell"
fail_below = {limit}
"""


def test_each_audit_is_drawn_with_the_thresholds_of_its_own_policy() -> None:
    old, new = (parse_policy(POLICY.format(name=n, limit=v)) for n, v in (("old", -0.1), ("new", -0.03)))
    series = pd.DataFrame({"update_id": ["u1", "u2", "u3"], "policy": [old.digest, old.digest, new.digest]})
    lines = thresholds(series, {p.digest: p for p in (old, new)}, "evals", "retention.delta")
    assert lines.to_dict("records") == [
        {"update_id": "u1", "label": "retention-drop: fail_below", "value": -0.1},
        {"update_id": "u2", "label": "retention-drop: fail_below", "value": -0.1},
        {"update_id": "u3", "label": "retention-drop: fail_below", "value": -0.03},
    ]
    assert thresholds(series, {p.digest: p for p in (old, new)}, "anchor", "retention.delta").empty
