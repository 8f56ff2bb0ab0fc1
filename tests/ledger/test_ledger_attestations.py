"""Verdicts as attestations, checked with generic tools only: securesystemslib for the DSSE signature,
the in-toto attestation protobuf bindings for the statement and predicates, hashlib for the subjects."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from in_toto_attestation.predicates.test_result.v0 import test_result_pb2
from in_toto_attestation.predicates.vsa.v1 import vsa_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement as IntotoStatement
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey

from clgate.errors import InputError, IntegrityError
from clgate.ledger import (
    AuditRecord,
    Decision,
    Finding,
    Ledger,
    Proposal,
    ProposalContent,
    Status,
    Trust,
    check_files,
    key_id,
    sign_envelope,
    verify_attestation,
    write_attestations,
)

from .conftest import Flow

FILES = {
    "adapter_config.json": b'{"r": 8}',
    "adapter_model.safetensors": bytes(range(256)) * 64,
    "tokenizer/special_tokens.txt": b"<|im_start|>\n",
}


@dataclass(frozen=True)
class Exported:
    ledger: Ledger
    folder: Path
    out: Path
    audits: dict[str, int]  # verdict -> audit entry index
    skipped: list[int]


def _sha256_files(folder: Path) -> dict[str, str]:
    """What any verifier computes: the SHA-256 of each file's bytes, by its path inside the artifact."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def _proposal(folder: Path, nonce: str) -> Proposal:
    files = _sha256_files(folder)
    root = "sha256:" + hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()
    parent = {"kind": "model", "uri": "/m/parent", "digest": "sha256:" + "f" * 64}
    candidate = {"kind": "model", "uri": str(folder), "digest": root, "files": files}
    content = {
        "kind": "model",
        "base": root,
        "nonce": nonce,
        "artifacts": {"parent": parent, "candidate": candidate},
    }
    return Proposal.of(ProposalContent.model_validate(content))


def _finding(check: str, rule: str, status: str) -> Finding:
    return Finding(rule=rule, check=check, status=Status(status), reason=f"{rule} {status}")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, keys: dict[str, Ed25519PrivateKey], trust: Trust) -> Iterator[Exported]:
    """A blocked and a promoted update of real files, one audit whose proposal listed no files."""
    tmp = tmp_path_factory.mktemp("attest")
    folder = tmp / "candidate"
    for name, data in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    ledger = Ledger.init(tmp / "ledger.db", keys["admin"], trust)
    flow, audits = Flow(ledger, keys), {}
    skipped = _finding("poison.model", "not-applicable", "pass")  # a check the policy did not run
    findings = {
        "block": [_finding("weights", "max-change", "pass"), _finding("evals", "retention", "fail"), skipped],
        "promote": [
            _finding("weights", "max-change", "pass"),
            _finding("evals", "retention", "pass"),
            skipped,
        ],
    }
    for n, (verdict, found) in enumerate(findings.items()):
        p = _proposal(folder, f"{n:016x}")
        ledger.append(p, keys["pipeline"], p.candidate.digest)
        record = AuditRecord(update_id=p.update_id, verdict=Decision(verdict), findings=found,
                             measurements={"weights": "sha256:" + "ab" * 32}, policy=flow.policy)  # fmt: skip
        audits[verdict] = ledger.append(record, keys["gate"], p.candidate.digest).index
    flow.audit(flow.propose("model"), "review")  # Flow's proposals record no file digests
    done = write_attestations(ledger, tmp / "att", keys["gate"])
    yield Exported(ledger, folder, tmp / "att", audits, done.skipped)
    ledger.close()


def _statement(exported: Exported, verdict: str, kind: str) -> dict:
    data = (exported.out / f"audit-{exported.audits[verdict]:08d}.{kind}.intoto.json").read_bytes()
    return json.loads(base64.b64decode(json.loads(data)["payload"]))


def test_every_audit_of_listed_files_exports_a_vsa_and_a_test_result(exported: Exported) -> None:
    names = sorted(p.name for p in exported.out.iterdir())
    expected = [
        f"audit-{i:08d}.{k}.intoto.json"
        for i in sorted(exported.audits.values())
        for k in ("test-result", "vsa")
    ]
    assert names == expected
    *_, review = exported.ledger.find("audit.completed")
    assert exported.skipped == [review.index]


@pytest.mark.parametrize("kind", ["vsa", "test-result"])
def test_generic_tools_verify_signature_statement_and_every_subject(
    exported: Exported, keys, kind: str
) -> None:
    public = keys["gate"].public_key()
    for index in exported.audits.values():
        data = (exported.out / f"audit-{index:08d}.{kind}.intoto.json").read_bytes()
        envelope = SslibEnvelope.from_dict(json.loads(data))
        envelope.verify([SSlibKey.from_crypto(public, keyid=key_id(public))], threshold=1)
        assert envelope.payload_type == "application/vnd.in-toto+json"
        statement = json.loads(envelope.payload)
        IntotoStatement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement())).validate()
        subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
        assert subjects == _sha256_files(exported.folder) and len(subjects) == len(FILES)


