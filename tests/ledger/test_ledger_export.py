"""Bundles verified offline, tampered bundles caught (attestations: test_ledger_attestations.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clgate.errors import InputError
from clgate.ledger import Ledger, SeenHeads, merkle
from clgate.ledger.export import load_bundle, verify_bundle, write_bundle

AUDIT = 9  # genesis (7 keys), policy adopted (7), proposed (8), audited (9), blocked (10)


@pytest.fixture
def audited(flow, keys) -> Ledger:
    p = flow.propose("model")
    flow.audit(p, "block")
    flow.block(p, reason="refusal drop")
    flow.ledger.checkpoint(keys["gate"])
    flow.ledger.append({"type": "note", "body": {"text": "after the checkpoint"}}, keys["approver"])
    return flow.ledger


def test_bundle_verifies_offline_with_only_the_trust_file(audited: Ledger, trust, tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    write_bundle(audited, path)
    bundle = load_bundle(path)
    assert bundle.tree == {"size": 12, "root": audited.root().hex()}
    assert len(bundle.consistency_proof) > 0 and bundle.checkpoint is not None
    check = verify_bundle(bundle, trust, seen=SeenHeads(tmp_path / "heads"))
    assert check.problems == []
    entry = bundle.entries[AUDIT]
    leaf = json.dumps(entry.envelope, separators=(",", ":"), sort_keys=True).encode()
    proof = [bytes.fromhex(h) for h in entry.inclusion_proof]
    assert merkle.verify_inclusion(leaf, AUDIT, 12, proof, bytes.fromhex(bundle.tree["root"]))
    # as exports made before listed keys: in another order, with a key only a trust file held; and checked
    # with a trust file that learnt of a revocation after the export
    older = bundle.model_copy(
        update={"keys": [*reversed(bundle.keys), {"key_id": "ab" * 32, "roles": ["admin"]}]}
    )
    later = trust.with_revocation(bundle.keys[-1]["key_id"], 12)
    assert verify_bundle(older, later).problems == []


@pytest.mark.parametrize("log_id", [None, "0" * 64])
def test_a_bundle_of_a_truncated_log_is_refused_by_a_verifier_that_saw_more(
    audited, trust, keys, tmp_path, log_id: str | None
) -> None:
    """Also when the bundle names another log: the head remembered is found by the log's own first entry."""
    path, seen = tmp_path / "bundle.json", SeenHeads(tmp_path / "heads")
    write_bundle(audited, path)
    assert verify_bundle(load_bundle(path), trust, seen=seen).problems == []
    data = json.loads(path.read_text())
    data["entries"] = data["entries"][:AUDIT]  # before the audit: the block never happened
    data["checkpoint"] = None
    data["consistency_proof"] = []
    data["log_id"] = log_id or data["log_id"]
    path.write_text(json.dumps(data))
    problems = [str(p) for p in verify_bundle(load_bundle(path), trust, seen=seen).problems]
    assert any("log shrank from 12 to 9 entries" in p for p in problems), problems
    assert any("bundle log_id 0000000000000000… is not its log's" in p for p in problems) == bool(log_id)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda b: b["entries"][8]["envelope"].update(payload=b["entries"][7]["envelope"]["payload"]), "entry 8: payload says index 7"),
        (lambda b: b["entries"].pop(9), "entry 9: entries 9..9 are missing"),
        (lambda b: b["entries"][3]["inclusion_proof"].reverse(), "entry 3: inclusion proof does not verify"),
        (lambda b: b.update(tree={"size": 12, "root": "00" * 32}), "log: bundle tree head (size 12) does not match"),
        (lambda b: b.update(checkpoint=b["checkpoint"].replace("\n11\n", "\n10\n")), "log: checkpoint is not signed"),
        (lambda b: b.update(checkpoint="junk"), "log: checkpoint: not a checkpoint"),
        (lambda b: b.update(consistency_proof=[]), "log: consistency proof from checkpoint size 11 fails"),
        # a reader of the bundle trusted its key list: the pipeline key made an admin there
        (lambda b: next(k for k in b["keys"] if k["name"] == "pipeline").update(roles=["admin", "pipeline"]),
         "log: the bundle's keys section misstates key"),
        (lambda b: b["keys"].pop(), "log: the bundle's keys section misstates key"),
    ],
)  # fmt: skip
def test_tampered_bundles_are_caught(audited: Ledger, trust, tmp_path: Path, tamper, message: str) -> None:
    path = tmp_path / "bundle.json"
    write_bundle(audited, path)
    data = json.loads(path.read_text())
    tamper(data)
    path.write_text(json.dumps(data))
    problems = [str(p) for p in verify_bundle(load_bundle(path), trust).problems]
    assert any(p.startswith(message) for p in problems), problems


def test_bundle_input_errors(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text('{"format": "x"}')
    with pytest.raises(InputError, match="not a ledger bundle"):
        load_bundle(tmp_path / "b.json")
