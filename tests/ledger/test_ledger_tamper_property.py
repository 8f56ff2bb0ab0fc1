"""Property: any single-byte change anywhere in a stored ledger's rows is detected by verify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clgate.errors import IntegrityError
from clgate.ledger import Ledger, cosign

from .conftest import Flow

# (table, blob column, key columns) of everything the ledger stores.
BLOBS = [
    ("ledger_entries", "envelope", ("idx",)),
    ("ledger_nodes", "hash", ("level", "idx")),
    ("ledger_head", "frontier", ("id",)),
    ("ledger_head", "last_hash", ("id",)),
    ("ledger_head", "root", ("id",)),
    ("ledger_checkpoints", "envelope", ("id",)),
]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, keys, trust) -> Iterator[Ledger]:
    path: Path = tmp_path_factory.mktemp("tamper") / "ledger.db"
    with Ledger.init(path, keys["admin"], trust) as led:
        flow = Flow(led, keys)
        p = flow.propose("memory")
        flow.audit(p, "review")
        checkpoint = led.checkpoint(keys["gate"])
        led.add_cosignature(cosign(checkpoint, keys["witness"], "witness"))
        flow.approve(p)
        led.append({"type": "note", "body": {"text": "é ünïcode"}}, keys["approver"])
        assert led.verify(trust, workers=1) == []
        yield led


def _rows(conn: sa.Connection, table: str, column: str, keys: tuple[str, ...]) -> list[tuple]:
    cols = ", ".join(keys)
    return list(conn.execute(sa.text(f"SELECT {cols}, {column} FROM {table} ORDER BY {cols}")))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=st.integers(0, len(BLOBS) - 1),
    row=st.integers(0, 10**6),
    pos=st.integers(0, 10**6),
    xor=st.integers(1, 255),
)
def test_random_byte_mutation_is_always_detected(
    stored: Ledger, trust, where: int, row: int, pos: int, xor: int
) -> None:
    table, column, key_cols = BLOBS[where]
    with stored.store.engine.begin() as conn:
        rows = _rows(conn, table, column, key_cols)
        *key, blob = rows[row % len(rows)]
        blob = bytes(blob)
        at = pos % len(blob)
        mutated = blob[:at] + bytes([blob[at] ^ xor]) + blob[at + 1 :]
        cond = " AND ".join(f"{k} = :k{i}" for i, k in enumerate(key_cols))
        params = {f"k{i}": v for i, v in enumerate(key)}
        conn.execute(sa.text(f"UPDATE {table} SET {column} = :b WHERE {cond}"), {"b": mutated, **params})
    try:
        try:
            problems = stored.verify(trust, workers=1)
        except IntegrityError as exc:  # the store could not even be read back: detected too
            problems = [str(exc)]
        assert problems, f"undetected: {table}.{column} row {key} byte {at} ^ {xor}"
    finally:
        with stored.store.engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {table} SET {column} = :b WHERE {cond}"), {"b": blob, **params})
    assert stored.verify(trust, workers=1) == []