def test_the_vsa_says_passed_only_for_a_promote_and_pins_the_policy_and_ledger_entries(
    exported: Exported,
) -> None:
    ledger = exported.ledger
    adopted = ledger.governance().policies
    for verdict, result, levels in (
        ("promote", "PASSED", ["CLGATE_POLICY_PASSED"]),
        ("block", "FAILED", ["FAILED"]),
    ):
        statement = _statement(exported, verdict, "vsa")
        assert statement["predicateType"] == "https://slsa.dev/verification_summary/v1"
        predicate = statement["predicate"]
        # in-toto-attestation 0.9.3's VSA proto has verifiedLevels as one string (in-toto/attestation#425);
        # the spec (and so the statement) has a list: parse the rest with the proto, check it alone.
        assert predicate.pop("verifiedLevels") == levels
        vsa = json_format.ParseDict(predicate, vsa_pb2.VerificationSummary(), ignore_unknown_fields=True)
        assert vsa.verification_result == result
        assert vsa.resource_uri == exported.folder.as_uri()
        audit = ledger.get(exported.audits[verdict])
        assert vsa.verifier.id == f"https://clgate.dev/gate?key={audit.signer}"
        assert vsa.time_verified.ToJsonString().startswith(audit.timestamp[:19])
        digest = audit.body["policy"]["digest"]
        assert dict(vsa.policy.digest) == {"sha256": digest.removeprefix("sha256:")}
        assert digest in adopted
        proposed, audited = vsa.input_attestations
        assert dict(audited.digest) == {"sha256": hashlib.sha256(audit.leaf).hexdigest()}
        assert audited.uri.endswith(f":entry:{audit.index}")
        assert dict(proposed.digest) == {
            "sha256": hashlib.sha256(ledger.get(audit.index - 1).leaf).hexdigest()
        }
        checks = predicate["https://clgate.dev/attestations/audit/v1"]["checks"]
        evals = "FAILED" if verdict == "block" else "PASSED"
        assert checks == [
            {"check": "weights", "result": "PASSED", "measurement": "sha256:" + "ab" * 32},
            {"check": "evals", "result": evals},
        ]  # the check that was not run is not attested as passed


def test_the_test_result_lists_each_finding_under_its_outcome(exported: Exported) -> None:
    for verdict, result, failed in (("block", "FAILED", ["evals:retention"]), ("promote", "PASSED", [])):
        statement = _statement(exported, verdict, "test-result")
        assert statement["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
        tests = json_format.ParseDict(
            statement["predicate"], test_result_pb2.TestResult()
        )  # no unknown fields
        assert tests.result == result and list(tests.failed_tests) == failed
        assert "weights:max-change" in tests.passed_tests and not tests.warned_tests
        assert not any(t.startswith("poison.model") for t in tests.passed_tests)  # not run, so not passed
        assert tests.configuration[0].uri == "urn:clgate:policy:p1"
        assert tests.url.endswith(f":entry:{exported.audits[verdict]}")


def test_clgate_verifies_its_attestations_and_the_files_they_name(exported: Exported, keys) -> None:
    for path in exported.out.iterdir():
        found = verify_attestation(path.read_bytes(), keys["gate"].public_key())
        assert found.kind in path.name and check_files(found.statement, exported.folder) == len(FILES)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: (f / "adapter_model.safetensors").write_bytes(b"poisoned"), "adapter_model.safetensors does not match its subject"),
        (lambda f: (f / "tokenizer" / "special_tokens.txt").unlink(), "attested file tokenizer/special_tokens.txt is missing"),
        (lambda f: (f / "tokenizer" / "extra.py").write_text("import os"), "tokenizer/extra.py is not among the attested files"),
    ],
)  # fmt: skip
def test_a_tampered_file_set_no_longer_matches_its_subjects(
    exported: Exported, keys, tmp_path, change, message
) -> None:
    folder = shutil.copytree(exported.folder, tmp_path / "candidate")
    change(folder)
    statement = _statement(exported, "promote", "vsa")
    assert _sha256_files(folder) != {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    data = (exported.out / f"audit-{exported.audits['promote']:08d}.vsa.intoto.json").read_bytes()
    found = verify_attestation(data, keys["gate"].public_key())
    with pytest.raises(IntegrityError, match=message):
        check_files(found.statement, folder)


def _edited(data: bytes, edit) -> bytes:
    """The envelope with its payload edited, the signature left as it was."""
    env = json.loads(data)
    statement = json.loads(base64.b64decode(env["payload"]))
    edit(statement)
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(env).encode()


@pytest.mark.parametrize(
    ("bad", "signer", "error", "message"),
    [
        (lambda d, led: d, "approver", IntegrityError, "does not verify with key"),
        (lambda d, led: _edited(d, lambda s: s["predicate"].update(verificationResult="PASSED")), "gate", IntegrityError, "does not verify"),
        (lambda d, led: d.replace(b'"payload": "', b'"payload": "!'), "gate", IntegrityError, "malformed DSSE envelope"),
        (lambda d, led: b"not json", "gate", InputError, "not an attestation: not JSON"),
        (lambda d, led: b"[" * 100_000, "gate", InputError, "not an attestation: not JSON"),  # too deep to parse
        (lambda d, led: b'{"format": "clgate.ledger.bundle"}', "gate", InputError, "not a DSSE envelope"),
        (lambda d, led: led.get(0).leaf, "admin", InputError, "not an in-toto attestation"),  # a ledger entry
    ],
)  # fmt: skip
def test_bad_attestations_are_refused(
    exported: Exported, keys, bad, signer: str, error, message: str
) -> None:
    data = (exported.out / f"audit-{exported.audits['block']:08d}.vsa.intoto.json").read_bytes()
    with pytest.raises(error, match=message):
        verify_attestation(bad(data, exported.ledger), keys[signer].public_key())


def test_a_statement_naming_one_file_twice_is_refused(exported: Exported, keys) -> None:
    """Two digests for one name would let a verifier match either: refused even when signed."""
    statement = _statement(exported, "promote", "vsa")
    statement["subject"].append({**statement["subject"][0], "digest": {"sha256": "0" * 64}})
    env = sign_envelope(json.dumps(statement).encode(), "application/vnd.in-toto+json", keys["gate"])
    with pytest.raises(InputError, match="two subjects name the same file"):
        verify_attestation(json.dumps(env.to_dict()).encode(), keys["gate"].public_key())
