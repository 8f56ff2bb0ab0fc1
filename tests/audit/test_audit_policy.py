from pathlib import Path

import pytest

from clgate.audit.gate import check_policy
from clgate.audit.journal import Journal
from clgate.audit.judge import CheckOutcome, judge
from clgate.audit.policy import DEFAULT_POLICY, load_policy, parse_policy
from clgate.audit.verdict import Decision, Status
from clgate.demo import bootstrap_ledger
from clgate.errors import PolicyError
from clgate.measurement import Measurement

POLICY = """
name = "test"
required_checks = ["weights", "evals"]
default_timeout_s = 60

[checks.evals]
timeout_s = 5

[[rules]]
id = "retention"
check = "evals"
metric = "retention.delta"
reason = "Retention dropped"
warn_below = -0.02
fail_below = -0.10

[[rules]]
id = "weight-change"
check = "weights"
metric = "max_relative_change"
reason = "Weights moved too far"
fail_above = 0.5

[modules]
allowed = ["*.q_proj", "*.v_proj"]

[approvals]
required = 2
approvers = ["alice", "bob", "carol"]
"""


def _outcomes(delta: float, change: float = 0.1, modules=("model.layers.0.self_attn.q_proj",)):
    return {
        "weights": CheckOutcome(
            "weights",
            Measurement(
                name="weights",
                version="1",
                numbers={"max_relative_change": change},
                meta={"changed_modules": list(modules)},
            ),
        ),
        "evals": CheckOutcome(
            "evals", Measurement(name="evals", version="1", numbers={"retention.delta": delta})
        ),
    }


def test_policy_parses_with_per_check_timeouts() -> None:
    policy = parse_policy(POLICY)
    assert policy.timeout_for("evals") == 5 and policy.timeout_for("weights") == 60
    assert policy.approvals.required == 2


@pytest.mark.parametrize(
    ("delta", "change", "decision"),
    [
        (0.01, 0.1, Decision.PROMOTE),
        (-0.05, 0.1, Decision.REVIEW),
        (-0.2, 0.1, Decision.BLOCK),
        (0.0, 0.9, Decision.BLOCK),
    ],
)
def test_thresholds_give_the_verdict(delta: float, change: float, decision: Decision) -> None:
    verdict = judge(parse_policy(POLICY), _outcomes(delta, change))
    assert verdict.decision is decision
    assert decision.exit_code == {"promote": 0, "review": 10, "block": 20}[decision.value]


def test_fail_closed_on_missing_check_error_and_missing_metric() -> None:
    policy = parse_policy(POLICY)
    outcomes = _outcomes(0.0)
    del outcomes["evals"]
    verdict = judge(policy, outcomes)
    assert verdict.decision is Decision.BLOCK
    assert any("required check evals did not run" in f.reason for f in verdict.findings)

    outcomes = _outcomes(0.0)
    outcomes["evals"] = CheckOutcome("evals", None, error="timed out after 5s")
    verdict = judge(policy, outcomes)
    assert verdict.decision is Decision.BLOCK and "timed out after 5s" in verdict.blocking[0].reason

    outcomes = _outcomes(0.0)
    outcomes["evals"] = CheckOutcome("evals", Measurement(name="evals", version="1", numbers={}))
    assert judge(policy, outcomes).decision is Decision.BLOCK


