"""Governance the ledger itself enforces, tried as an attacker holding one legitimate key would.

Each attack is refused on append (through the ledger API, on SQLite and PostgreSQL) and, where a
rogue client writes a validly signed entry straight into the database, flagged by `verify` and
ignored by replay. docs/ledger.md has the table attack → defence → test.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from clgate.audit.state import replay
from clgate.errors import InputError, IntegrityError
from clgate.ledger import (
    AppendRefused,
    KeyAdded,
    Ledger,
    PolicyAdopted,
    PolicyRef,
    PolicyRetired,
    SeenHeads,
    Trust,
    TrustedKey,
    cosign,
    generate_key,
    key_id,
    load_trust,
    save_trust,
    sign_checkpoint,
)
from clgate.ledger.canonical import canonical_json
from clgate.ledger.entries import EntryDraft, policy_text_digest
from clgate.ledger.keys import public_key_b64

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .conftest import Flow, truncate
from .test_ledger_release_signature import signed


def _problems(ledger: Ledger, **kw) -> list[str]:
    return [str(p) for p in ledger.verify(**kw)]


def _deployed(ledger: Ledger) -> dict[str, str]:
    return replay(ledger.entries(), ledger.trust).deployed()


# --- the pipeline key undoes a block ---------------------------------------------------------------


def test_pipeline_key_cannot_sign_an_audit(flow) -> None:
    p = flow.propose()
    with pytest.raises(AppendRefused, match=r"may not sign audit.completed \(needs gate\)"):
        flow.audit(p, "promote", signer="pipeline")


def test_second_audit_cannot_clear_a_block(flow) -> None:
    p = flow.propose()
    flow.audit(p, "block")
    flow.block(p)
    with pytest.raises(AppendRefused, match=f"update {p.update_id} was already audited at entry"):
        flow.audit(p, "promote")
    forced = flow.force(flow.audit_record(p, "promote"), "gate", p.candidate.digest)
    assert f"entry {forced}: update {p.update_id} was already audited at entry" in _problems(flow.ledger)[0]
    state = replay(flow.ledger.entries(), flow.ledger.trust)
    assert state.updates[p.update_id].decision == "block"
    assert state.governance.promotion_refusal(state.updates[p.update_id], None).startswith(
        f"update {p.update_id} was blocked by its audit"
    )


def test_proposer_cannot_audit_its_own_update(flow, keys) -> None:
    both = generate_key()
    kid = key_id(both.public_key())
    body = KeyAdded(
        key_id=kid, public_key=public_key_b64(both.public_key()), roles=["pipeline", "gate"], name="both"
    )
    flow.ledger.append(body, keys["admin"], kid)
    flow.keys["both"] = both
    p = flow.propose(signer="both")
    with pytest.raises(AppendRefused, match=f"the key that proposed update {p.update_id} may not audit it"):
        flow.audit(p, signer="both")


# --- a re-proposal rewrites history ---------------------------------------------------------------


def test_reproposal_of_an_update_id_is_refused_and_flagged(flow) -> None:
    p = flow.propose()
    flow.audit(p)
    with pytest.raises(AppendRefused, match=f"update {p.update_id} was already proposed at entry"):
        flow.ledger.append(p, flow.keys["pipeline"], p.candidate.digest)
    swapped = p.model_copy(update={"base": p.base})  # same id, replayed
    forced = flow.force(swapped, "pipeline", p.candidate.digest)
    assert f"entry {forced}: update {p.update_id} was already proposed" in _problems(flow.ledger)[0]
    state = replay(flow.ledger.entries(), flow.ledger.trust)
    assert state.updates[p.update_id].proposed_index < forced  # the first proposal stands


def test_an_update_id_not_derived_from_the_proposal_is_refused(flow) -> None:
    p = flow.proposal()
    body = p.model_dump(mode="json") | {"update_id": "0" * 16}
    with pytest.raises(InputError, match="update_id is not derived from the proposal's content"):
        flow.ledger.append(
            {"type": "update.proposed", "subject": p.candidate.digest, "body": body}, flow.keys["pipeline"]
        )


# --- promotion rules only in client code -----------------------------------------------------------


def test_raw_promotion_of_a_blocked_update_is_refused_flagged_and_ignored(flow) -> None:
    base = flow.deploy()
    bad = flow.propose("adapter", base=base.candidate.digest)
    flow.audit(bad, "block")
    flow.block(bad)
    with pytest.raises(AppendRefused, match=f"update {bad.update_id} was blocked by its audit"):
        flow.promote(bad)
    forced = flow.force(flow.promotion(bad), "approver", bad.candidate.digest)
    assert f"entry {forced}: update {bad.update_id} was blocked by its audit (a fail finding)" in _problems(
        flow.ledger
    )
    assert "adapter" not in _deployed(flow.ledger)  # replay ignores it
    with pytest.raises(Exception, match=f"entry {forced} breaks the ledger's rules"):
        flow.approve(base)  # and no client appends on top of it until someone looks


def test_the_gate_key_cannot_ask_fewer_approvals_or_witnesses_than_its_policy_pins(flow) -> None:
    """The audit records what its approval needs; one gate key recorded "1 approval from anyone, no
    witnesses" under a policy pinning 2 named approvers and a witness, and approved its own way through."""
    pins = {
        "approvals": {"required": 2, "approvers": ["approver", "approver2"]},
        "witnesses": {"required": 1},
    }
    strict = flow.adopt("strict", **pins)
    p = flow.propose()
    lenient = flow.audit_record(p, "review", policy=strict)  # approvals and witnesses left at their defaults
    with pytest.raises(AppendRefused, match="not what policy 'strict' pins \\(2 and 1\\)"):
        flow.ledger.append(lenient, flow.keys["gate"], p.candidate.digest)
    forced = flow.force(lenient, "gate", p.candidate.digest)
    assert any(f"entry {forced}: the audit asks for 1 approval(s)" in m for m in _problems(flow.ledger))
    truncate(flow.ledger, forced)
    flow.audit(p, "review", policy=strict, **pins)


def test_blocked_review_and_unapproved_updates_are_not_promoted(flow) -> None:
    base = flow.deploy()
    review = flow.propose("adapter", base=base.candidate.digest)
    flow.audit(review, "review", approvals={"required": 2})
    with pytest.raises(AppendRefused, match="needs 2 approvals, has 0"):
        flow.promote(review)
    flow.approve(review, "approver")
    with pytest.raises(AppendRefused, match="this key already approved"):
        flow.approve(review, "approver")
    with pytest.raises(AppendRefused, match="needs 2 approvals, has 1"):
        flow.promote(review)
    flow.approve(review, "auditor")
    blocked = flow.propose("adapter", base=base.candidate.digest)
    flow.audit(blocked)
    flow.block(blocked, "auditor", "not this one")
    with pytest.raises(AppendRefused, match="was blocked at entry"):
        flow.promote(blocked)
    assert flow.promote(review).type == "promotion.done"
    assert _problems(flow.ledger) == []


def test_a_block_relabelled_in_the_database_still_blocks(flow, db_url, trust) -> None:
    """The `entry_type` column is an unsigned copy: a database writer who relabels a block as a note hides
    it neither from a fresh process's replay (which would let any approver promote) nor from `find`."""
    import sqlalchemy as sa

    base = flow.deploy()
    blocked = flow.propose("adapter", base=base.candidate.digest)
    flow.audit(blocked)
    index = flow.block(blocked, "auditor", "not this one").index
    with flow.ledger.store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET entry_type = 'note' WHERE idx = :i"), {"i": index})
    with Ledger.open(db_url, trust) as fresh:  # replays from the database, as `clgate ledger append` does
        assert [e.index for e in fresh.find("promotion.blocked")] == [index]
        with pytest.raises(AppendRefused, match=f"was blocked at entry {index}"):
            fresh.append(flow.promotion(blocked), flow.keys["approver"], blocked.candidate.digest)


