"""The gate with its real model checks on tiny models: every check takes its models from one pool."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clgate.artifacts import testing as factories
from clgate.audit import GateRequest, GateRun, Journal, Policy, propose, run_gate
from clgate.audit.bootstrap import Bootstrap, bootstrap_ledger
from clgate.audit.policy import parse_policy
from clgate.errors import InputError
from clgate.ledger import load_private_key

POLICY = """
name = "models"
required_checks = ["activations", "evals", "poison.model", "poison.data"]

[checks.evals]
options = { suites = ["retention", "refusal"], limit = 2 }
"""


@pytest.fixture
def setup(tiny_model: Path, tiny_lora: Path, tmp_path: Path) -> tuple[Policy, Bootstrap, GateRequest]:
    policy = parse_policy(POLICY)
    data = factories.make_dataset(tmp_path / "update.jsonl", n=8)
    request = GateRequest(parent=tiny_model, adapter=tiny_lora, data=data, target=data)
    return policy, bootstrap_ledger(tmp_path / "ledger", policies=[policy]), request


def _gate(setup, run: GateRun):
    policy, boot, request = setup
    with Journal.open(boot.ledger, load_private_key(boot.keys["gate"]), boot.trust) as journal:
        proposed = propose(request, journal.as_signer(load_private_key(boot.keys["pipeline"])), run)
        return run_gate(proposed.proposal.update_id, policy, journal, run, request, proposed.manifests)


def test_a_gate_loads_parent_and_candidate_once_for_every_model_check(setup, tmp_path) -> None:
    run = GateRun(out_dir=tmp_path / "out", device="cpu")
    result = _gate(setup, run)
    ran = {c.name: c for c in result.checks}
    assert {"activations", "evals", "poison.model", "poison.data"} <= set(ran)
    assert all(c.error is None for c in ran.values()), [c.error for c in ran.values()]
    assert result.model_loads == 2  # the parent, and the parent with the LoRA merged: nothing loaded twice
    again = _gate(
        setup, run
    )  # the same artifacts proposed again: every check is served from the gate's signed cache
    assert all(c.cached for c in again.checks), [(c.name, c.cached) for c in again.checks]
    assert again.model_loads == 0 and again.verdict == result.verdict


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_asking_for_cuda_without_it_is_refused_before_anything_is_written(setup, tmp_path) -> None:
    policy, boot, request = setup
    with Journal.open(boot.ledger, load_private_key(boot.keys["pipeline"]), boot.trust) as journal:
        update = propose(request, journal).proposal.update_id
    with Journal.open(boot.ledger, load_private_key(boot.keys["gate"]), boot.trust) as journal:
        size = len(journal.ledger)
        with pytest.raises(InputError, match="device cuda asked for, but CUDA is not available"):
            run_gate(update, policy, journal, GateRun(out_dir=tmp_path / "o", device="cuda"), request)
        assert len(journal.ledger) == size