def test_modules_outside_the_allowed_set_block() -> None:
    verdict = judge(parse_policy(POLICY), _outcomes(0.0, modules=("model.layers.0.mlp.down_proj",)))
    assert verdict.decision is Decision.BLOCK
    finding = next(f for f in verdict.findings if f.rule == "modules-allowed")
    assert finding.status is Status.FAIL and "mlp.down_proj" in finding.reason


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda p: p.replace('metric = "max_relative_change"', 'metric = "x"\nbogus = 1'),
            r":21: rules\.1\.bogus: unknown key",
        ),
        (
            lambda p: p.replace("timeout_s = 5", "timeout_s = -5"),
            r":7: checks\.evals\.timeout_s: Input should be greater than 0",
        ),
        (  # canonical JSON of every audit recording it failed, naming no file
            lambda p: p.replace(
                "timeout_s = 5", "timeout_s = 5\noptions = { limit = 99999999999999999999999 }"
            ),
            r"^.*policy\.toml: value cannot be canonical JSON: .*exceeds safe integer",
        ),
        (  # a thread's join overflowed, so every check errored and every gate blocked
            lambda p: p.replace("default_timeout_s = 60", "default_timeout_s = 1e32"),
            r"default_timeout_s: Input should be less than or equal to 604800",
        ),
        (lambda p: p.replace("required = 2", "required = 4"), r":27: approvals: .*only 3 approvers"),
        (lambda p: p.replace('id = "weight-change"', 'id = "retention"'), r"duplicate rule id 'retention'"),
        (lambda p: p.replace("fail_above = 0.5", ""), r":17: rules\.1: .*at least one of"),
        (lambda p: p + "\n[[rules]\n", r"not valid TOML"),
        (
            lambda p: p.replace('name = "test"', 'name = ""', 1),
            r":\d+: name: String should have at least 1 character",
        ),
        (
            lambda p: p + "\nx = " + "[" * 5000 + "]" * 5000 + "\n",
            r"not valid TOML \(maximum recursion depth",
        ),
        (lambda p: p.replace('name = "test"', 'name = "caf\xe9"', 1).encode("latin-1"), r"not UTF-8 text"),
    ],
)
def test_malformed_policies_name_file_line_and_key(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "policy.toml"
    text = edit(POLICY)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy(tmp_path / "nope.toml")
    with pytest.raises(PolicyError, match="is a folder, not a policy file"):
        load_policy(tmp_path)


def test_default_policy_loads() -> None:
    policy = load_policy()
    assert DEFAULT_POLICY.is_file() and policy.required_for("adapter") and policy.required_for("memory")


def test_required_checks_can_differ_by_update_kind() -> None:
    policy = parse_policy(
        'name = "k"\n[required_checks]\nmodel = ["weights"]\nadapter = ["weights", "evals"]\nmemory = ["poison.memory"]\n'
    )
    assert policy.required_for("adapter") == ["weights", "evals"] and policy.required_for("model") == [
        "weights"
    ]
    outcomes = {"weights": CheckOutcome("weights", Measurement(name="weights", version="1"))}
    assert judge(policy, outcomes, "adapter").decision is Decision.BLOCK  # evals did not run
    assert judge(policy, {}, "memory").blocking[0].reason == "required check poison.memory did not run"
    with pytest.raises(PolicyError, match=r"required_checks\.dataset"):
        parse_policy('name = "k"\n[required_checks]\ndataset = ["x"]\n')


def test_a_finding_quotes_what_the_check_says_is_behind_its_number() -> None:
    from clgate.audit.gate_checks import combine
    from clgate.probes.poison.result import DetectorResult

    sweep = DetectorResult(
        ["control:ok", "trigger:cf"], [0.1, 6.0], ["c", "t"], 2.0, "rule",
        triggers=[{"trigger": "cf", "source": "mined", "delta_kl": 6.0, "shared_fraction": 0.875,
                   "example": "To verify your account"}],
        name="trigger_sweep", family="model", version="2",
    )  # fmt: skip
    measurement = combine([sweep.to_measurement()], prefix="poison.")
    policy = parse_policy(
        'name = "t"\nrequired_checks = ["poison.model"]\n[[rules]]\nid = "backdoor"\ncheck = "poison.model"\n'
        'metric = "trigger_sweep.triggers_found"\nreason = "A trigger acts"\nfail_above = 0\n'
    )
    verdict = judge(policy, {"poison.model": CheckOutcome("poison.model", measurement)})
    assert verdict.decision is Decision.BLOCK
    reason = verdict.blocking[0].reason
    assert "trigger 'cf' (mined, ΔKL 6.00, 88% of probes answered 'To verify your account')" in reason
    passing = judge(policy, {"poison.model": CheckOutcome("poison.model", Measurement(
        name="poison.model", version="2", numbers={"trigger_sweep.triggers_found": 0.0},
        explain={"trigger_sweep.triggers_found": "nothing"}))})  # fmt: skip
    assert passing.decision is Decision.PROMOTE and "nothing" not in passing.findings[0].reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "k"\nrequired_checks = []\n', "required_checks: Value error, required_checks is empty|required_checks is empty"),
        ('name = "k"\n[required_checks]\nadapter = ["weights"]\n', "required_checks.model is missing or empty"),
        ('name = "k"\n[required_checks]\nmodel = ["w"]\nadapter = []\nmemory = ["m"]\n', "required_checks.adapter is missing or empty"),
        ('name = "k"\nrequired_checks = ["w"]\n\n[[rules]]\nid = "r"\ncheck = "w"\nmetric = "m"\nreason = "x"\nfail_above = nan\n',
         r"p.toml:9: rules.0.fail_above: must be a finite number \(not nan or inf\)"),
        ('name = "k"\nrequired_checks = ["w"]\n\n[[rules]]\nid = "r"\ncheck = "w"\nmetric = "m"\nreason = "x"\nwarn_below = -inf\n',
         "p.toml:9: rules.0.warn_below: must be a finite number"),
    ],
)  # fmt: skip
def test_a_policy_that_would_silently_allow_everything_is_refused(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text, "p.toml")