def test_an_entry_copied_to_the_head_of_the_database_stops_every_append(flow, db_url, trust) -> None:
    """Catch-up (what a process replays of the entries others appended since it looked) checks each entry's
    place in the chain, not only its signature and rules: a signed entry a database writer copied to the
    head is refused, and nobody signs on top of it until `clgate ledger verify` has been run."""
    base = flow.deploy()
    note = flow.ledger.append({"type": "note", "subject": None, "body": {"text": "x"}}, flow.keys["pipeline"])
    with Ledger.open(db_url, trust) as fresh:
        fresh.governance()  # this process has replayed everything so far
        copied = flow.replant(note.index)
        with pytest.raises(
            IntegrityError, match=f"entry {copied} is missing, or out of its place in the chain"
        ):
            fresh.append(flow.promotion(base), flow.keys["approver"], base.candidate.digest)
    assert f"entry {copied}: payload says index {note.index} (entries reordered, replayed or deleted)" in (
        _problems(flow.ledger)
    )


def test_approvals_count_only_distinct_keys_that_neither_proposed_nor_audited(flow, keys) -> None:
    both = generate_key()
    kid = key_id(both.public_key())
    flow.ledger.append(
        KeyAdded(
            key_id=kid, public_key=public_key_b64(both.public_key()), roles=["gate", "approver"], name="gk"
        ),
        keys["admin"],
        kid,
    )
    flow.keys["gk"] = both
    base = flow.propose()
    flow.audit(base, "review", signer="gk")
    with pytest.raises(AppendRefused, match=r"the key that audited update .* may not approve it"):
        flow.approve(base, "gk")
    flow.approve(base, "approver")
    with pytest.raises(AppendRefused, match=r"the key that audited update .* may not promote it"):
        flow.promote(base, "gk")
    assert flow.promote(base, "approver2").type == "promotion.done"


def test_n_of_m_by_name_and_by_key_id(flow, keys) -> None:
    p = flow.propose()
    approver2 = key_id(keys["approver2"].public_key())
    flow.audit(p, "review", approvals={"required": 2, "approvers": ["approver", approver2]})
    with pytest.raises(AppendRefused, match=r"auditor .* is not among the approvers the policy names"):
        flow.approve(p, "auditor")
    flow.approve(p, "approver")  # by name
    flow.approve(p, "approver2")  # by key id
    assert flow.promote(p).type == "promotion.done"


def _rotate(flow, name: str) -> None:
    """A routine key rotation: the admin revokes `name`'s key and adds a new one under the same name."""
    old, new = key_id(flow.keys[name].public_key()), generate_key()
    flow.ledger.append(
        {"type": "key.revoked", "subject": old, "body": {"key_id": old, "reason": "rotated"}},
        flow.keys["admin"],
    )
    kid = key_id(new.public_key())
    roles = sorted(flow.ledger.governance().ring.keys[old].roles)
    body = KeyAdded(key_id=kid, public_key=public_key_b64(new.public_key()), roles=roles, name=name)
    flow.ledger.append(body, flow.keys["admin"], kid)
    flow.keys = {**flow.keys, name: new}  # this flow's keys only: the fixture's are the session's


def test_a_revoked_keys_approval_no_longer_counts(flow) -> None:
    """Two of [approver, approver2]: 'approver' approves, then its key is revoked (rotated, or found out)
    and a new one added under its name. The old approval falls with the key, so approving again with the
    new key counts the person once, and approver2 is still needed."""
    base = flow.deploy()
    update = flow.propose("adapter", base=base.candidate.digest)
    flow.audit(update, "review", approvals={"required": 2, "approvers": ["approver", "approver2"]})
    flow.approve(update, "approver")
    _rotate(flow, "approver")
    flow.approve(update, "approver")  # the same person, with the key that replaced the revoked one
    with pytest.raises(AppendRefused, match="needs 2 approvals, has 1"):
        flow.promote(update)
    flow.approve(update, "approver2")
    assert flow.promote(update).type == "promotion.done"
    assert _problems(flow.ledger) == []


def test_admin_may_only_manage_keys_and_policies(flow) -> None:
    with pytest.raises(AppendRefused, match=r"may not sign update.proposed \(needs pipeline\)"):
        flow.propose(signer="admin")
    p = flow.propose()
    for action in (flow.audit, flow.approve, flow.promote):
        with pytest.raises(AppendRefused, match=r"admin .* may not sign"):
            action(p, signer="admin")


def test_proposer_cannot_promote_its_own_update(flow, keys) -> None:
    both = generate_key()
    kid = key_id(both.public_key())
    flow.ledger.append(
        KeyAdded(
            key_id=kid,
            public_key=public_key_b64(both.public_key()),
            roles=["pipeline", "approver"],
            name="pa",
        ),
        keys["admin"],
        kid,
    )
    flow.keys["pa"] = both
    p = flow.propose(signer="pa")
    flow.audit(p)
    with pytest.raises(AppendRefused, match=f"the key that proposed update {p.update_id} may not promote it"):
        flow.promote(p, "pa")


def test_stale_base_and_rolled_back_updates_need_a_new_proposal(flow) -> None:
    base1 = flow.deploy()
    a1 = flow.deploy("adapter", base1.candidate.digest)
    a2 = flow.deploy("adapter", base1.candidate.digest)
    flow.rollback(a1)
    with pytest.raises(
        AppendRefused, match=f"update {a2.update_id} was rolled back at entry .*; propose it again"
    ):
        flow.promote(a2)
    with pytest.raises(AppendRefused, match="was rolled back"):
        flow.rollback(a2)
    base2 = flow.deploy()
    late = flow.propose("adapter", base=base1.candidate.digest)
    flow.audit(late)
    with pytest.raises(AppendRefused, match="was built on another base than the deployed one"):
        flow.promote(late)
    again = flow.propose("adapter", base=base2.candidate.digest, again=a2)
    flow.audit(again)
    assert flow.promote(again).type == "promotion.done"
    assert _problems(flow.ledger) == []


def test_an_update_proposed_again_is_decided_by_its_new_audit(flow) -> None:
    """Once the same change is proposed again (`supersedes`), the earlier proposal's audit no longer speaks
    for it: a re-audit that blocks cannot be walked past by promoting the earlier proposal. Only the same
    bytes may supersede it, or any pipeline key could retire any pending update."""
    base = flow.deploy()
    first = flow.propose("adapter", base=base.candidate.digest)
    flow.audit(first)
    with pytest.raises(AppendRefused, match=f"supersedes update {first.update_id}, which proposed another"):
        flow.propose(
            "adapter", base=base.candidate.digest, supersedes=first.update_id
        )  # other bytes: no re-audit
    again = flow.propose("adapter", base=base.candidate.digest, again=first)
    flow.audit(again, "block")
    with pytest.raises(
        AppendRefused, match=f"update {first.update_id} was proposed again as {again.update_id}"
    ):
        flow.promote(first)
    forced = flow.force(flow.promotion(first), "approver", first.candidate.digest)
    assert any(
        p.startswith(f"entry {forced}: update {first.update_id} was proposed again")
        for p in _problems(flow.ledger)
    )
    assert "adapter" not in _deployed(flow.ledger)


