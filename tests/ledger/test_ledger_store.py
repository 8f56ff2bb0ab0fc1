"""The storage suite, on SQLite and on a throwaway PostgreSQL: appends, roles, proofs, attacks."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from clgate.errors import InputError
from clgate.ledger import (
    AppendRefused,
    Ledger,
    generate_key,
    key_id,
    merkle,
    save_private_key,
    sign_checkpoint,
)
from clgate.ledger.checkpoint import parse_checkpoint
from clgate.ledger.dsse import Envelope
from clgate.ledger.keys import public_key_b64

from .conftest import truncate

DIGEST = "sha256:" + "ab" * 32
G = 7  # entries `Ledger.init` writes: one key.added per anchor of the trust fixture


def _notes(ledger: Ledger, key, n: int) -> None:
    for i in range(n):
        ledger.append({"type": "note", "body": {"text": f"note {i}"}}, key)


def _sql(ledger: Ledger, statement: str, **params) -> None:
    with ledger.store.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _stored(ledger: Ledger, index: int) -> bytes:
    data = ledger.store.get(index)
    if data is None:
        pytest.fail(f"entry {index} is not in the store")
    return data


def _problems(ledger: Ledger, trust, **kw) -> list[str]:
    return [str(p) for p in ledger.verify(trust, **kw)]


def test_append_returns_the_stored_entry_and_chains_hashes(flow, keys, trust) -> None:
    ledger = flow.ledger  # the flow adopted a policy at entry G
    p = flow.proposal()
    proposed = ledger.append(p, keys["pipeline"], p.candidate.digest)
    audited = flow.audit(p)
    assert (proposed.index, audited.index) == (G + 1, G + 2)
    assert audited.payload.prev == proposed.entry_hash
    assert proposed.entry_hash == merkle.leaf_hash(_stored(ledger, G + 1)).hex()
    again = ledger.get(G + 2)
    assert (again.type, again.subject, again.body["verdict"], again.signer) == (
        "audit.completed",
        p.candidate.digest,
        "promote",
        key_id(keys["gate"].public_key()),
    )
    assert [e.index for e in ledger.find("audit.completed", subject=p.candidate.digest)] == [G + 2]
    assert len(ledger) == G + 3 and [e.index for e in ledger] == list(range(G + 3))
    assert ledger.verify(trust) == []


@pytest.mark.parametrize(
    ("signer", "entry", "message"),
    [
        (
            "pipeline",
            {"type": "promotion.approved", "subject": DIGEST, "body": {"update_id": "0" * 16}},
            "may not sign promotion.approved",
        ),
        (
            "auditor",
            {"type": "promotion.done", "subject": DIGEST, "body": {"update_id": "0" * 16, "slot": "base"}},
            r"needs approver\)",
        ),
        (
            "approver",
            {"type": "key.revoked", "subject": "0" * 64, "body": {"key_id": "0" * 64}},
            r"needs admin\)",
        ),
        ("outsider", {"type": "note", "body": {"text": "hi"}}, "signed by unknown key"),
    ],
)
def test_append_refuses_keys_without_the_role(
    ledger: Ledger, keys, signer: str, entry: dict, message: str
) -> None:
    with pytest.raises(AppendRefused, match=message):
        ledger.append(entry, keys[signer])
    assert len(ledger) == G and ledger.store.get(G) is None


def test_revoked_key_is_refused_from_then_on_and_rotation_works(ledger: Ledger, keys, trust) -> None:
    old_pipeline = keys["pipeline"]
    ledger.append({"type": "note", "body": {"text": "before"}}, old_pipeline)
    kid = key_id(old_pipeline.public_key())
    ledger.append(
        {"type": "key.revoked", "subject": kid, "body": {"key_id": kid, "reason": "rotated"}}, keys["admin"]
    )
    new = generate_key()
    new_id = key_id(new.public_key())
    body = {"key_id": new_id, "public_key": public_key_b64(new.public_key()), "roles": ["pipeline"]}
    ledger.append({"type": "key.added", "subject": new_id, "body": body}, keys["admin"])
    with pytest.raises(AppendRefused, match=f"revoked at entry {G + 1}"):
        ledger.append({"type": "note", "body": {"text": "after"}}, old_pipeline)
    ledger.append({"type": "note", "body": {"text": "after"}}, new)
    with pytest.raises(AppendRefused, match=f"was revoked at entry {G + 1}; it cannot return"):
        body = {"key_id": kid, "public_key": public_key_b64(old_pipeline.public_key()), "roles": ["pipeline"]}
        ledger.append({"type": "key.added", "subject": kid, "body": body}, keys["admin"])
    assert len(ledger) == G + 4
    assert ledger.verify(trust) == []
    # A second process that did not see the revocation still refuses: it replays key entries first.
    target = ledger.store.engine.url.render_as_string(hide_password=False)
    with Ledger.open(target, trust) as other, pytest.raises(AppendRefused, match="revoked"):
        other.append({"type": "note", "body": {"text": "late"}}, old_pipeline)


def test_append_many_writes_a_batch_in_order_in_one_go(ledger: Ledger, keys, trust) -> None:
    single = ledger.append({"type": "note", "body": {"text": "single"}}, keys["pipeline"])
    batch = ledger.append_many(
        [{"type": "note", "body": {"text": f"batch {i}"}} for i in range(5)], keys["pipeline"]
    )
    assert [e.index for e in batch] == list(range(G + 1, G + 6))
    stored = list(ledger.entries(G))
    assert [e.leaf for e in stored] == [single.leaf, *(e.leaf for e in batch)]
    assert [e.entry_hash for e in stored[1:]] == [e.entry_hash for e in batch]
    assert [e.payload for e in stored[1:]] == [e.payload for e in batch]
    assert batch[0].payload.prev == single.entry_hash
    assert all(b.payload.prev == a.entry_hash for a, b in itertools.pairwise(batch))
    assert ledger.append_many([], keys["pipeline"]) == []
    assert len(ledger) == G + 6 and ledger.verify(trust) == []


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (
            [{"type": "note", "body": {"text": "ok"}}, {"type": "note", "body": {"text": ""}}],
            r"invalid entry: note: body.text: String should have at least 1 character \(entry 1 of the batch\)",
        ),
        (
            [
                {"type": "note", "body": {"text": "ok"}},
                {
                    "type": "promotion.done",
                    "subject": DIGEST,
                    "body": {"update_id": "0" * 16, "slot": "base"},
                },
            ],
            r"refused: .* may not sign promotion.done .*\(entry 1 of the batch\)",
        ),
    ],
)
def test_append_many_is_all_or_nothing(ledger: Ledger, keys, trust, batch: list, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ledger.append_many(batch, keys["pipeline"])
    assert len(ledger) == G and ledger.store.get(G) is None


def test_append_many_replays_key_changes_within_the_batch_and_forgets_a_failed_one(
    ledger: Ledger, keys, trust
) -> None:
    late = generate_key()
    kid = key_id(late.public_key())
    added = {
        "type": "key.added",
        "subject": kid,
        "body": {"key_id": kid, "public_key": public_key_b64(late.public_key()), "roles": ["pipeline"]},
    }
    revoked = {"type": "key.revoked", "subject": kid, "body": {"key_id": kid}}
    with pytest.raises(
        AppendRefused, match=rf"was revoked at entry {G + 1}; it cannot return \(entry 2 of the batch\)"
    ):
        ledger.append_many([added, revoked, added], keys["admin"])
    assert len(ledger) == G
    with pytest.raises(AppendRefused, match="signed by unknown key"):
        ledger.append({"type": "note", "body": {"text": "not added"}}, late)
    ledger.append_many([added], keys["admin"])
    assert ledger.append({"type": "note", "body": {"text": "added"}}, late).index == G + 1
    assert ledger.verify(trust) == []


def test_proofs_from_the_store_match_the_in_memory_tree(ledger: Ledger, keys) -> None:
    _notes(ledger, keys["pipeline"], 17)
    leaves = [leaf for _, leaf in ledger.store.read()]
    size = len(leaves)
    assert ledger.root() == merkle.root(leaves)
    for index in (0, 5, size - 1):
        proof = ledger.inclusion_proof(index)
        assert proof == merkle.inclusion_proof(leaves, index)
        assert merkle.verify_inclusion(leaves[index], index, size, proof, ledger.root())
    for old in (1, 4, 7, 13, size):
        proof = ledger.consistency_proof(old)
        assert proof == merkle.consistency_proof(leaves, old)
        assert merkle.verify_consistency(old, size, ledger.root(old), ledger.root(), proof)
    with pytest.raises(InputError, match=f"no entry {size} in a tree of size {size}"):
        ledger.inclusion_proof(size)
    with pytest.raises(InputError, match=rf"tree size 99 is outside 0\.\.{size}"):
        ledger.root(99)


def test_concurrent_appenders_never_fork_or_gap(ledger: Ledger, keys, trust, tmp_path: Path) -> None:
    key_file = save_private_key(keys["pipeline"], tmp_path / "pipeline.key")
    target = ledger.store.engine.url.render_as_string(hide_password=False)
    script = (
        "import sys\nfrom clgate.ledger import Ledger, load_private_key\n"
        "key = load_private_key(sys.argv[2])\n"
        "with Ledger.open(sys.argv[1]) as led:\n"
        "    for i in range(int(sys.argv[3])):\n"
        "        led.append({'type': 'note', 'body': {'text': f'{sys.argv[4]} {i}'}}, key)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, target, str(key_file), "15", f"writer{w}"])
        for w in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert len(ledger) == G + 45
    texts = [e.body["text"] for e in ledger.entries(G)]
    assert sorted(texts) == sorted(f"writer{w} {i}" for w in range(3) for i in range(15))
    assert ledger.verify(trust) == []


# ---- attacks on the stored ledger: each is found by verify, with the entry named ----


def test_flipped_byte_in_payload_is_detected(ledger: Ledger, keys, trust) -> None:
    _notes(ledger, keys["pipeline"], 3)
    env = Envelope.from_bytes(_stored(ledger, 8))
    forged = Envelope(env.payload.replace(b"note 1", b"note X"), env.payload_type, env.keyid, env.sig)
    _sql(ledger, "UPDATE ledger_entries SET envelope = :e WHERE idx = 8", e=forged.to_bytes())
    problems = _problems(ledger, trust)
    assert "entry 8: signature does not verify" in problems
    assert (
        "entry 9: previous-entry hash does not match (an earlier entry was changed, removed or reordered)"
        in problems
    )


def test_flipped_byte_in_signature_is_detected(ledger: Ledger, keys, trust) -> None:
    _notes(ledger, keys["pipeline"], 2)
    env = Envelope.from_bytes(_stored(ledger, 8))
    bad = Envelope(env.payload, env.payload_type, env.keyid, bytes([env.sig[0] ^ 1]) + env.sig[1:])
    _sql(ledger, "UPDATE ledger_entries SET envelope = :e WHERE idx = 8", e=bad.to_bytes())
    problems = _problems(ledger, trust)
    assert problems[0] == "entry 8: signature does not verify"
    assert any("stored tree head" in p for p in problems)


def test_deleted_entry_is_detected(ledger: Ledger, keys, trust) -> None:
    _notes(ledger, keys["pipeline"], 4)
    _sql(ledger, "DELETE FROM ledger_entries WHERE idx = 8")
    problems = _problems(ledger, trust)
    assert "entry 8: entries 8..8 are missing" in problems
    assert any(p.startswith("log: stored tree head (size 11") for p in problems)


def test_reordered_entries_are_detected(ledger: Ledger, keys, trust) -> None:
    _notes(ledger, keys["pipeline"], 4)
    a, b = _stored(ledger, 8), _stored(ledger, 9)
    _sql(ledger, "UPDATE ledger_entries SET envelope = :e WHERE idx = 8", e=b)
    _sql(ledger, "UPDATE ledger_entries SET envelope = :e WHERE idx = 9", e=a)
    problems = _problems(ledger, trust)
    assert "entry 8: payload says index 9 (entries reordered, replayed or deleted)" in problems
    assert "entry 9: payload says index 8 (entries reordered, replayed or deleted)" in problems


def test_truncated_log_is_detected_against_a_checkpoint(ledger: Ledger, keys, trust) -> None:
    _notes(ledger, keys["pipeline"], 4)
    checkpoint = ledger.checkpoint(keys["gate"])
    assert _problems(ledger, trust, since=checkpoint) == []
    truncate(ledger, 9)  # cut the tail and make the head row agree: only the checkpoint can tell
    assert _problems(ledger, trust) == []  # internally consistent...
    assert _problems(ledger, trust, since=checkpoint) == [  # ...but shorter than what was promised
        "log: log has 9 entries but checkpoint saw 11: truncated"
    ]


def test_rewritten_history_fails_the_consistency_check(ledger: Ledger, keys, trust) -> None:
    """An admin key holder rebuilding the log from scratch cannot match an earlier checkpoint."""
    _notes(ledger, keys["pipeline"], 2)
    checkpoint = ledger.checkpoint(keys["gate"])
    env = Envelope.from_bytes(_stored(ledger, 8))
    payload = json.loads(env.payload)
    payload["body"]["text"] = "history rewritten"
    from clgate.ledger.canonical import canonical_json
    from clgate.ledger.dsse import sign_envelope

    resigned = sign_envelope(canonical_json(payload), env.payload_type, keys["pipeline"])
    _sql(ledger, "UPDATE ledger_entries SET envelope = :e WHERE idx = 8", e=resigned.to_bytes())
    problems = _problems(ledger, trust, since=checkpoint)
    assert "log: log was rewritten: root at size 9 differs from the checkpoint" in problems


def test_replayed_entry_is_detected(ledger: Ledger, keys, trust) -> None:
    entry = ledger.append({"type": "note", "body": {"text": "approve"}}, keys["approver"])
    _sql(
        ledger,
        "INSERT INTO ledger_entries VALUES (8, :e, 'note', :s, 'x')",
        e=entry.leaf,
        s=entry.signer,
    )
    problems = _problems(ledger, trust)
    assert "entry 8: payload says index 7 (entries reordered, replayed or deleted)" in problems


def test_forged_checkpoints_are_detected(ledger: Ledger, keys, trust) -> None:
    _notes(ledger, keys["pipeline"], 2)
    real = ledger.checkpoint(keys["gate"])
    wrong_root = sign_checkpoint(real.log_id, real.size, b"\x00" * 32, keys["gate"])
    by_outsider = sign_checkpoint(real.log_id, real.size, real.root, keys["outsider"])
    by_pipeline = sign_checkpoint(real.log_id, real.size, real.root, keys["pipeline"])
    other_log = sign_checkpoint("c" * 64, real.size, real.root, keys["gate"])
    tampered = parse_checkpoint(real.to_bytes().replace(b"\n9\n", b"\n8\n", 1))
    assert _problems(ledger, trust, since=wrong_root) == [
        "log: consistency proof from checkpoint size 9 fails",
        "log: log was rewritten: root at size 9 differs from the checkpoint",
    ]
    forged = "log: checkpoint is not signed by a gate key of this log (forged or altered)"
    assert _problems(ledger, trust, since=by_outsider) == [forged]
    assert _problems(ledger, trust, since=by_pipeline) == [forged]
    assert _problems(ledger, trust, since=tampered) == [forged]
    assert _problems(ledger, trust, since=other_log) == [
        "log: checkpoint belongs to a different log (origin differs)"
    ]
    with pytest.raises(AppendRefused, match="checkpoints are signed by a gate key"):
        ledger.checkpoint(keys["pipeline"])


def test_untrusted_genesis_is_flagged_with_a_trust_file(db_url: str, keys, trust) -> None:
    """A ledger started by someone else's admin key verifies alone (TOFU) but not against our trust."""
    with Ledger.init(db_url, keys["outsider"]) as led:
        assert led.verify() == []
        problems = _problems(led, trust)
    assert problems[0] == f"entry 0: signed by unknown key {key_id(keys['outsider'].public_key())[:16]}"