@pytest.mark.parametrize(
    ("check", "option", "message"),
    [
        ("privacy", 'threshold = "high"', r"options\.threshold: Input should be a valid number"),
        ("privacy", "threshold = 2", r"options\.threshold: Input should be less than or equal to 1"),
        ("privacy", 'threshold = "0.4"', r"options\.threshold: Input should be a valid number"),
        ("privacy", "threshold = true", r"options\.threshold: Input should be a valid number"),
        ("poison.model", 'scan_tokens = "maybe"', r"options\.scan_tokens: Input should be a valid boolean"),
        ("poison.model", "triggers = 5", r"options\.triggers: Input should be a valid list"),
        ("evals", 'suites = "retention"', r"options\.suites: Input should be a valid list"),
        ("poison.memory", 'detector = ["injection"]', r"options\.detector: Extra inputs are not permitted"),
    ],
)
def test_an_option_of_the_wrong_type_or_name_is_refused_with_the_policy(
    check: str, option: str, message: str
) -> None:
    """Met at a gate, each would crash the check (a block) or be ignored; refused with the policy instead."""
    with pytest.raises(PolicyError, match=message):
        parse_policy(
            f'name = "p"\nrequired_checks = ["evals"]\n[checks."{check}"]\noptions = {{ {option} }}\n'
        )


def test_a_poisoning_check_naming_a_detector_it_does_not_have_is_refused() -> None:
    from clgate.audit.gate import check_policy_sound

    for name, message in (
        ("injecton", "unknown poisoning detector 'injecton'"),
        ("spectral", "not a memory detector"),
    ):
        text = f'name = "p"\nrequired_checks = ["evals"]\n[checks."poison.memory".options]\ndetectors = ["{name}"]\n'
        with pytest.raises(PolicyError, match=f"p: checks.poison.memory.options.detectors: .*{message}"):
            check_policy_sound(parse_policy(text))


def test_the_policy_digest_ignores_layout_but_not_meaning() -> None:
    a = parse_policy('name = "k"\nrequired_checks = ["w"]\n')
    b = parse_policy('# a comment\nname   = "k"\n\nrequired_checks = [ "w" ]\n')
    c = parse_policy('name = "k"\nrequired_checks = ["w", "v"]\n')
    assert a.digest == b.digest != c.digest and a.digest.startswith("sha256:")


def test_only_checks_that_need_the_weights_may_be_not_applicable_to_served_updates() -> None:
    from clgate.audit.gate import check_policy

    base = 'name = "p"\nrequired_checks = ["evals", "activations"]\n'
    with pytest.raises(PolicyError, match=r'options\.served can only be "not_applicable"'):
        parse_policy(base + '[checks.activations]\noptions = { served = "sometimes" }\n')
    with pytest.raises(PolicyError, match="served_scoring"):
        parse_policy(base + '[checks.evals]\noptions = { served_scoring = "guess" }\n')
    for bad in ("limit = 0", 'limit = "all"', "limits = { retention = -1 }", "limits = [100]"):
        with pytest.raises(PolicyError, match=r"options\.limit"):
            parse_policy(base + f"[checks.evals]\noptions = {{ {bad} }}\n")
    limited = parse_policy(base + "[checks.evals]\noptions = { limit = 16, limits = { retention = 100 } }\n")
    assert limited.options_for("evals")["limits"] == {"retention": 100}
    evals_skipped = parse_policy(base + '[checks.evals]\noptions = { served = "not_applicable" }\n')
    with pytest.raises(PolicyError, match="only checks that need the model's weights") as caught:
        check_policy(evals_skipped, journal=None)  # type: ignore[arg-type]  (refused before the ledger is read)
    assert "activations" in str(caught.value) and "poison.data" in str(caught.value)
    # a not-applicable outcome satisfies the requirement, with a finding that says why; its rules do not fire
    outcomes = {
        "evals": CheckOutcome("evals", Measurement(name="evals", version="1", numbers={"x": 1.0})),
        "activations": CheckOutcome("activations", None, not_applicable="a served update (policy p)"),
    }
    rules = base + '[[rules]]\nid = "r"\ncheck = "activations"\nmetric = "m"\nreason = "r"\nfail_above = 0\n'
    verdict = judge(parse_policy(rules), outcomes)
    assert verdict.decision is Decision.PROMOTE
    [skipped] = [f for f in verdict.findings if f.check == "activations"]
    assert (
        skipped.rule == "not-applicable"
        and skipped.status is Status.PASS
        and "served update" in skipped.reason
    )