def test_bytes_whose_re_audit_blocked_are_neither_rolled_back_to_nor_signed(flow) -> None:
    """An update promoted once, replaced, then proposed again and blocked: its earlier audit no longer
    speaks for those bytes, so one approver key can neither roll the deployment back to them nor sign
    them as a release."""
    base = flow.deploy()
    first = flow.deploy("adapter", base.candidate.digest)
    flow.deploy("adapter", base.candidate.digest)  # replaces it
    again = flow.propose("adapter", base=base.candidate.digest, again=first)
    flow.audit(again, "block")
    refused = (
        f"update {first.update_id} was proposed again as {again.update_id}; that proposal's audit decides"
    )
    with pytest.raises(AppendRefused, match=refused):
        flow.rollback(first)
    with pytest.raises(AppendRefused, match=refused):
        flow.ledger.append(signed(first), flow.keys["approver"], first.candidate.digest)
    forced = flow.force(flow.rollback_to(first), "approver", first.candidate.digest)
    assert f"entry {forced}: {refused}" in _problems(flow.ledger)


def test_an_upgrade_re_audited_on_its_new_base_can_still_be_rolled_back(flow) -> None:
    """A re-audit on a new base judged another pair: once the base is rolled back, the adapter's audit on
    the old base still speaks for it, so the deployment returns to what ran before the upgrade."""
    base1 = flow.deploy()
    adapter1 = flow.deploy("adapter", base1.candidate.digest)
    base2 = flow.deploy()
    again = flow.propose("adapter", base=base2.candidate.digest, again=adapter1)
    flow.audit(again)
    flow.promote(again)
    flow.rollback(base1)
    assert flow.rollback(adapter1).type == "rollback"
    assert _deployed(flow.ledger)["adapter"] == adapter1.update_id and _problems(flow.ledger) == []


def test_a_memory_is_promoted_only_beside_the_adapter_its_audit_asked_through(flow) -> None:
    """The gate judged the memory by what base + adapter A say with it; after adapter B is promoted that
    judgement says nothing of what the deployment says, so the memory needs a new audit."""
    base = flow.deploy()
    a = flow.deploy("adapter", base.candidate.digest)
    memory = flow.propose("memory", base=base.candidate.digest)
    flow.audit(memory, adapter=a.update_id)
    b = flow.deploy("adapter", base.candidate.digest)
    refused = (
        f"memory update {memory.update_id} was judged through adapter {a.update_id}, but deployment "
        f"'default' runs adapter {b.update_id} now; propose it again for a new audit"
    )
    with pytest.raises(AppendRefused, match=refused):
        flow.promote(memory)
    forced = flow.force(flow.promotion(memory), "approver", memory.candidate.digest)
    assert f"entry {forced}: {refused}" in _problems(flow.ledger)
    assert "memory" not in _deployed(flow.ledger)  # replay ignores it


def test_a_rollback_cannot_put_a_memory_beside_an_adapter_it_was_not_judged_through(flow) -> None:
    base = flow.deploy()
    a = flow.deploy("adapter", base.candidate.digest)
    first = flow.propose("memory", base=base.candidate.digest)
    flow.audit(first, adapter=a.update_id)
    flow.promote(first)
    b = flow.deploy("adapter", base.candidate.digest)
    second = flow.propose("memory", base=base.candidate.digest)
    flow.audit(second, adapter=b.update_id)
    flow.promote(second)
    with pytest.raises(
        AppendRefused,
        match=f"was judged through adapter {a.update_id}, but deployment 'default' runs adapter {b.update_id}",
    ):
        flow.rollback(first)
    assert _deployed(flow.ledger)["memory"] == second.update_id


def test_a_memory_update_is_promoted_only_onto_the_store_it_changes(flow) -> None:
    """A memory update judged as a change of another store than the deployed one (one that already held
    what it plants, or one a later promotion replaced) is not promoted: its diff is not what would deploy."""
    base = flow.deploy()
    first = flow.deploy("memory", base.candidate.digest)
    elsewhere = flow.propose("memory", base=base.candidate.digest, memory_old="sha256:" + "d" * 64)
    flow.audit(elsewhere)
    refused = f"memory update {elsewhere.update_id} changes the store sha256:dddddddddddd…, but deployment 'default' runs memory update {first.update_id}"
    with pytest.raises(AppendRefused, match=refused):
        flow.promote(elsewhere)
    onto = flow.propose("memory", base=base.candidate.digest)  # changes the deployed store
    flow.audit(onto)
    assert flow.promote(onto).type == "promotion.done"
    assert _problems(flow.ledger) == []


def test_a_memory_judged_on_the_base_alone_is_not_promoted_beside_an_adapter(flow) -> None:
    base = flow.deploy()
    memory = flow.propose("memory", base=base.candidate.digest)
    flow.audit(memory, adapter=None)
    legacy = flow.propose("memory", base=base.candidate.digest)
    flow.audit(legacy)  # recorded before audits said what the model ran as: not checked, as before
    a = flow.deploy("adapter", base.candidate.digest)
    with pytest.raises(
        AppendRefused, match="was judged through the base alone, but deployment 'default' runs"
    ):
        flow.promote(memory)
    assert flow.promote(legacy).type == "promotion.done"
    again = flow.propose("memory", base=base.candidate.digest, again=memory)
    flow.audit(again, adapter=a.update_id)
    assert flow.promote(again).type == "promotion.done"
    assert _problems(flow.ledger) == []


def test_an_audit_names_only_an_adapter_of_its_own_deployment_for_a_memory_update(flow) -> None:
    base = flow.deploy()
    other = flow.propose("adapter", base=base.candidate.digest, deployment="tenant-b")
    memory = flow.propose("memory", base=base.candidate.digest)
    with pytest.raises(
        AppendRefused, match=f"{other.update_id} is not an adapter update of deployment 'default'"
    ):
        flow.audit(memory, adapter=other.update_id)
    with pytest.raises(AppendRefused, match=f"{base.update_id} is not an adapter update"):
        flow.audit(memory, adapter=base.update_id)
    adapter = flow.propose("adapter", base=base.candidate.digest)
    with pytest.raises(AppendRefused, match="is not a memory update; it is not judged through an adapter"):
        flow.audit(adapter, adapter=adapter.update_id)


def test_promotion_must_name_what_it_replaces_and_its_slot(flow) -> None:
    base = flow.propose()
    flow.audit(base)
    wrong_slot = flow.promotion(base).model_copy(update={"slot": "adapter"})
    with pytest.raises(AppendRefused, match="slot 'adapter' is not update"):
        flow.ledger.append(wrong_slot, flow.keys["approver"], base.candidate.digest)
    with pytest.raises(AppendRefused, match="says it replaces"):
        flow.promote(base, replaced="0" * 16)


# --- policies -------------------------------------------------------------------------------------


def test_audits_must_cite_an_adopted_unretired_policy(flow) -> None:
    from clgate.ledger import PolicyRef, PolicyRetired

    p = flow.propose()
    stranger = PolicyRef(name="lax", digest="sha256:" + "1" * 64)
    with pytest.raises(AppendRefused, match=r"policy 'lax' .* was not adopted by an admin"):
        flow.audit(p, policy=stranger)
    flow.ledger.append(
        PolicyRetired(digest=flow.policy.digest, reason="superseded"), flow.keys["admin"], flow.policy.digest
    )
    with pytest.raises(AppendRefused, match="policy 'p1' was retired at entry"):
        flow.audit(p)


def test_an_audit_verdict_must_follow_from_its_findings(flow) -> None:
    p = flow.propose()
    record = flow.audit_record(p, "block").model_dump(mode="json") | {"verdict": "promote"}
    with pytest.raises(InputError, match="verdict promote does not follow from the findings"):
        flow.ledger.append(
            {"type": "audit.completed", "subject": p.candidate.digest, "body": record}, flow.keys["gate"]
        )


# --- keys: one admin cannot mint the others -------------------------------------------------------


