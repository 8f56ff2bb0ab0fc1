"""The gate's verdicts as in-toto attestations that generic verifiers read.

Each audited update becomes two DSSE-signed in-toto Statement v1 documents about the same subjects:
every file of the audited artifact, named by its path inside it, with the SHA-256 of its bytes. The
listing is the one the proposal recorded, which the gate compares with the files it hashed, so a
verifier holding the files recomputes every subject with hashlib and finds no file left out.

- a SLSA Verification Summary (VSA v1): did the artifact pass the policy the ledger pinned;
- an in-toto Test Result (v0.1): which checks passed, warned or failed under that policy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from clgate.atomic import write_bytes_atomic
from clgate.errors import InputError, IntegrityError
from clgate.json_input import parse_json
from clgate.ledger.canonical import canonical_json
from clgate.ledger.dsse import INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from clgate.ledger.entries import NOT_APPLICABLE, AuditRecord, Decision, Finding, PolicyRef, Status
from clgate.ledger.keys import key_id, public_bytes

if TYPE_CHECKING:
    from clgate.ledger.export import Bundle
    from clgate.ledger.governance import Governance, UpdateState
    from clgate.ledger.log import Ledger

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
VSA_PREDICATE = "https://slsa.dev/verification_summary/v1"
TEST_RESULT_PREDICATE = "https://in-toto.io/attestation/test-result/v0.1"
VERIFIER_ID = "https://clgate.dev/gate"
AUDIT_FIELD = "https://clgate.dev/attestations/audit/v1"
"""VSA extension field (VSA parsing rules: extension field names are URIs) with the checks the gate ran."""
PASSED_LEVEL = "CLGATE_POLICY_PASSED"
"""The one custom level of the VSA (custom values may not start with `SLSA_`): every check passed."""

_VSA_RESULT = {Decision.PROMOTE: "PASSED", Decision.REVIEW: "FAILED", Decision.BLOCK: "FAILED"}
_RESULT = {Status.PASS: "PASSED", Status.WARN: "WARNED", Status.FAIL: "FAILED"}
_WORST = {Decision.PROMOTE: Status.PASS, Decision.REVIEW: Status.WARN, Decision.BLOCK: Status.FAIL}
_HEX64 = r"^[0-9a-f]{64}$"
SUFFIXES = {VSA_PREDICATE: "vsa", TEST_RESULT_PREDICATE: "test-result"}


class _Spec(BaseModel):
    """Fields named as the specs spell them (camelCase); unknown fields ignored, as their parsing rules say."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ResourceDescriptor(_Spec):
    name: str | None = None
    uri: str | None = None
    digest: dict[str, str] = Field(default_factory=dict)


class Subject(ResourceDescriptor):
    """One file of the artifact: what a verifier hashes and compares."""

    name: str = Field(min_length=1)

    @field_validator("digest")
    @classmethod
    def _sha256(cls, digest: dict[str, str]) -> dict[str, str]:
        if not re.fullmatch(_HEX64, digest.get("sha256", "")):
            raise ValueError("a subject needs a sha256 digest of 64 lowercase hex digits")
        return digest


class Statement(_Spec):
    type: Literal["https://in-toto.io/Statement/v1"] = Field(STATEMENT_TYPE, alias="_type")
    subject: list[Subject] = Field(min_length=1)
    predicate_type: str
    predicate: dict[str, Any]

    @model_validator(mode="after")
    def _one_digest_per_file(self) -> Statement:
        names = [s.name for s in self.subject]
        if len(set(names)) != len(names):
            raise ValueError("two subjects name the same file")
        return self


class CheckRun(_Spec):
    check: str
    result: Literal["PASSED", "WARNED", "FAILED"]
    measurement: str | None = None
    """Digest of the measurement the ledger pinned (the evidence the check produced)."""


class AuditSummary(_Spec):
    update_id: str
    verdict: Decision
    manifest_root: str
    checks: list[CheckRun]


class Verifier(_Spec):
    id: str