def test_a_policy_naming_a_suite_that_is_no_more_is_refused_not_blocking_every_gate(tmp_path: Path) -> None:
    """`trigger_sweep` was the triggers suite's old name: a policy adopted with it is refused at the gate's
    start, as one line, instead of every gate under it blocking on the evals check's error."""
    text = 'name = "renamed"\nrequired_checks = ["evals"]\n\n[checks.evals]\noptions = { suites = ["retention", "trigger_sweep"] }\n'
    old, new = parse_policy(text), parse_policy(text.replace("trigger_sweep", "triggers"))
    boot = bootstrap_ledger(tmp_path / "ledger", policies=[old, new])
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        with pytest.raises(
            PolicyError, match=r"checks.evals.options.suites names 'trigger_sweep', which is no suite"
        ):
            check_policy(old, journal)
        check_policy(new, journal)
    misspelt = parse_policy(
        text.replace("trigger_sweep", "triggers")
        + "[checks.anchor]\noptions = { limits = { retntion = 100 } }\n"
    )
    with pytest.raises(
        PolicyError, match=r"checks.anchor.options.limits names 'retntion', which is no suite"
    ):
        check_policy(misspelt, journal=None)  # type: ignore[arg-type]  (refused before the ledger is read)


@pytest.mark.parametrize(
    ("extra", "user"),
    [
        ('skipped_checks = ["w"]\n', "required_checks still use"),
        ('skipped_checks = ["v"]\nscheduled_checks = ["v"]\n', "scheduled_checks still use"),
        ('skipped_checks = ["anchor"]\n[anchors]\nprod = "sha256:ab"\n', "anchors .the bases it compares with. still use"),
        ('skipped_checks = ["v"]\n[[rules]]\nid = "r"\ncheck = "v"\nmetric = "m"\nreason = "x"\nfail_above = 1\n',
         "rule 'r' still use"),
    ],
)  # fmt: skip
def test_a_skipped_check_the_policy_still_uses_is_refused(extra: str, user: str) -> None:
    """Skipping a required check would block every update; skipping a judged one would let its rules never fire."""
    with pytest.raises(PolicyError, match=user):
        parse_policy(f'name = "k"\nrequired_checks = ["w"]\n{extra}')


def test_skipping_is_in_the_digest_and_absent_skips_keep_adopted_digests() -> None:
    plain = parse_policy('name = "k"\nrequired_checks = ["w"]\n')
    assert "skipped_checks" not in plain.canonical_text  # policies adopted before the field keep their digest
    skipping = parse_policy('name = "k"\nrequired_checks = ["w"]\nskipped_checks = ["v"]\n')
    assert skipping.digest != plain.digest and "v" in skipping.check_names()
    with pytest.raises(PolicyError, match="unknown check 'v'"):
        skipping.unknown_checks({"w"})


@pytest.mark.parametrize("name", ["evals", "regression"])
def test_a_check_whose_measurements_later_gates_read_cannot_be_skipped(name: str) -> None:
    """One fast-lane audit without them would leave a hole in the regression history every later gate
    measures forgetting against: refused at the gate's start, before the ledger is read."""
    policy = parse_policy(f'name = "k"\nrequired_checks = ["weights"]\nskipped_checks = ["{name}"]\n')
    with pytest.raises(
        PolicyError, match=f"skipped_checks names '{name}', whose measurements later gates read"
    ):
        check_policy(policy, journal=None)  # type: ignore[arg-type]
