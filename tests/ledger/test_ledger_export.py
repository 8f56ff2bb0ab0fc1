"""Bundles verified offline, tampered bundles caught, in-toto attestations checked by securesystemslib."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey

from clgate.errors import InputError
from clgate.ledger import Ledger, key_id, merkle
from clgate.ledger.export import (
    AUDIT_PREDICATE,
    STATEMENT_TYPE,
    load_bundle,
    parse_attestation,
    verify_bundle,
    write_attestations,
    write_bundle,
)

CANDIDATE = "ef" * 32


@pytest.fixture
def audited(tmp_path: Path, keys, trust) -> Ledger:
    with Ledger.init(tmp_path / "ledger.db", keys["admin"], trust) as led:
        led.append(
            {"type": "update.proposed", "subject": f"sha256:{CANDIDATE}", "body": {"candidate": "lora-7"}},
            keys["pipeline"],
        )
        led.append({"type": "audit.completed", "subject": f"sha256:{CANDIDATE}",
                    "body": {"verdict": "block", "candidate": "lora-7", "measurements": {"refusal": "sha256:00"}}},
                   keys["auditor"])  # fmt: skip
        led.append(
            {
                "type": "promotion.blocked",
                "subject": f"sha256:{CANDIDATE}",
                "body": {"reason": "refusal drop"},
            },
            keys["pipeline"],
        )
        led.checkpoint(keys["admin"])
        led.append({"type": "note", "body": {"text": "after the checkpoint"}}, keys["approver"])
        yield led


def test_bundle_verifies_offline_with_only_the_trust_file(audited: Ledger, trust, tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    write_bundle(audited, path)
    bundle = load_bundle(path)
    assert bundle.tree == {"size": 8, "root": audited.root().hex()}
    assert len(bundle.consistency_proof) > 0 and bundle.checkpoint is not None
    check = verify_bundle(bundle, trust)
    assert check.problems == []
    entry = bundle.entries[5]
    leaf = json.dumps(entry.envelope, separators=(",", ":"), sort_keys=True).encode()
    proof = [bytes.fromhex(h) for h in entry.inclusion_proof]
    assert merkle.verify_inclusion(leaf, 5, 8, proof, bytes.fromhex(bundle.tree["root"]))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda b: b["entries"][5]["envelope"].update(payload=b["entries"][4]["envelope"]["payload"]), "entry 5: payload says index 4"),
        (lambda b: b["entries"].pop(6), "entry 6: entries 6..6 are missing"),
        (lambda b: b["entries"][3]["inclusion_proof"].reverse(), "entry 3: inclusion proof does not verify"),
        (lambda b: b.update(tree={"size": 8, "root": "00" * 32}), "log: bundle tree head (size 8) does not match"),
        (lambda b: b["checkpoint"].update(payload=b["checkpoint"]["payload"][:-4] + "fQ=="), "log: checkpoint"),
        (lambda b: b.update(consistency_proof=[]), "log: consistency proof from checkpoint size 7 fails"),
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


def test_intoto_statement_per_audited_update_verifies_with_securesystemslib(
    audited: Ledger, keys, tmp_path: Path
) -> None:
    (path,) = write_attestations(audited, tmp_path / "att", keys["auditor"])
    data = path.read_bytes()
    sslib_env = SslibEnvelope.from_dict(json.loads(data))
    public = keys["auditor"].public_key()
    sslib_env.verify([SSlibKey.from_crypto(public, keyid=key_id(public))], threshold=1)
    _, statement = parse_attestation(data)
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == AUDIT_PREDICATE
    assert statement["subject"] == [{"name": "lora-7", "digest": {"sha256": CANDIDATE}}]
    ledger_part = statement["predicate"]["ledger"]
    assert statement["predicate"]["verdict"] == "block" and ledger_part["index"] == 5
    leaf = json.dumps(ledger_part["entry_envelope"], separators=(",", ":"), sort_keys=True).encode()
    proof = [bytes.fromhex(h) for h in ledger_part["inclusion_proof"]]
    assert merkle.verify_inclusion(
        leaf, 5, ledger_part["tree_size"], proof, bytes.fromhex(ledger_part["root"])
    )