def test_with_a_key_quorum_one_admin_cannot_mint_a_key(db_url: str, keys) -> None:
    trust = Trust(
        key_quorum=2,
        keys=[TrustedKey.of(keys[n].public_key(), ["admin"], n) for n in ("admin", "admin2")]
        + [TrustedKey.of(keys["pipeline"].public_key(), ["pipeline"], "pipeline")],
    )
    minted = generate_key()
    kid = key_id(minted.public_key())
    body = KeyAdded(
        key_id=kid, public_key=public_key_b64(minted.public_key()), roles=["approver"], name="mint"
    )
    with Ledger.init(db_url, keys["admin"], trust) as led:
        led.append(body, keys["admin"], kid)
        with pytest.raises(AppendRefused, match="signed by unknown key"):
            led.append({"type": "note", "body": {"text": "as approver"}}, minted)
        with pytest.raises(AppendRefused, match="this admin already signed this key addition"):
            led.append(body, keys["admin"], kid)
        led.append(body, keys["admin2"], kid)
        assert led.append({"type": "note", "body": {"text": "now in effect"}}, minted).index == 5
        assert led.verify() == []


def _two_admins_and_a_key_to_mint(keys) -> tuple[Trust, Ed25519PrivateKey, KeyAdded]:
    """A trust file of two admins with a quorum of 2, and the addition of an approver key one would mint."""
    trust = Trust(
        key_quorum=2, keys=[TrustedKey.of(keys[n].public_key(), ["admin"], n) for n in ("admin", "admin2")]
    )
    minted = generate_key()
    body = KeyAdded(
        key_id=key_id(minted.public_key()),
        public_key=public_key_b64(minted.public_key()),
        roles=["approver"],
        name="mint",
    )
    return trust, minted, body


def test_an_admin_revoked_since_co_signing_an_addition_no_longer_counts_towards_its_quorum(
    db_url: str, keys
) -> None:
    trust, minted, body = _two_admins_and_a_key_to_mint(keys)
    kid = body.key_id
    gone = key_id(keys["admin2"].public_key())
    with Ledger.init(db_url, keys["admin"], trust) as led:
        led.append(body, keys["admin2"], kid)  # admin2 starts the addition, then leaves (or is found out)
        led.append(
            {"type": "key.revoked", "subject": gone, "body": {"key_id": gone, "reason": "left"}},
            keys["admin"],
        )
        led.append(body, keys["admin"], kid)  # the one admin left cannot complete it alone
        assert kid not in led.governance().ring.keys
        with pytest.raises(AppendRefused, match="signed by unknown key"):
            led.append({"type": "note", "body": {"text": "as approver"}}, minted)
        assert led.verify() == []


def test_one_admin_cannot_get_round_the_key_quorum_by_re_signing_the_trust_file(
    db_url: str, keys, tmp_path
) -> None:
    """The genesis entry records the trust file's quorum and every one of its keys: a copy one admin re-signed
    with quorum 1 still needs two admins per addition, one with a key of its own added as an anchor names that
    key, and a file that raises the quorum is stricter, not wrong; no later entry can record a quorum."""
    trust, minted, body = _two_admins_and_a_key_to_mint(keys)
    kid = body.key_id
    with Ledger.init(db_url, keys["admin"], trust) as led:
        bound = trust.bound_to(led.log_id())
    lowered = save_trust(bound.model_copy(update={"key_quorum": 1}), tmp_path / "lowered.toml", keys["admin"])
    anchored = bound.with_key(TrustedKey.of(minted.public_key(), ["approver"], "mint"))
    planted = save_trust(anchored, tmp_path / "planted.toml", keys["admin"])
    raised = save_trust(bound.model_copy(update={"key_quorum": 3}), tmp_path / "raised.toml", keys["admin"])
    never_added = (f"log: trust-file key mint ({kid[:16]}) was never added by this ledger: one admin re-signed "
                   "the file with a key of its own")  # fmt: skip
    with Ledger.open(db_url, load_trust(planted)) as led:
        assert _problems(led) == [never_added]
        led.append(body, keys["admin"], kid)  # and records it: one signature no longer makes it added
        assert _problems(led) == [never_added]
    with Ledger.open(db_url, load_trust(raised)) as led:
        assert _problems(led) == []
    with Ledger.open(db_url, load_trust(lowered)) as led:
        assert _problems(led) == [
            "log: the trust file says key_quorum = 1, but the log recorded 2 at its genesis: the file was "
            "re-signed with a lower quorum"
        ]
        with pytest.raises(AppendRefused, match="this admin already signed this key addition"):
            led.append(body, keys["admin"], kid)  # its signature above is pending
        assert kid not in led.governance().ring.keys  # pending: a second admin must sign it
        once_more = KeyAdded(**{**body.model_dump(), "name": "other", "key_quorum": 1})
        with pytest.raises(AppendRefused, match="only the genesis entry records the key quorum, its anchors"):
            led.append(once_more, keys["admin"], kid)


def test_a_key_only_the_trust_file_lists_signs_nothing(db_url: str, keys, tmp_path) -> None:
    """One admin re-signed the trust file with a second admin key of its own, revoked "at" an entry far ahead
    so `verify` passed over it, and co-signed with it what the key quorum must sign: a key this ledger never
    added signs nothing, and an entry forced in with it is named."""
    trust, _, body = _two_admins_and_a_key_to_mint(keys)
    phantom = generate_key()
    pid = key_id(phantom.public_key())
    with Ledger.init(db_url, keys["admin"], trust) as led:
        bound = trust.bound_to(led.log_id())
    planted = bound.with_key(TrustedKey.of(phantom.public_key(), ["admin", "witness"], "phantom"))
    evil = load_trust(save_trust(planted.with_revocation(pid, 10**9), tmp_path / "evil.toml", keys["admin"]))
    with Ledger.open(db_url, evil) as led:
        assert _problems(led) == []
        led.append(body, keys["admin"], body.key_id)
        with pytest.raises(
            AppendRefused, match=r"phantom .* only the trust file lists: this ledger never added it"
        ):
            led.append(body, phantom, body.key_id)
        assert body.key_id not in led.governance().ring.keys  # still pending: one admin signed it
        assert pid not in led.governance().ring.keys_with("witness", len(led))
        forced = Flow.__new__(Flow)
        forced.ledger, forced.keys = led, {"phantom": phantom}
        index = forced.force(body, "phantom", body.key_id)
        assert _problems(led) == [
            f"entry {index}: signed by key phantom ({pid[:16]}), which only the trust file lists: this ledger "
            "never added it"
        ]
        assert body.key_id not in replay(led.entries(), evil).governance.ring.keys


def test_a_genesis_records_the_anchors_it_claims_and_nothing_else(db_url: str, keys, tmp_path) -> None:
    """A genesis claiming more anchors than it recorded kept a window open in which one admin recorded, alone,
    a key put in the trust file later. The batch after the genesis holds only the genesis key's recordings of
    trust-file keys: nothing else fits in, and a key slipped in at genesis is named by every verifier whose
    trust file does not list it."""
    from clgate.ledger.store import Store

    trust, minted, body = _two_admins_and_a_key_to_mint(keys)
    admin2 = next(k for k in trust.keys if k.name == "admin2")
    admin = next(k for k in trust.keys if k.name == "admin")
    claims = {"key_quorum": 2, "anchors": 2, "policy_quorum": True}  # one anchor (admin2) follows it, not two
    led = Ledger(Store.open(db_url, create=True), trust)
    led.append_many(
        [EntryDraft(type="key.added", subject=k.key_id, body=k.model_dump() | extra)
         for k, extra in ((admin, claims), (admin2, {}))],
        keys["admin"],
    )  # fmt: skip
    note = {"type": "note", "body": {"text": "the first entry after the genesis batch"}}
    with pytest.raises(AppendRefused, match="inside the genesis batch of 2 trust-file keys, an entry that"):
        led.append(note, keys["admin2"])
    with pytest.raises(AppendRefused, match="inside the genesis batch"):
        led.append(body, keys["admin"], body.key_id)  # not a trust-file key: it needs the quorum, later
    planted = trust.with_key(TrustedKey.of(minted.public_key(), ["approver"], "mint"))
    evil = Ledger(led.store, planted)
    evil.append(body, keys["admin"], body.key_id)  # the window filled by a key the real file lacks...
    assert evil.verify() == []
    with Ledger.open(db_url, trust) as honest:  # ...which every holder of the real file sees
        assert _problems(honest) == [
            "entry 2: inside the genesis batch of 2 trust-file keys, an entry that does not record one of them: "
            "the genesis claims anchors it did not record, or the trust file is not this log's"
        ]
    led.close()


