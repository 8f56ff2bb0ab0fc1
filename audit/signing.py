"""OpenSSF model signatures at both ends of the gate: checked on the way in, made on the way out.

On the way in, a proposal may carry the signature its weights' producer made upstream: it must
verify with `model_signing` and cover exactly the files clgate digests, and the proposal records it
(signature digest, key fingerprint) so the auditor sees who signed the weights. On the way out,
`sign_release` signs a promoted artifact for anyone downstream: only after re-hashing it with
clgate's manifest code to the digest the ledger promoted, and it records `artifact.signed`, which the
ledger accepts only for a promoted update that was neither rolled back nor blocked.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from clgate.artifacts import (
    Manifest,
    OmsSigned,
    compute_manifest,
    load_oms_private_key,
    oms_mismatch,
    path_inside,
    sign_oms,
    verify_oms,
)
from clgate.atomic import atomic_path
from clgate.audit.evidence import EvidenceStore
from clgate.audit.journal import Journal
from clgate.audit.policy import ProducerKey, ProducerSignatures
from clgate.audit.state import LedgerState
from clgate.audit.verdict import Finding, Status
from clgate.errors import InputError, IntegrityError
from clgate.ledger import CANDIDATE_ROLE, ArtifactSigned, OmsSignature, UpdateState


@dataclass(frozen=True)
class UpstreamSignature:
    """An OMS signature of the update's candidate, made by whoever produced its weights."""

    signature: Path
    public_key: Path


@dataclass(frozen=True)
class Release:
    """A promoted artifact signed: where its signature is and the ledger entry that records it."""

    update: UpdateState
    index: int
    signature: Path
    record: OmsSignature


def _record(signed: OmsSigned, excluded: str | None = None) -> OmsSignature:
    return OmsSignature(digest=signed.digest, key=signed.key, excluded=[excluded] if excluded else [])


def verify_upstream(upstream: UpstreamSignature, artifact: Path, manifest: Manifest) -> OmsSignature:
    """The proposal's record of a signature that verifies and covers every file of `manifest`."""
    signed = verify_oms(artifact, upstream.signature, upstream.public_key)
    own = path_inside(artifact, upstream.signature)
    mismatch = oms_mismatch(signed, manifest, own)
    if mismatch:
        raise IntegrityError(f"{upstream.signature}: {mismatch} in {artifact}; nothing recorded")
    return _record(signed, own)


def keep_signature(evidence: EvidenceStore, signature: Path, record: OmsSignature) -> None:
    """Keep the signature a proposal records beside the ledger, so a gate can verify it again itself."""
    kept = evidence.put_file(signature)
    if "sha256:" + kept != record.digest:
        raise IntegrityError(f"{signature} changed while it was verified; nothing recorded")


def producer_findings(
    producers: ProducerSignatures | None,
    update: UpdateState,
    artifact: Path | None,
    manifest: Manifest | None,
    evidence: EvidenceStore,
) -> list[Finding]:
    """Whether the candidate carries a signature by a producer the policy pins, verified again here.

    The proposal's record of a signature is the pipeline's word: whoever holds the pipeline key could
    record any key fingerprint. So the gate verifies the kept signature file itself with the pinned key
    and compares the files it covers with the manifest it just computed. A missing signature blocks
    only the kinds the policy requires one for; one by a key the policy does not pin sends others to
    review; one that does not verify blocks.
    """
    if producers is None:
        return []
    role = CANDIDATE_ROLE[update.kind]
    record = (update.proposal.signatures or {}).get(role)
    required = update.kind in producers.required_for

    def finding(status: Status, reason: str) -> list[Finding]:
        return [Finding(rule="producer-signature", check="signatures", status=status, reason=reason)]

    if record is None:
        if not required:
            return []
        return finding(
            Status.FAIL,
            f"the {role} carries no producer signature; policy requires one by {producers.names} "
            f"for {update.kind} updates",
        )
    key = producers.pinned(record.key)
    if key is None:
        return finding(
            Status.FAIL if required else Status.WARN,
            f"the {role} is signed by key {record.key[:19]}…, which the policy does not pin as a producer "
            f"({producers.names})",
        )
    problem = _verified_again(record, key, artifact, manifest, evidence)
    if problem:
        return finding(Status.FAIL, f"the signature by producer {key.name} the proposal records {problem}")
    return finding(
        Status.PASS, f"the {role} is signed by pinned producer {key.name}, verified again by the gate"
    )