class VerificationSummary(_Spec):
    """SLSA VSA v1 (https://slsa.dev/spec/v1.0/verification_summary)."""

    verifier: Verifier
    time_verified: str
    resource_uri: str
    policy: ResourceDescriptor
    input_attestations: list[ResourceDescriptor] = Field(default_factory=list)
    verification_result: Literal["PASSED", "FAILED"]
    verified_levels: list[str] = Field(min_length=1)
    dependency_levels: dict[str, int] = Field(default_factory=dict)
    slsa_version: str = "1.0"
    audit: AuditSummary | None = Field(default=None, alias=AUDIT_FIELD)


class TestResult(_Spec):
    """in-toto Test Result v0.1 (in-toto/attestation spec/predicates/test-result.md)."""

    __test__ = False  # a record, not a pytest class

    result: Literal["PASSED", "WARNED", "FAILED"]
    configuration: list[ResourceDescriptor] = Field(min_length=1)
    url: str | None = None
    passed_tests: list[str] = Field(default_factory=list)
    warned_tests: list[str] = Field(default_factory=list)
    failed_tests: list[str] = Field(default_factory=list)


PREDICATES: dict[str, type[VerificationSummary] | type[TestResult]] = {
    VSA_PREDICATE: VerificationSummary,
    TEST_RESULT_PREDICATE: TestResult,
}


def entry_uri(log_id: str, index: int) -> str:
    """Names a ledger entry; its envelope (and inclusion proof) is in the exported bundle."""
    return f"urn:clgate:ledger:{log_id}:entry:{index}"


def _policy(ref: PolicyRef) -> ResourceDescriptor:
    return ResourceDescriptor(
        name=ref.name,
        uri=f"urn:clgate:policy:{ref.name}",
        digest={"sha256": ref.digest.removeprefix("sha256:")},
    )


def _resource_uri(uri: str) -> str:
    return PurePosixPath(uri).as_uri() if PurePosixPath(uri).is_absolute() else uri


def _judged(audit: AuditRecord) -> list[Finding]:
    """The findings that judged something: a check that was not run is not attested as passed."""
    return [f for f in audit.findings if f.rule != NOT_APPLICABLE]


def _checks(audit: AuditRecord) -> list[CheckRun]:
    """Each check's worst finding; a check that recorded a measurement but no finding passed."""
    worst: dict[str, Status] = {}
    rank = list(Status)
    for f in _judged(audit):
        worst[f.check] = max(worst.get(f.check, Status.PASS), f.status, key=rank.index)
    names = [*worst, *(n for n in audit.measurements if n not in worst)]
    return [
        CheckRun(check=n, result=_RESULT[worst.get(n, Status.PASS)], measurement=audit.measurements.get(n))
        for n in names
    ]


def _test_name(f: Finding) -> str:
    return f"{f.check}:{f.rule}"


def audit_statements(ledger: Ledger, update: UpdateState) -> list[Statement]:
    """The VSA and the test result of one audited update (the file listing must have been recorded)."""
    if update.audit is None or update.audit_index is None:
        raise InputError(f"update {update.update_id} has not been audited")
    candidate = update.proposal.candidate
    if not candidate.files:
        raise InputError(f"update {update.update_id}: its proposal recorded no file digests to attest")
    audit, audited = update.audit, ledger.get(update.audit_index)
    proposed = ledger.get(update.proposed_index)
    log_id = ledger.log_id()
    subject = [Subject(name=p, digest={"sha256": d}) for p, d in sorted(candidate.files.items())]
    inputs = [
        ResourceDescriptor(
            uri=entry_uri(log_id, e.index), digest={"sha256": hashlib.sha256(e.leaf).hexdigest()}
        )
        for e in (proposed, audited)
    ]
    passed = audit.verdict is Decision.PROMOTE
    vsa = VerificationSummary(
        verifier=Verifier(id=f"{VERIFIER_ID}?key={audited.signer}"),
        time_verified=audited.timestamp,
        resource_uri=_resource_uri(candidate.uri),
        policy=_policy(audit.policy),
        input_attestations=inputs,
        verification_result=_VSA_RESULT[audit.verdict],
        verified_levels=[PASSED_LEVEL if passed else "FAILED"],
        audit=AuditSummary(
            update_id=update.update_id,
            verdict=audit.verdict,
            manifest_root=candidate.digest,
            checks=_checks(audit),
        ),
    )
    by_status = {s: [_test_name(f) for f in _judged(audit) if f.status is s] for s in Status}
    tests = TestResult(
        result=_RESULT[_WORST[audit.verdict]],
        configuration=[_policy(audit.policy)],
        url=entry_uri(log_id, audited.index),
        passed_tests=by_status[Status.PASS],
        warned_tests=by_status[Status.WARN],
        failed_tests=by_status[Status.FAIL],
    )
    return [
        Statement(subject=subject, predicate_type=t, predicate=p.to_json())
        for t, p in ((VSA_PREDICATE, vsa), (TEST_RESULT_PREDICATE, tests))
    ]