def test_an_admin_anchor_with_more_roles_signs_under_a_quorum(db_url: str, keys, tmp_path) -> None:
    """The genesis recorded its admin as "admin" only; a trust file giving it a witness role too, under a key
    quorum of 2, left it pending, and a key the ledger never recorded signs nothing: the admin could sign
    nothing. The genesis records the anchor's roles, and a genesis recording fewer still records its signer."""
    from clgate.ledger.store import Store

    trust = Trust(key_quorum=2, keys=[TrustedKey.of(keys["admin"].public_key(), ["admin", "witness"], "admin"),
                                      TrustedKey.of(keys["admin2"].public_key(), ["admin"], "admin2")])  # fmt: skip
    text = canonical_json({"name": "p"}).decode()
    note = PolicyAdopted(name="p", digest=policy_text_digest(text), text=text)  # an admin's to sign (pending)
    with Ledger.init(db_url, keys["admin"], trust) as led:
        led.append(note, keys["admin"], note.digest)
        assert led.verify() == [] and led.governance().ring.has_role(
            key_id(keys["admin"].public_key()), "witness", 2
        )
    older = tmp_path / "older.db"  # as `Ledger.init` wrote it before: the genesis says "admin" alone
    admin, admin2 = trust.keys
    led = Ledger(Store.open(older, create=True), trust)
    genesis = admin.model_dump() | {"roles": ["admin"], "key_quorum": 2, "anchors": 1, "policy_quorum": True}
    led.append_many([EntryDraft(type="key.added", subject=k["key_id"], body=k) for k in (genesis, admin2.model_dump())],
                    keys["admin"])  # fmt: skip
    led.append(note, keys["admin"], note.digest)
    assert led.verify() == []
    led.close()


def test_a_trust_file_lists_each_key_once(keys, tmp_path) -> None:
    """A key listed twice with two sets of roles was recorded twice in the genesis batch; it is bad input."""
    twice = Trust(keys=[TrustedKey.of(keys["admin"].public_key(), ["admin"], "admin")]).to_toml() + "\n".join(
        ["[[keys]]", 'name = "again"', f'public_key = "{public_key_b64(keys["admin"].public_key())}"',
         'roles = ["gate"]', ""]
    )  # fmt: skip
    (tmp_path / "twice.toml").write_text(twice)
    with pytest.raises(InputError, match="is listed twice; list each key once with all its roles"):
        load_trust(tmp_path / "twice.toml", signed=False)


def test_names_identify_one_active_key(ledger, keys) -> None:
    other = generate_key()
    kid = key_id(other.public_key())
    body = KeyAdded(
        key_id=kid, public_key=public_key_b64(other.public_key()), roles=["approver"], name="approver"
    )
    with pytest.raises(AppendRefused, match="name 'approver' is already held by key"):
        ledger.append(body, keys["admin"], kid)


# --- truncation and rollback of the database ------------------------------------------------------


def test_a_truncated_database_is_refused_by_every_verifier_that_saw_more(
    db_url, keys, trust, tmp_path
) -> None:
    seen = SeenHeads(tmp_path / "heads")
    with Ledger.init(db_url, keys["admin"], trust) as led:
        pipeline = key_id(keys["pipeline"].public_key())
        revocation = led.append(
            {"type": "key.revoked", "subject": pipeline, "body": {"key_id": pipeline}}, keys["admin"]
        )
        led.append({"type": "note", "body": {"text": "after"}}, keys["gate"])
        assert led.verify(seen=seen) == []
        truncate(led, revocation.index)
        assert led.verify() == []  # what is left is internally consistent...
        assert _problems(led, seen=seen) == [  # ...but this verifier saw more
            "log: log shrank from 9 to 7 entries since this verifier last verified it: "
            "entries were deleted (truncation or rollback of the database)"
        ]
        led.append({"type": "note", "body": {"text": "the revoked key is back"}}, keys["pipeline"])
        remembered = trust.with_revocation(pipeline, revocation.index)
        assert any("revoked at entry 7" in p for p in map(str, led.verify(remembered)))


def test_a_catch_up_refused_halfway_leaves_the_state_as_it_was(flow, db_url, trust) -> None:
    """Another process appended a proposal, then a rogue client forced in an entry the rules refuse: this
    process's catch-up stops there, every time, naming that entry (it had kept the proposal and then
    blamed it as "changed since this process read it")."""
    flow.ledger.governance()
    proposal = flow.proposal()
    with Ledger.open(db_url, trust) as other:
        other.append(proposal, flow.keys["pipeline"], proposal.candidate.digest)
    forced = flow.force(REFUSED_PROMOTION, "approver", REFUSED_PROMOTION["subject"])
    for _ in range(2):
        with pytest.raises(IntegrityError, match=f"entry {forced} breaks the ledger's rules"):
            flow.ledger.append({"type": "note", "body": {"text": "after"}}, flow.keys["gate"])


def test_the_verifier_state_is_not_a_way_to_damage_files(db_url, keys, trust, tmp_path) -> None:
    """A link planted as the state folder's lock pointed it at the trust file, which the next verify emptied
    (the lock was opened for writing); an unreadable head (a size of 1e999), or an empty --state (the working
    folder), is one line of bad input."""
    precious = tmp_path / "trust.toml"
    precious.write_text("anchors\n")
    state = tmp_path / "heads"
    state.mkdir()
    (state / ".lock").symlink_to(precious)
    with Ledger.init(db_url, keys["admin"], trust) as led:
        with pytest.raises(InputError, match="cannot open the lock file"):
            led.verify(seen=SeenHeads(state))
        assert precious.read_text() == "anchors\n"
        (state / ".lock").unlink()
        assert led.verify(seen=SeenHeads(state)) == []
        (state / f"{led.log_id()}.json").write_text('{"size": 1e999, "root": "00"}')
        with pytest.raises(InputError, match="unreadable verifier state"):
            led.verify(seen=SeenHeads(state))
    with pytest.raises(InputError, match="state folder is empty"):
        SeenHeads("")


def test_a_forked_database_is_refused(db_url, keys, trust, tmp_path) -> None:
    """A database writer cut the log back after a process read it: that process signs nothing onto the cut
    log (it would extend a fork that left out entries its rules counted, and a fresh verifier would see
    nothing wrong); a verifier that saw the original names the fork another process wrote."""
    seen = SeenHeads(tmp_path / "heads")
    with Ledger.init(db_url, keys["admin"], trust) as led:
        led.append({"type": "note", "body": {"text": "original"}}, keys["gate"])
        assert led.verify(seen=seen) == []
        truncate(led, 7)
        with pytest.raises(IntegrityError, match="head \\(size 7\\) is not the 8 entries this process read"):
            led.append({"type": "note", "body": {"text": "rewritten"}}, keys["gate"])
        with Ledger.open(db_url, trust) as other:
            other.append({"type": "note", "body": {"text": "rewritten"}}, keys["gate"])
        with pytest.raises(IntegrityError, match="entries were removed or rewritten"):
            led.append({"type": "note", "body": {"text": "after"}}, keys["gate"])  # same size, other entry
        assert any("log forked" in p for p in _problems(led, seen=seen))