def _verified_again(
    record: OmsSignature,
    key: ProducerKey,
    artifact: Path | None,
    manifest: Manifest | None,
    evidence: EvidenceStore,
) -> str | None:
    """What is wrong with the recorded signature, checked now with the pinned key; None if nothing."""
    if artifact is None or manifest is None:
        return "cannot be checked: the artifact is not on disk here"
    if record.excluded:  # the signature lies inside the artifact, whose files were just re-hashed
        signature: Path | None = Path(artifact) / record.excluded[0]
        if path_inside(artifact, signature) != record.excluded[0]:
            return f"names a signature file outside the artifact ({record.excluded[0]})"
    else:
        signature = evidence.file(record.digest)
    if signature is None or not signature.is_file():
        return "is not kept beside the ledger, so it cannot be checked"
    with tempfile.TemporaryDirectory(prefix="clgate-producer-") as tmp:
        pem = Path(tmp) / f"{key.name}.pub.pem"
        pem.write_text(key.public_key)
        try:
            signed = verify_oms(Path(artifact), signature, pem)
        except (InputError, IntegrityError) as exc:
            return f"does not verify with the pinned key: {str(exc).rsplit(': ', 1)[-1]}"
    if signed.digest != record.digest:
        return "is not the signature file the proposal recorded"
    mismatch = oms_mismatch(signed, manifest, record.excluded[0] if record.excluded else None)
    return f"does not cover the artifact audited: {mismatch}" if mismatch else None


def _promoted_update(state: LedgerState, artifact: Path, manifest: Manifest, signer: str) -> UpdateState:
    """The update that promoted these exact bytes and may be signed now (the latest, if several did)."""
    same = [u for u in state.updates.values() if u.candidate_digest == manifest.root]
    if same:
        allowed = [u for u in same if state.governance.signing_refusal(u, signer) is None]
        update = (allowed or same)[-1]
        refusal = state.governance.signing_refusal(update, signer)
        if refusal:
            raise InputError(f"signing refused: {refusal}")
        return update
    here = str(Path(artifact).resolve())
    proposed = [u for u in state.updates.values() if u.proposal.candidate.uri == here]
    promoted = [u for u in proposed if u.promoted_index is not None]
    if promoted:
        recorded = promoted[-1].proposal.candidate.files
        now = {f.path: f.sha256 for f in manifest.files}
        changed = sorted(p for p in recorded.keys() | now.keys() if recorded.get(p) != now.get(p))
        raise IntegrityError(
            f"{artifact} is not what update {promoted[-1].update_id} promoted (digest {manifest.root[:19]}…, "
            f"promoted {promoted[-1].candidate_digest[:19]}…; changed: {', '.join(changed[:3]) or 'none'})"
        )
    raise InputError(
        f"{artifact} ({manifest.root[:19]}…) is no update's candidate in this ledger; only a promoted artifact is signed"
    )


def sign_release(
    journal: Journal, artifact: Path, oms_key: Path, passphrase: str | None, signature: Path
) -> Release:
    """Sign a promoted artifact with an OMS key into `signature` and record `artifact.signed`.

    The signature file appears only once the ledger accepted the entry, and the entry only once the
    signature covers exactly the promoted files, so neither is ever left without the other.
    """
    signer = journal.signer_id
    if path_inside(artifact, signature) is not None:
        raise InputError(
            f"{signature} lies inside {artifact}: it would change the promoted files; write it beside them"
        )
    if signature.is_dir():
        raise InputError(f"{signature} is a directory; give the signature file's path")
    if signature.exists():  # it may be the file an earlier entry recorded: never replaced
        raise InputError(f"{signature} exists; refusing to overwrite a signature (give a new path)")
    load_oms_private_key(oms_key, passphrase)  # a wrong key or passphrase before any hashing
    manifest = compute_manifest(artifact, tensors=False)
    update = _promoted_update(journal.state(), artifact, manifest, signer)
    with atomic_path(signature) as tmp:
        signed = sign_oms(artifact, oms_key, passphrase, tmp)
        mismatch = oms_mismatch(signed, manifest)
        if mismatch:
            raise IntegrityError(f"{artifact} changed while it was signed: {mismatch}; nothing recorded")
        record = _record(signed)
        if any(s.signature.key == record.key for s in update.signed.values()):
            raise InputError(f"update {update.update_id} was already signed with this key; nothing recorded")
        body = ArtifactSigned(update_id=update.update_id, artifact=update.candidate_digest, signature=record)
        index = journal.append(body, update.candidate_digest)
    return Release(update, index, signature, record)