def test_stored_merkle_nodes_are_checked(ledger: Ledger, keys, trust) -> None:
    _notes(ledger, keys["pipeline"], 3)
    _sql(ledger, "UPDATE ledger_nodes SET hash = :h WHERE level = 1 AND idx = 0", h=b"\x00" * 32)
    assert _problems(ledger, trust) == ["log: 1 stored Merkle node(s) wrong, first at level 1, index 0"]


def test_open_and_init_errors(tmp_path: Path, keys, trust, db_url: str) -> None:
    with pytest.raises(InputError, match=r"no ledger at .*nothing\.db"):
        Ledger.open(tmp_path / "nothing.db")
    with Ledger.init(db_url, keys["admin"], trust):
        pass
    with pytest.raises(InputError, match="already holds a ledger"):
        Ledger.init(db_url, keys["admin"], trust)
    with pytest.raises(InputError, match="must be listed in the trust file with the admin role"):
        Ledger.init(tmp_path / "other.db", keys["pipeline"], trust)
    with pytest.raises(InputError, match="unsupported database"):
        Ledger.open("mysql://u@h/db")


def test_unreachable_postgresql_is_one_clear_error() -> None:
    with pytest.raises(
        InputError, match=r"cannot reach database postgresql\+psycopg://clgate:\*\*\*@127.0.0.1:9/x"
    ):
        Ledger.open("postgresql://clgate:secret@127.0.0.1:9/x")


def test_an_exclusive_hold_is_seen_by_every_client_of_the_database(
    ledger: Ledger, trust, tmp_path: Path
) -> None:
    """The gate's per-update lock: on PostgreSQL an advisory lock, so a gate on another machine sees it too."""
    target = ledger.store.engine.url.render_as_string(hide_password=False)
    with Ledger.open(target, trust) as other, ledger.store.exclusive("gate 0123", tmp_path / "locks"):
        with (
            pytest.raises(InputError, match="gate 0123 is held by another process on this ledger"),
            other.store.exclusive("gate 0123", tmp_path / "locks"),
        ):
            pass
        with other.store.exclusive("gate 4567", tmp_path / "locks"):
            pass  # another update is not held
    with ledger.store.exclusive("gate 0123", tmp_path / "locks"):
        pass  # released