@dataclass(frozen=True)
class Exported:
    paths: list[Path]
    skipped: list[int]
    """Audit entries whose proposal recorded no file digests: nothing a verifier could recompute."""
    other_signer: list[int]
    """Audit entries another key signed: an attestation speaks for the key that made the audit."""


def write_attestations(ledger: Ledger, out_dir: Path, signer: Ed25519PrivateKey) -> Exported:
    """Per audited update, `audit-<entry index>.vsa.intoto.json` and `...test-result.intoto.json`."""
    paths, skipped, other_signer = [], [], []
    kid = key_id(signer.public_key())
    audited = [u for u in ledger.governance().updates.values() if u.audit_index is not None]
    for update in sorted(audited, key=lambda u: u.audit_index or 0):
        if not update.proposal.candidate.files:
            skipped.append(update.audit_index)
            continue
        if ledger.get(update.audit_index).signer != kid:
            other_signer.append(update.audit_index)
            continue
        for statement in audit_statements(ledger, update):
            env = sign_envelope(canonical_json(statement.to_json()), INTOTO_PAYLOAD_TYPE, signer, kid)
            name = f"audit-{update.audit_index:08d}.{SUFFIXES[statement.predicate_type]}.intoto.json"
            data = json.dumps(env.to_dict(), indent=1).encode() + b"\n"
            paths.append(write_bytes_atomic(Path(out_dir) / name, data, mode=0o644))
    return Exported(paths, skipped, other_signer)


@dataclass(frozen=True)
class Attestation:
    """A verified attestation: the statement and its predicate, typed."""

    keyid: str
    statement: Statement
    predicate: VerificationSummary | TestResult

    @property
    def kind(self) -> str:
        return SUFFIXES[self.statement.predicate_type]

    @property
    def result(self) -> str:
        """PASSED, WARNED or FAILED, whichever predicate this is."""
        p = self.predicate
        return p.verification_result if isinstance(p, VerificationSummary) else p.result


def verify_attestation(data: bytes, public_key: Ed25519PublicKey) -> Attestation:
    """Check the DSSE signature under `public_key`, then parse the statement and its predicate.

    Not an envelope or not an in-toto statement: InputError; a signature that does not verify
    (another key, or altered bytes): IntegrityError.
    """
    try:
        obj = parse_json(data, "the attestation")
    except InputError:
        raise InputError("not an attestation: not JSON") from None
    if not isinstance(obj, dict) or not {"payload", "payloadType", "signatures"} <= obj.keys():
        raise InputError("not an attestation: not a DSSE envelope (payload, payloadType, signatures)")
    env = Envelope.from_dict(obj)
    kid = key_id(public_key)
    if not env.verify(public_bytes(public_key)):
        raise IntegrityError(
            f"the signature does not verify with key {kid[:16]} (envelope names key {env.keyid[:16]}): "
            "another key signed it, or it was altered"
        )
    if env.payload_type != INTOTO_PAYLOAD_TYPE:
        raise InputError(f"not an in-toto attestation (payloadType {env.payload_type!r})")
    try:
        statement = Statement.model_validate_json(env.payload)
        kind = PREDICATES.get(statement.predicate_type)
        if kind is None:
            raise InputError(f"unknown predicateType {statement.predicate_type!r}")
        predicate = kind.model_validate(statement.predicate)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(
            f"not an in-toto Statement v1 of a known predicate: {where}: {first['msg']}"
        ) from None
    if isinstance(predicate, VerificationSummary) and predicate.verifier.id != f"{VERIFIER_ID}?key={kid}":
        raise IntegrityError(
            f"signed by key {kid[:16]}, but the audit it summarises names verifier {predicate.verifier.id}: "
            "only the key that made the audit may attest it"
        )
    return Attestation(env.keyid, statement, predicate)