def test_a_database_emptied_under_a_trust_file_bound_to_it_is_refused(db_url, keys, trust) -> None:
    """Every entry deleted, a verifier that kept no head saw "ok: 0 entries", and the next key addition
    wrote a new genesis; the trust file, bound to the log at its genesis, proves the log had entries."""
    with Ledger.init(db_url, keys["admin"], trust) as led:
        bound = trust.bound_to(led.log_id())
        truncate(led, 0)
        assert _problems(led) == []  # an unbound file cannot tell
        assert _problems(led, trust=bound) == [
            f"log: the trust file belongs to log {bound.log_id[:16]}…, but this ledger is empty: its entries "
            "were removed"
        ]


def test_revocation_remembered_by_the_trust_file_survives_truncation(db_url, keys, trust) -> None:
    with Ledger.init(db_url, keys["admin"], trust) as led:
        pipeline = key_id(keys["pipeline"].public_key())
        entry = led.append(
            {"type": "key.revoked", "subject": pipeline, "body": {"key_id": pipeline}}, keys["admin"]
        )
        truncate(led, entry.index)
    with (
        Ledger.open(db_url, trust.with_revocation(pipeline, entry.index)) as led,
        pytest.raises(AppendRefused, match="revoked at entry 7"),
    ):
        led.append({"type": "note", "body": {"text": "back"}}, keys["pipeline"])


# --- the trust file -------------------------------------------------------------------------------


def test_trust_file_is_signed_bound_and_checked(tmp_path: Path, db_url, keys, trust) -> None:
    path = tmp_path / "trust.toml"
    with Ledger.init(db_url, keys["admin"], trust) as led:
        save_trust(trust.bound_to(led.log_id()), path, keys["admin"])
        loaded = load_trust(path)
        assert loaded.log_id == led.log_id() and loaded.fingerprint.startswith("sha256:")
        assert led.verify(loaded) == []
    path.write_text(path.read_text().replace('roles = ["approver"]', 'roles = ["admin"]', 1))
    with pytest.raises(InputError, match="signature does not verify"):
        load_trust(path)
    unsigned = tmp_path / "unsigned.toml"
    unsigned.write_text(trust.to_toml())
    with pytest.raises(InputError, match="not signed"):
        load_trust(unsigned)
    with pytest.raises(InputError, match="signed by one of its own"):
        trust.sign(keys["pipeline"])
    with pytest.raises(InputError, match="already bound to log"):
        Ledger.init(tmp_path / "second.db", keys["admin"], loaded)


def test_a_trust_file_for_another_log_or_signed_by_an_outside_admin_is_flagged(
    db_url, keys, trust, tmp_path
) -> None:
    with Ledger.init(db_url, keys["admin"], trust) as led:
        assert any("belongs to log" in str(p) for p in led.verify(trust.bound_to("a" * 64)))
        rogue = trust.with_key(TrustedKey.of(keys["outsider"].public_key(), ["admin"], "rogue")).sign(
            keys["outsider"]
        )
        assert any("not an admin of this ledger" in str(p) for p in led.verify(rogue))


# --- witnesses ------------------------------------------------------------------------------------


def test_policy_requiring_witnesses_needs_a_cosigned_checkpoint_of_this_log(flow, keys) -> None:
    p = flow.propose()
    audit = flow.audit(p, witnesses={"required": 1, "names": ["witness"]})
    with pytest.raises(AppendRefused, match=r"needs a checkpoint after entry .* cosigned by 1 witness"):
        flow.promote(p)
    note = flow.ledger.checkpoint(keys["gate"])
    with pytest.raises(AppendRefused, match="the checkpoint has 0"):
        flow.promote(p, checkpoint=note.to_text())
    by_outsider = cosign(note, keys["outsider"], "witness")
    with pytest.raises(AppendRefused, match="the checkpoint has 0"):
        flow.promote(p, checkpoint=by_outsider.to_text())
    forged = cosign(
        sign_checkpoint(flow.ledger.log_id(), note.size, b"\x01" * 32, keys["gate"]),
        keys["witness"],
        "witness",
    )
    with pytest.raises(AppendRefused, match=r"the promotion's checkpoint \(size .*\) is not this log's"):
        flow.promote(p, checkpoint=forged.to_text())
    witnessed = cosign(note, keys["witness"], "witness")
    assert witnessed.size > audit.index
    flow.ledger.add_cosignature(witnessed)
    assert flow.promote(p, checkpoint=witnessed.to_text()).type == "promotion.done"
    assert _problems(flow.ledger) == []
    forced = flow.force(flow.promotion(flow.propose()), "approver", "sha256:" + "0" * 64)
    assert any(f"entry {forced}" in problem for problem in _problems(flow.ledger))


def test_a_malformed_checkpoint_in_a_promotion_is_refused_and_flagged_not_raised(flow) -> None:
    """Also where the policy needs no witnesses: replay parses every cited checkpoint for its root."""
    base = flow.propose()
    flow.audit(base)
    malformed = "the promotion's checkpoint is malformed: not a checkpoint note"
    with pytest.raises(AppendRefused, match=malformed):
        flow.promote(base, checkpoint="junk")
    forced = flow.force(flow.promotion(base, checkpoint="junk"), "approver", base.candidate.digest)
    assert any(p.startswith(f"entry {forced}: {malformed}") for p in _problems(flow.ledger))


def test_checkpoints_are_c2sp_notes_signed_by_a_gate_key(flow, keys) -> None:
    note = flow.ledger.checkpoint(keys["gate"])
    text = note.to_text()
    origin, size, _root, blank, signature = text.split("\n")[:5]
    assert (
        origin == f"clgate.dev/ledger/{flow.ledger.log_id()}"
        and int(size) == len(flow.ledger)
        and blank == ""
    )
    assert signature.startswith(f"\u2014 {origin} ")
    with pytest.raises(AppendRefused, match="checkpoints are signed by a gate key"):
        flow.ledger.checkpoint(keys["admin"])
    assert flow.ledger.checkpoint(keys["gate"]).to_text() == text  # signed again: the same bytes, kept once
    assert len(flow.ledger.store.checkpoints()) == 1


# --- a gate or auditor key records a scheduled run no report can read, or one that says nothing ---------


def test_a_scheduled_run_is_typed_and_judged_like_an_audit(flow) -> None:
    """One run with a malformed body made every later compliance report, erasure and dashboard fail on a
    ledger that verified; a clean verdict beside a failing finding made a report count a clean run."""
    flow.deploy()
    run = {"type": "audit.scheduled_run", "body": {"verdict": "promote", "measurements": "abc"}}
    with pytest.raises(InputError, match="measurements"):
        flow.ledger.append(run, flow.keys["gate"])
    forced = flow.force(EntryDraft.model_construct(**run, subject=None), "gate", None)  # validating nothing
    assert any(p.startswith(f"entry {forced}: ") and "measurements" in p for p in _problems(flow.ledger))
    truncate(flow.ledger, forced)
    fail = {"rule": "deployed-integrity", "check": "integrity", "status": "fail", "reason": "weights changed"}
    lying = {"type": "audit.scheduled_run", "body": {"verdict": "promote", "findings": [fail]}}
    with pytest.raises(InputError, match="verdict promote does not follow from the findings"):
        flow.ledger.append(lying, flow.keys["auditor"])
    honest = flow.ledger.append(
        {
            "type": "audit.scheduled_run",
            "body": {"verdict": "block", "findings": [fail], "policy": flow.policy.model_dump()},
        },
        flow.keys["gate"],
    )
    assert _problems(flow.ledger) == []
    ((index, recorded),) = replay(flow.ledger.entries(), flow.ledger.trust).scheduled_runs
    assert index == honest.index and recorded.findings[0].reason == "weights changed"


