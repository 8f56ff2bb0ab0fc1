"""`artifact.signed` under the ledger's own rules: only an approver, only a promoted update that was
neither rolled back nor blocked, once per signature; a forced entry is flagged by verify and ignored."""

import hashlib

import pytest

from clgate.audit.state import replay
from clgate.errors import InputError, IntegrityError
from clgate.ledger import ArtifactSigned, OmsSignature, Proposal


def signed(p: Proposal, n: int = 1) -> ArtifactSigned:
    signature = OmsSignature(
        digest="sha256:" + hashlib.sha256(f"sig{n}".encode()).hexdigest(),
        key="sha256:" + hashlib.sha256(b"producer").hexdigest(),
    )
    return ArtifactSigned(update_id=p.update_id, artifact=p.candidate.digest, signature=signature)


def test_only_an_approver_signs_a_promoted_update_once_per_signature(flow, keys) -> None:
    base = flow.propose()
    flow.audit(base)
    with pytest.raises(InputError, match="was never promoted"):
        flow.ledger.append(signed(base), keys["approver"], base.candidate.digest)
    flow.promote(base)
    for role in ("gate", "pipeline", "admin", "auditor"):
        with pytest.raises(InputError, match=r"may not sign artifact\.signed"):
            flow.ledger.append(signed(base), keys[role], base.candidate.digest)
    with pytest.raises(InputError, match=r"subject must equal body\.artifact"):
        flow.ledger.append(signed(base), keys["approver"], "sha256:" + "0" * 64)
    entry = flow.ledger.append(signed(base), keys["approver"], base.candidate.digest)
    with pytest.raises(InputError, match=f"recorded at entry {entry.index}"):
        flow.ledger.append(signed(base), keys["approver"], base.candidate.digest)
    flow.ledger.append(signed(base, 2), keys["approver2"], base.candidate.digest)  # a second signer
    assert sorted(flow.ledger.governance().updates[base.update_id].signed) == [entry.index, entry.index + 1]


def test_rolled_back_and_blocked_updates_are_not_signed(flow, keys) -> None:
    base = flow.propose()
    flow.audit(base)
    flow.promote(base)
    first, second = (flow.propose("adapter", base=base.candidate.digest) for _ in range(2))
    for p in (first, second):
        flow.audit(p)
        flow.promote(p)
    flow.rollback(first)
    with pytest.raises(InputError, match=f"update {second.update_id} was rolled back at entry"):
        flow.ledger.append(signed(second), keys["approver"], second.candidate.digest)
    flow.ledger.append(signed(first), keys["approver"], first.candidate.digest)  # restored: deployed again
    flow.block(first, signer="approver", reason="found a regression")
    with pytest.raises(InputError, match="was blocked at entry"):
        flow.ledger.append(signed(first, 2), keys["approver"], first.candidate.digest)


def test_a_forced_signature_of_an_unpromoted_update_is_flagged_and_ignored(flow, keys) -> None:
    p = flow.propose()
    flow.audit(p)
    index = flow.force(signed(p), "approver", p.candidate.digest)
    problems = flow.ledger.verify()
    assert any(pr.index == index and "was never promoted" in pr.message for pr in problems)
    assert replay(flow.ledger.entries(), flow.ledger.trust).updates[p.update_id].signed == {}
    with pytest.raises(IntegrityError, match=f"entry {index} breaks the ledger's rules"):
        flow.promote(p)  # and no client appends on top of it until someone looks
