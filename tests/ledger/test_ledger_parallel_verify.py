"""Verification on worker processes finds exactly what the in-process verification finds."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from clgate.ledger import KeyRing, Ledger, chunks, generate_key, key_id
from clgate.ledger.chunks import ChunkParser, Parsed, parse_chunk
from clgate.ledger.dsse import Envelope
from clgate.ledger.keys import public_key_b64


def _key_added(key, roles: list[str]) -> dict:
    kid = key_id(key.public_key())
    body = {"key_id": kid, "public_key": public_key_b64(key.public_key()), "roles": roles}
    return {"type": "key.added", "subject": kid, "body": body}


def _tamper(ledger: Ledger, index: int, envelope: Envelope) -> None:
    with ledger.store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE ledger_entries SET envelope = :e WHERE idx = :i"),
            {"e": envelope.to_bytes(), "i": index},
        )


@pytest.fixture
def busy(tmp_path: Path, keys, trust) -> Ledger:
    """43 entries: notes, a key added mid-way and used at once, a revocation, then three forgeries."""
    led = Ledger.init(tmp_path / "busy.db", keys["admin"], trust)
    late = generate_key()
    led.append_many([{"type": "note", "body": {"text": f"n{i}"}} for i in range(10)], keys["pipeline"])
    led.append(_key_added(late, ["pipeline"]), keys["admin"])  # entry 17
    led.append_many([{"type": "note", "body": {"text": f"late {i}"}} for i in range(10)], late)  # 18..27
    kid = key_id(late.public_key())
    led.append({"type": "key.revoked", "subject": kid, "body": {"key_id": kid}}, keys["admin"])  # 28
    led.append_many([{"type": "note", "body": {"text": f"m{i}"}} for i in range(14)], keys["pipeline"])
    for index in (19, 33):  # a bad signature under the late key and under an anchor key
        env = Envelope.from_bytes(led.store.get(index))
        _tamper(led, index, Envelope(env.payload, env.payload_type, env.keyid, bytes(64)))
    env = Envelope.from_bytes(led.store.get(23))  # signed by the late key, claimed by pipeline
    _tamper(led, 23, Envelope(env.payload, env.payload_type, key_id(keys["pipeline"].public_key()), env.sig))
    return led


EXPECTED = [
    "entry 19: signature does not verify",
    "entry 20: previous-entry hash does not match (an earlier entry was changed, removed or reordered)",
    "entry 23: envelope keyid does not match the payload's signer",
    "entry 24: previous-entry hash does not match (an earlier entry was changed, removed or reordered)",
    "entry 33: signature does not verify",
    "entry 34: previous-entry hash does not match (an earlier entry was changed, removed or reordered)",
]


@pytest.mark.parametrize("chunk", [3, 7, 1000])
@pytest.mark.parametrize("workers", [1, 2])
def test_parallel_and_serial_verify_report_the_same_problems(
    busy: Ledger, trust, monkeypatch: pytest.MonkeyPatch, chunk: int, workers: int
) -> None:
    monkeypatch.setattr(chunks, "CHUNK", chunk)
    problems = [str(p) for p in busy.verify(trust, workers=workers)]
    assert [p for p in problems if p.startswith("entry")] == EXPECTED
    assert all("stored" in p for p in problems if p.startswith("log"))


def test_signatures_a_worker_could_not_check_are_checked_in_order(
    busy: Ledger, trust, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "CHUNK", 3)
    monkeypatch.setattr(ChunkParser, "_keys", lambda self: {})  # workers learn keys only from their chunk
    problems = [str(p) for p in busy.verify(trust, workers=2)]
    assert [p for p in problems if p.startswith("entry")] == EXPECTED


def test_a_worker_checks_only_signatures_whose_key_it_knows(busy: Ledger, keys) -> None:
    leaves = [leaf for _, leaf in busy.store.read(start=13, stop=23)]
    pipeline = key_id(keys["pipeline"].public_key())
    blind = parse_chunk(leaves, {})
    assert all(isinstance(p, Parsed) for p in blind)
    # entries 13-16 (pipeline) are unchecked; 17 adds the late key, so 18-22 are checked from it
    assert [p.signature_ok for p in blind] == [None] * 5 + [True, False, True, True, True]
    assert blind[4].type == "key.added" and blind[4].body is not None and blind[0].body is None
    told = parse_chunk(leaves, {pipeline: keys["pipeline"].public_key().public_bytes_raw()})
    assert [p.signature_ok for p in told][:4] == [True] * 4


def test_chunks_come_back_in_order_from_the_pool(busy: Ledger) -> None:
    pending = [(i, leaf, b"") for i, leaf in busy.store.read()]
    seen = []
    with ChunkParser(KeyRing(), workers=2, size=4) as parser:
        for entry in pending:
            seen += parser.add(entry)
        assert parser.pool is not None
        seen += list(parser.finish())
    assert [entry for chunk, _ in seen for entry in chunk] == pending
    assert all(len(chunk) == len(parsed) for chunk, parsed in seen)
    assert [p.index for _, parsed in seen for p in parsed] == [i for i, _, _ in pending]


def test_a_small_ledger_starts_no_worker_process(busy: Ledger) -> None:
    with ChunkParser(KeyRing(), workers=2) as parser:
        for index, leaf in busy.store.read():
            assert parser.add((index, leaf, b"")) == []
        assert len(list(parser.finish())) == 1
        assert parser.pool is None