# --- erasure: one auditor key deletes evidence that is not its erasure's ----------------------------------


def test_an_erasure_names_a_deployment_that_ran_something_and_removes_only_its_evidence(flow) -> None:
    """A request for a deployment nobody proposed anything to found nothing, so its `done` was accepted at
    once, listing any digests: the record then called another deployment's deleted evidence an erasure. A
    measurement is its first recorder's: an auditor key that cited another deployment's digest in a scheduled
    run of its own made that deployment's evidence look lawfully erased."""
    from clgate.ledger import ErasureDone, ErasureRequest, ScheduledRun

    flow.deploy()
    other = flow.propose(deployment="tenant-b")
    theirs = "sha256:" + "ab" * 32
    flow.ledger.append(flow.audit_record(p=other).model_copy(update={"measurements": {"weights": theirs}}),
                       flow.keys["gate"], other.candidate.digest)  # fmt: skip
    request = dict(matcher="subject", matcher_digest="sha256:" + "cd" * 32, salt="ef" * 16, nonce="01" * 8)
    nowhere = ErasureRequest.of(deployment="prod", **request)
    with pytest.raises(AppendRefused, match="deployment 'prod' was never proposed anything"):
        flow.ledger.append(nowhere, flow.keys["auditor"], nowhere.request_id)
    mine = ErasureRequest.of(deployment="default", **request)
    flow.ledger.append(mine, flow.keys["auditor"], mine.request_id)
    done = ErasureDone(request_id=mine.request_id, entries_scanned=0, evidence_removed=[theirs])
    with pytest.raises(AppendRefused, match="is evidence of deployment\\(s\\) tenant-b, not of 'default'"):
        flow.ledger.append(done, flow.keys["auditor"], mine.request_id)
    ours = "sha256:" + "12" * 32
    run = {"verdict": "promote", "measurements": {"weights": theirs, "drift": ours}, "policy": flow.policy}
    flow.ledger.append(ScheduledRun(**run), flow.keys["auditor"])  # cites tenant-b's digest as its own
    with pytest.raises(AppendRefused, match="is evidence of deployment\\(s\\) tenant-b, not of 'default'"):
        flow.ledger.append(done, flow.keys["auditor"], mine.request_id)
    unrecorded = "sha256:" + "34" * 32  # a broken gate's: no entry records it
    flow.ledger.append(done.model_copy(update={"evidence_removed": [ours, unrecorded]}), flow.keys["auditor"],
                       mine.request_id)  # fmt: skip
    assert _problems(flow.ledger) == []


# a promotion of an update nobody proposed: refused whoever signs it, after the entries before it in a batch
REFUSED_PROMOTION = {"type": "promotion.done", "subject": "sha256:" + "0" * 64,
                     "body": {"update_id": "0" * 16, "slot": "base"}}  # fmt: skip


def test_a_refused_batch_leaves_the_scheduled_runs_as_they_were(flow) -> None:
    """Appends change a fork of the state that shares its runs (copying a year of them at every append made
    each slower): a batch refused after its first run leaves no run behind, and the next run is kept."""
    run = {"type": "audit.scheduled_run", "body": {"verdict": "promote", "policy": flow.policy.model_dump()}}
    first = flow.ledger.append(run, flow.keys["gate"])
    refused = REFUSED_PROMOTION
    with pytest.raises(AppendRefused):
        flow.ledger.append_many([run, refused], flow.keys["gate"])
    assert [i for i, _ in flow.ledger.governance().scheduled_runs] == [first.index]
    second = flow.ledger.append(run, flow.keys["gate"])
    assert [i for i, _ in flow.ledger.governance().scheduled_runs] == [first.index, second.index]
    assert [i for i, _ in replay(flow.ledger.entries(), flow.ledger.trust).scheduled_runs] == [
        first.index,
        second.index,
    ]


def test_a_refused_batch_of_notes_leaves_the_state_where_the_log_is(flow, db_url, trust) -> None:
    """A batch's notes moved the live state's size before its last entry was refused: the entry another
    process then appended at that index was skipped by this one's catch-up, its rules never applied."""
    note = {"type": "note", "body": {"text": "n"}}
    refused = REFUSED_PROMOTION
    with pytest.raises(AppendRefused):
        flow.ledger.append_many([note, refused], flow.keys["gate"])
    assert flow.ledger.governance().size == len(flow.ledger)
    from clgate.ledger import PolicyAdopted
    from clgate.ledger.canonical import canonical_json
    from clgate.ledger.entries import policy_text_digest

    text = canonical_json({"name": "other"}).decode()
    digest = policy_text_digest(text)
    with Ledger.open(db_url, trust) as other:  # another process adopts a policy
        other.append(PolicyAdopted(name="other", digest=digest, text=text), flow.keys["admin"], digest)
    assert digest in flow.ledger.governance().policies


def test_an_erasure_request_is_withdrawn_only_by_the_admin_quorum(db_url: str, keys) -> None:
    """An over-broad request listed every update it could not read back as trained on the data, and none could
    ever be rolled back to again, with no way to take the request back. A withdrawal needs the key quorum
    of admins, so no single key can undo an erasure."""
    from clgate.ledger import ErasureDone, ErasureRequest, ErasureWithdrawn, TrainedOn

    roles = {"admin": "admin", "admin2": "admin", "pipeline": "pipeline", "gate": "gate", "approver": "approver",
             "auditor": "auditor"}  # fmt: skip
    trust = Trust(key_quorum=2, keys=[TrustedKey.of(keys[n].public_key(), [r], n) for n, r in roles.items()])
    with Ledger.init(db_url, keys["admin"], trust) as led:
        flow = Flow(led, keys)
        old, _ = flow.deploy(), flow.deploy()
        trained = TrainedOn(update_id=old.update_id, data_digest="sha256:" + "ab" * 32, records=[2])
        request = ErasureRequest.of(deployment="default", matcher="pattern", matcher_digest="sha256:" + "cd" * 32,
                                    salt="ef" * 16, nonce="01" * 8, trained_on=[trained])  # fmt: skip
        rid = request.request_id
        led.append(request, keys["auditor"], rid)
        with pytest.raises(AppendRefused, match=f"trained on data erased by request {rid}"):
            flow.rollback(old)
        withdrawal = ErasureWithdrawn(request_id=rid, reason="the pattern matched everyone")
        with pytest.raises(AppendRefused, match=r"may not sign erasure\.withdrawn"):
            led.append(withdrawal, keys["auditor"], rid)
        led.append(withdrawal, keys["admin"], rid)
        with pytest.raises(AppendRefused, match="this admin already signed the withdrawal"):
            led.append(withdrawal, keys["admin"], rid)
        with pytest.raises(AppendRefused, match=f"trained on data erased by request {rid}"):
            flow.rollback(old)  # one admin of two: still in force
        completed = led.append(withdrawal, keys["admin2"], rid)
        assert led.governance().erasures[rid].withdrawn_index == completed.index
        flow.rollback(old)
        done = ErasureDone(request_id=rid, entries_scanned=0)
        with pytest.raises(
            AppendRefused, match=f"erasure request {rid} was withdrawn at entry {completed.index}"
        ):
            led.append(done, keys["auditor"], rid)
        assert led.verify() == []


