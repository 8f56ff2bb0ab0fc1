"""Paired statistics and continual-learning metrics against known cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from clgate.errors import InputError
from clgate.evals import (
    backward_transfer,
    bootstrap_ci,
    compare_measurements,
    continual_measurement,
    continual_metrics,
    forgetting,
    forward_transfer,
    intransigence,
    mcnemar_exact,
    paired_accuracy,
    plasticity,
    trigger_change_rates,
)
from clgate.measurement import Measurement


@given(st.integers(0, 60), st.integers(0, 60))
@settings(max_examples=200, deadline=None)
def test_mcnemar_matches_scipy_binomial_test(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_known_values_and_tiny_p() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)  # 2 · (1/2)^6
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact(0, 1000) == pytest.approx(2.0**-999)  # exact integers, then one division
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(0.3, 1.0, size=400)
    low, high = bootstrap_ci(d)
    assert (low, high) == bootstrap_ci(d)
    assert low < d.mean() < high
    se = d.std(ddof=1) / np.sqrt(d.size)
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert bootstrap_ci([1.0] * 50) == (1.0, 1.0)
    assert bootstrap_ci([]) == (0.0, 0.0)


def test_paired_accuracy_counts_discordant_pairs() -> None:
    parent = [True] * 30 + [False] * 10 + [True] * 8 + [False] * 2
    candidate = [True] * 30 + [False] * 10 + [False] * 8 + [True] * 2
    r = paired_accuracy(parent, candidate)
    assert (r.n, r.parent_only, r.candidate_only) == (50, 8, 2)
    assert r.parent_accuracy == pytest.approx(38 / 50)
    assert r.candidate_accuracy == pytest.approx(32 / 50)
    assert r.delta == pytest.approx(-6 / 50)
    assert r.mcnemar_p == pytest.approx(binomtest(2, 10, 0.5).pvalue)
    assert r.delta_ci_low < r.delta < r.delta_ci_high
    with pytest.raises(ValueError):
        paired_accuracy([True], [True, False])


# R[i][j]: accuracy on task j after update i. Hand-computed values below.
R = [
    [0.9, 0.2, 0.1],
    [0.7, 0.8, 0.3],
    [0.6, 0.7, 0.9],
]


def test_continual_metrics_on_a_hand_computed_matrix() -> None:
    # BWT = ((0.6 − 0.9) + (0.7 − 0.8)) / 2 = −0.2
    assert backward_transfer(R) == pytest.approx(-0.2)
    # FWT with b = (0.1, 0.1, 0.2): ((0.2 − 0.1) + (0.3 − 0.2)) / 2 = 0.1
    assert forward_transfer(R, [0.1, 0.1, 0.2]) == pytest.approx(0.1)
    # forgetting: task0 max(0.9, 0.7) − 0.6 = 0.3; task1 max(0.2, 0.8) − 0.7 = 0.1 → 0.2
    assert forgetting(R) == pytest.approx(0.2)
    # plasticity: mean diagonal (0.9 + 0.8 + 0.9) / 3
    assert plasticity(R) == pytest.approx(2.6 / 3)
    # intransigence with joint reference (1.0, 0.9, 0.9): (0.1 + 0.1 + 0.0) / 3
    assert intransigence(R, [1.0, 0.9, 0.9]) == pytest.approx(0.2 / 3)
    metrics = continual_metrics(R, baseline=[0.1, 0.1, 0.2], reference=[1.0, 0.9, 0.9])
    assert metrics["continual.average_accuracy"] == pytest.approx(2.2 / 3)
    assert set(metrics) == {
        "continual.average_accuracy",
        "continual.backward_transfer",
        "continual.forgetting",
        "continual.plasticity",
        "continual.forward_transfer",
        "continual.intransigence",
    }


def test_no_forgetting_when_accuracy_only_grows() -> None:
    grows = [[0.5, 0.1], [0.6, 0.7]]
    assert backward_transfer(grows) == pytest.approx(0.1)
    assert forgetting(grows) == pytest.approx(-0.1)
    assert backward_transfer([[0.4]]) == 0.0


def test_continual_inputs_are_checked() -> None:
    with pytest.raises(InputError, match="square"):
        backward_transfer([[0.1, 0.2]])
    with pytest.raises(InputError, match="baseline"):
        forward_transfer(R, [0.1])
    with pytest.raises(InputError, match="task name"):
        continual_measurement(R, ["a", "b"])
    m = continual_measurement(R, ["u1", "u2", "u3"])
    assert m.name == "evals.continual" and m.details[2]["on:u1"] == pytest.approx(0.6)


def _measurement(digest: str, correct: list[bool], margins: list[float]) -> Measurement:
    rows = [
        {"suite": "refusal", "id": f"i{k}", "category": "c", "correct": ok, "answer": "", "refusal_margin": m}
        for k, (ok, m) in enumerate(zip(correct, margins, strict=True))
    ]
    return Measurement(name="evals", version="1", candidate=digest, details=rows, meta={"suites": {}})


def test_compare_measurements_pairs_items_and_names_flips() -> None:
    parent = _measurement("sha256:p", [True] * 12 + [False] * 3, [2.0] * 15)
    candidate = _measurement("sha256:c", [False] * 10 + [True] * 2 + [False, True, False], [-1.0] * 15)
    m = compare_measurements(parent, candidate)
    n = m.numbers
    assert (m.parent, m.candidate) == ("sha256:p", "sha256:c")
    assert n["refusal.flipped_to_wrong"] == 10 and n["refusal.flipped_to_right"] == 1
    assert n["refusal.mcnemar_p"] == pytest.approx(binomtest(1, 11, 0.5).pvalue)
    assert n["refusal.delta"] == pytest.approx(3 / 15 - 12 / 15)
    assert n["refusal.delta_ci_high"] < 0
    assert n["refusal.refusal_margin.delta"] == pytest.approx(-3.0)
    assert n["refusal.refusal_margin.parent"] == pytest.approx(2.0)
    assert m.meta["flipped"]["refusal"]["to_right"] == ["i13"]
    assert sum(r["change"] == "to_wrong" for r in m.details) == 10


def test_trigger_change_rates_single_and_paired() -> None:
    def sweep(digest: str, changed: dict[str, list[bool]]) -> Measurement:
        rows = [
            {"suite": "triggers", "id": f"p{k}|{t}", "category": "c", "correct": not ch, "answer": ""}
            for t, flags in changed.items()
            for k, ch in enumerate(flags)
        ]
        return Measurement(name="evals", version="1", candidate=digest, details=rows, meta={"suites": {}})

    parent = sweep(
        "sha256:p", {"cf": [False] * 8, "mn": [True, False, False, False, False, False, False, False]}
    )
    candidate = sweep(
        "sha256:c", {"cf": [True] * 8, "mn": [True, False, False, False, False, False, False, False]}
    )
    assert trigger_change_rates(parent)["mn"] == {"change_rate": 0.125, "n": 8.0}
    paired = trigger_change_rates(compare_measurements(parent, candidate))
    assert paired["cf"]["parent_change_rate"] == 0.0 and paired["cf"]["candidate_change_rate"] == 1.0
    assert paired["cf"]["mcnemar_p"] == pytest.approx(2 / 256)
    assert paired["mn"]["mcnemar_p"] == 1.0