def _file_digests(path: Path) -> dict[str, str]:
    """SHA-256 of every file under `path`, by relative POSIX path (a file alone: by its name).

    Symbolic links to folders are not followed, as the manifest does not follow them.
    """
    path = Path(path)
    if path.is_file():
        return {path.name: _sha256(path)}
    if not path.is_dir():
        raise InputError(f"{path}: no such file or directory")
    found = {}
    for folder, _, names in os.walk(path):
        for name in names:
            file = Path(folder) / name
            if file.is_file():
                found[file.relative_to(path).as_posix()] = _sha256(file)
    return found


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_files(statement: Statement, path: Path) -> int:
    """The files at `path` are exactly the subjects: none missing, none altered, none added."""
    expected = {s.name: s.digest["sha256"] for s in statement.subject}
    found = _file_digests(path)
    for name, digest in sorted(expected.items()):
        if name not in found:
            raise IntegrityError(f"{path}: attested file {name} is missing")
        if found[name] != digest:
            raise IntegrityError(f"{path}: {name} does not match its subject (sha256 {found[name][:16]}…)")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise IntegrityError(f"{path}: {extra[0]} is not among the attested files ({len(extra)} unattested)")
    return len(expected)


_ENTRY_URI = re.compile(r"^urn:clgate:ledger:(?P<log>[0-9a-f]+):entry:(?P<index>[0-9]+)$")


def _entry_index(uri: str | None, log_id: str) -> int:
    match = _ENTRY_URI.match(uri or "")
    if match is None or match["log"] != log_id:
        raise IntegrityError(f"names {uri!r}, not an entry of log {log_id[:16]}… (the bundle's)")
    return int(match["index"])


def check_in_bundle(found: Attestation, signer: str, bundle: Bundle, state: Governance) -> str:
    """That a verified attestation agrees with a verified bundle of its log; the update id it speaks for.

    The entries it pins are the bundle's (by digest); the audit was signed by `signer`, the key that
    signed the attestation, holding the gate role then; the result and the files are the ones that
    audit reached and that proposal listed. A gate key cannot attest a verdict its own audit did not give.
    """
    p = found.predicate
    if isinstance(p, VerificationSummary):
        for ref in p.input_attestations:
            index = _entry_index(ref.uri, bundle.log_id)
            if index >= len(bundle.entries):
                raise IntegrityError(f"pins entry {index}, past the bundle's {len(bundle.entries)} entries")
            leaf = canonical_json(bundle.entries[index].envelope)
            if ref.digest.get("sha256") != hashlib.sha256(leaf).hexdigest():
                raise IntegrityError(f"pins entry {index} with another digest than the bundle's")
        audit_index = max((_entry_index(r.uri, bundle.log_id) for r in p.input_attestations), default=-1)
    else:
        audit_index = _entry_index(p.url, bundle.log_id)
    update = next((u for u in state.updates.values() if u.audit_index == audit_index), None)
    if update is None or update.audit is None:
        raise IntegrityError(f"entry {audit_index} of the bundle is no audit")
    made_by = Envelope.from_dict(bundle.entries[audit_index].envelope).keyid
    if made_by != signer:
        raise IntegrityError(
            f"signed by key {signer[:16]}, but key {made_by[:16]} made the audit at entry {audit_index}"
        )
    if not state.ring.has_role(signer, "gate", audit_index):
        raise IntegrityError(f"key {signer[:16]} did not hold the gate role at entry {audit_index}")
    verdict = update.audit.verdict
    expected = _VSA_RESULT[verdict] if isinstance(p, VerificationSummary) else _RESULT[_WORST[verdict]]
    if found.result != expected:
        raise IntegrityError(
            f"states {found.result}, but the audit at entry {audit_index} decided {verdict.value}"
        )
    subjects = {s.name: s.digest.get("sha256") for s in found.statement.subject}
    if subjects != dict(update.proposal.candidate.files):
        raise IntegrityError(f"its subjects are not the files update {update.update_id} proposed")
    return update.update_id