def test_a_policy_adopted_for_some_deployments_judges_only_theirs(flow) -> None:
    """A gate key cited the lax policy an admin adopted for a sandbox to wave a production update, or a
    production run, through; the ledger holds each audit and scheduled run to its policy's deployments."""
    from clgate.ledger import ScheduledRun

    sandbox = flow.adopt("sandbox", deployments=["sandbox"])
    p = flow.propose()  # of deployment "default"
    with pytest.raises(
        AppendRefused, match=r"policy 'sandbox' was adopted for deployment\(s\) sandbox only, not 'default'"
    ):
        flow.audit(p, policy=sandbox)
    run = ScheduledRun(verdict="promote", deployment="default", policy=sandbox)
    with pytest.raises(AppendRefused, match="not 'default'"):
        flow.ledger.append(run, flow.keys["gate"])
    flow.propose(deployment="sandbox")
    flow.ledger.append(
        ScheduledRun(verdict="promote", deployment="sandbox", policy=sandbox), flow.keys["gate"]
    )
    flow.audit(p, policy=flow.adopt("both", deployments=["default", "sandbox"]))
    assert not _problems(flow.ledger)
    q = flow.propose()
    forced = flow.force(flow.audit_record(q, policy=sandbox), "gate", q.candidate.digest)
    assert f"entry {forced}: policy 'sandbox' was adopted for" in _problems(flow.ledger)[0]


def test_a_scheduled_run_is_of_a_known_deployment_under_an_adopted_policy(flow) -> None:
    """A gate or auditor key recorded clean monitoring runs judged by nothing adopted (a retired policy, one
    nobody adopted, or none), or of a deployment nobody runs: in a log made now each is refused, as an audit."""
    from clgate.ledger import ScheduledRun

    flow.deploy()
    ghost = PolicyRef(name="ghost", digest="sha256:" + "ee" * 32)
    retired = flow.adopt("old")
    flow.ledger.append(
        PolicyRetired(digest=retired.digest, reason="superseded"), flow.keys["admin"], retired.digest
    )
    refused = {
        "a scheduled run names the adopted policy it was judged by": ScheduledRun(verdict="promote"),
        "policy 'ghost' .* was not adopted by an admin": ScheduledRun(verdict="promote", policy=ghost),
        "policy 'old' was retired at entry": ScheduledRun(verdict="promote", policy=retired),
        "no deployment 'prod' was proposed anything": ScheduledRun(
            verdict="promote", deployment="prod", policy=flow.policy
        ),
    }
    for reason, run in refused.items():
        with pytest.raises(AppendRefused, match=reason):
            flow.ledger.append(run, flow.keys["auditor"])
    flow.ledger.append(ScheduledRun(verdict="promote", policy=flow.policy), flow.keys["auditor"])
    forced = flow.force(ScheduledRun(verdict="promote", policy=ghost), "gate", None)
    assert _problems(flow.ledger) == [
        f"entry {forced}: policy 'ghost' ({ghost.digest[:19]}…) was not adopted by an admin"
    ]


def test_with_a_key_quorum_one_admin_cannot_adopt_a_policy(db_url: str, keys) -> None:
    """One admin of two adopted a lax policy alone, or re-adopted a scoped one for every deployment: a policy
    is as much power as a key, so in a log made now its adoption needs the key quorum too."""
    roles = {"admin": "admin", "admin2": "admin", "pipeline": "pipeline", "gate": "gate"}
    trust = Trust(key_quorum=2, keys=[TrustedKey.of(keys[n].public_key(), [r], n) for n, r in roles.items()])
    with Ledger.init(db_url, keys["admin"], trust) as led:
        flow = Flow(led, keys)  # its policy co-signed by both admins
        text = canonical_json({"name": "lax"}).decode()
        digest = policy_text_digest(text)
        lax = PolicyAdopted(name="lax", digest=digest, text=text)
        led.append(lax, keys["admin"], digest)
        p = flow.propose()
        with pytest.raises(AppendRefused, match=r"'lax' .* is adopted by 1 of the 2 admins it needs"):
            flow.audit(p, policy=PolicyRef(name="lax", digest=digest))
        with pytest.raises(AppendRefused, match="this admin already signed this policy's adoption"):
            led.append(lax, keys["admin"], digest)
        narrower = PolicyAdopted(name="lax", digest=digest, text=text, deployments=["sandbox"])
        renamed = PolicyAdopted(name="strict", digest=digest, text=text)  # the last co-signer named it
        for other in (narrower, renamed):
            with pytest.raises(
                AppendRefused, match="awaits co-signatures of its adoption as 'lax' for every"
            ):
                led.append(other, keys["admin2"], digest)
        led.append(PolicyRetired(digest=digest, reason="called off"), keys["admin2"], digest)  # one admin may
        assert digest not in led.governance().adoptions and digest not in led.governance().policies
        led.append(narrower, keys["admin"], digest)
        led.append(narrower, keys["admin2"], digest)
        adopted = led.governance().policies[digest]
        assert adopted.deployments == {"sandbox"}
        # a third signature (a newer trust file asking a larger quorum) changes nothing, so both files verify
        led.append(narrower, keys["admin"], digest)
        assert led.governance().policies[digest].adopted_index == adopted.adopted_index
        with pytest.raises(AppendRefused, match="was already adopted at entry"):
            led.append(lax, keys["admin"], digest)
        flow.audit(p, policy=flow.policy)
        assert led.verify() == []


def test_a_revoked_admins_adoption_no_longer_counts(db_url: str, keys) -> None:
    roles = {"admin": "admin", "admin2": "admin", "outsider": "admin"}
    trust = Trust(key_quorum=2, keys=[TrustedKey.of(keys[n].public_key(), [r], n) for n, r in roles.items()])
    with Ledger.init(db_url, keys["admin"], trust) as led:
        text = canonical_json({"name": "p"}).decode()
        digest = policy_text_digest(text)
        body = PolicyAdopted(name="p", digest=digest, text=text)
        led.append(body, keys["admin2"], digest)  # admin2 signs, then leaves
        gone = key_id(keys["admin2"].public_key())
        led.append(
            {"type": "key.revoked", "subject": gone, "body": {"key_id": gone, "reason": "left"}},
            keys["admin"],
        )
        led.append(body, keys["admin"], digest)
        governance = led.governance()
        assert digest not in governance.policies
        assert governance.adoptions[digest].progress(governance.ring, governance.size) == (
            "adopted by 1 of the 2 admins it needs"
        )
        led.append(body, keys["outsider"], digest)
        assert digest in led.governance().policies


def test_a_log_made_before_policies_needed_the_quorum_still_lets_one_admin_adopt_one(
    tmp_path: Path, keys
) -> None:
    """Its genesis recorded no such rule: its single-admin adoptions (and the audits under them) still verify."""
    from clgate.ledger.log import _key_added
    from clgate.ledger.store import Store

    path = str(tmp_path / "old.db")
    Store.open(path, create=True)
    with Ledger.open(path, None) as led:  # a genesis as logs were made before: no policy_quorum
        led.append(_key_added(keys["admin"].public_key(), ["admin"], "admin"), keys["admin"])
    trust = Trust(
        key_quorum=2, keys=[TrustedKey.of(keys[n].public_key(), ["admin"], n) for n in ("admin", "admin2")]
    )
    text = canonical_json({"name": "old"}).decode()
    digest = policy_text_digest(text)
    with Ledger.open(path, trust) as led:
        led.append(PolicyAdopted(name="old", digest=digest, text=text), keys["admin"], digest)
        assert (led.governance().ring.quorum, digest in led.governance().policies) == (2, True)
        assert led.verify() == []
    # a trust file that asks it holds the log to it, whatever its maker wrote at its genesis
    asking = trust.model_copy(update={"policy_quorum": True})
    with Ledger.open(path, asking) as led:
        assert led.governance().ring.adopting_quorum == 2
        assert digest not in led.governance().policies and digest in led.governance().adoptions
    with pytest.raises(ValueError, match="policy_quorum"):
        Trust(key_quorum=2, policy_quorum=1)
