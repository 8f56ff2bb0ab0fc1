"""Ledger costs as ratios to bare Ed25519, measured in one run.

    python benchmarks/ledger.py [--quick]

append   signed entries/s into a SQLite ledger with `Ledger.append` (one transaction each),
         against bare Ed25519 signing of the same DSSE bytes, timed in alternating blocks: the
         overhead of canonical JSON, the Merkle frontier and the database.
batched  the same with `Ledger.append_many`, BATCH entries per transaction, into a second
         ledger: what a bulk writer gets.
verify   a full verify (strict parsing, chain, roles, Merkle root and stored nodes, every
         signature on every core) of an N-entry ledger, against bare single-core Ed25519
         verification of the same signatures with the ledger's verifier (libsodium, by PyNaCl);
         OpenSSL's (`cryptography`) time is printed beside it, and the same verify on one core
         (how much the second core adds).
proofs   inclusion and consistency proofs for random entries of a 1,000,000-leaf log served from
         the stored Merkle nodes (the log's nodes are bulk-loaded from synthetic leaves), each
         checked with the RFC 9162 verifier.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clgate.ledger import Ledger, LedgerEntry, Trust, TrustedKey, generate_key, merkle
from clgate.ledger.dsse import Envelope, verify_signature
from clgate.ledger.entries import PolicyAdopted, policy_text_digest
from clgate.ledger.store import Store, head_t, nodes_t

BATCH = 100
BLOCK = 1000  # single appends timed between bare-signing runs


POLICY = PolicyAdopted(name="bench", digest=policy_text_digest('name = "bench"'), text='name = "bench"')


def _draft(i: int) -> dict:
    """A scheduled audit's entry, the one a deployment appends most often (a stateful one: its rules run)."""
    return {
        "type": "audit.scheduled_run",
        "body": {
            "verdict": "promote",
            "measurements": {"drift": "sha256:" + f"{i:064x}"},
            "policy": {"name": POLICY.name, "digest": POLICY.digest},
        },
    }


def _with_policy(ledger: Ledger, admin: Ed25519PrivateKey) -> Ledger:
    """The ledger with the policy its scheduled runs cite adopted (a run names an adopted policy)."""
    ledger.append(POLICY, admin, POLICY.digest)
    return ledger


def _timed_blocks(
    count: int, block: int, append: Callable[[int, int], list[LedgerEntry]], key: Ed25519PrivateKey
) -> tuple[float, float]:
    """(append s, bare sign s): blocks of `block` appends, each followed by bare signing of those entries' DSSE bytes.

    Alternating the two keeps the machine's drift (a shared VM's speed moves by a quarter within
    minutes) out of the ratio.
    """
    append_s = sign_s = 0.0
    for first in range(0, count, block):
        start = time.perf_counter()
        entries = append(first, min(first + block, count))
        append_s += time.perf_counter() - start
        messages = [entry.envelope.pae() for entry in entries]
        start = time.perf_counter()
        for message in messages:
            key.sign(message)
        sign_s += time.perf_counter() - start
    return append_s, sign_s


def bench_append(folder: Path, count: int) -> tuple[Ledger, Trust, tuple[float, float], tuple[float, float]]:
    """(append s, bare sign s) one entry per transaction, and the same in batches of BATCH."""
    admin, pipeline = generate_key(), generate_key()
    trust = Trust(
        keys=[
            TrustedKey.of(admin.public_key(), ["admin"], "admin"),
            TrustedKey.of(pipeline.public_key(), ["gate"]),  # scheduled runs are the gate's to sign
        ]
    )
    ledger = _with_policy(Ledger.init(folder / "ledger.db", admin, trust), admin)
    single = _timed_blocks(
        count, BLOCK, lambda a, b: [ledger.append(_draft(i), pipeline) for i in range(a, b)], pipeline
    )
    with _with_policy(Ledger.init(folder / "batched.db", admin, trust), admin) as batched:
        many = _timed_blocks(
            count,
            BATCH,
            lambda a, b: batched.append_many([_draft(i) for i in range(a, b)], pipeline),
            pipeline,
        )
    return ledger, trust, single, many


def bench_verify(ledger: Ledger, trust: Trust) -> tuple[float, float, float, float, int]:
    """(full verify s, the same on one core s, bare libsodium s, bare OpenSSL s, entries): the bare checks on one core."""
    ring = ledger.key_ring()
    tasks = []
    for _, leaf in ledger.store.read():
        env = Envelope.from_bytes(leaf)
        tasks.append((ring.public_key(env.keyid), env.pae(), env.sig))
    start = time.perf_counter()
    for public, message, sig in tasks:
        assert verify_signature(public, sig, message)
    sodium_s = time.perf_counter() - start
    keys: dict[bytes, Ed25519PublicKey] = {}
    start = time.perf_counter()
    for public, message, sig in tasks:
        key = keys.get(public) or keys.setdefault(public, Ed25519PublicKey.from_public_bytes(public))
        key.verify(sig, message)
    openssl_s = time.perf_counter() - start
    start = time.perf_counter()
    problems = ledger.verify(trust)
    full_s = time.perf_counter() - start
    assert problems == [], problems[:3]
    start = time.perf_counter()
    assert ledger.verify(trust, workers=1) == []
    one_core_s = time.perf_counter() - start
    return full_s, one_core_s, sodium_s, openssl_s, len(tasks)


def load_synthetic_log(path: Path, size: int) -> Ledger:
    """A store whose Merkle nodes and head describe `size` synthetic leaves (no entries needed for proofs)."""
    store = Store.open(path, create=True)
    frontier = merkle.Frontier()
    with store.engine.begin() as conn:
        batch = []
        for i in range(size):
            batch += [
                {"level": lv, "idx": j, "hash": h}
                for lv, j, h in frontier.append(merkle.leaf_hash(i.to_bytes(8, "big")))
            ]
            if len(batch) > 50_000:
                conn.execute(sa.insert(nodes_t), batch)
                batch = []
        conn.execute(sa.insert(nodes_t), batch)
        conn.execute(
            sa.update(head_t).where(head_t.c.id == 1),
            {"size": size, "frontier": frontier.to_bytes(), "last_hash": b"\0" * 32, "root": frontier.root()},
        )
    return Ledger(store)


def bench_proofs(ledger: Ledger, size: int, samples: int = 200) -> tuple[float, float, float]:
    root, rng = ledger.root(), random.Random(0)
    inclusion, consistency = [], []
    for _ in range(samples):
        index = rng.randrange(size)
        start = time.perf_counter()
        proof = ledger.inclusion_proof(index)
        inclusion.append(time.perf_counter() - start)
        assert merkle.verify_inclusion(index.to_bytes(8, "big"), index, size, proof, root)
        old = rng.randrange(1, size)
        start = time.perf_counter()
        proof = ledger.consistency_proof(old)
        consistency.append(time.perf_counter() - start)
        assert merkle.verify_consistency(old, size, ledger.root(old), root, proof)
    return (
        statistics.median(inclusion),
        statistics.median(consistency),
        statistics.quantiles(inclusion + consistency, n=20)[-1],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 entries and a 100,000-leaf log")
    args = parser.parse_args()
    entries, leaves = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    print(f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        ledger, trust, single, many = bench_append(Path(tmp), entries)
        for name, (append_s, sign_s) in (("append", single), ("batched", many)):
            per_append, per_sign = append_s / entries, sign_s / entries
            print(
                f"{name:<7} {entries:>9,} entries  {entries / append_s:8,.0f} entries/s  {per_append * 1e6:6.0f} us each;"
                f" bare Ed25519 sign {per_sign * 1e6:5.1f} us  ratio {per_append / per_sign:5.1f}x"
            )
        full_s, one_core_s, sodium_s, openssl_s, n = bench_verify(ledger, trust)
        print(
            f"verify  {n:>9,} entries  full {full_s:6.2f} s ({n / full_s:,.0f}/s, {os.cpu_count()} cores);"
            f" bare single-core Ed25519 verify {sodium_s:6.2f} s  ratio {full_s / sodium_s:5.2f}x"
            f" (libsodium, the ledger's verifier; OpenSSL's takes {openssl_s:6.2f} s: ratio {full_s / openssl_s:5.2f}x)"
        )
        print(
            f"        the same verify on one core {one_core_s:6.2f} s: {os.cpu_count()} cores are"
            f" {one_core_s / full_s:4.2f}x faster"
        )
        ledger.close()
        synthetic = load_synthetic_log(Path(tmp) / "proofs.db", leaves)
        inclusion_s, consistency_s, p95_s = bench_proofs(synthetic, leaves)
        print(
            f"proofs  {leaves:>9,} leaves   median inclusion {inclusion_s * 1e3:5.2f} ms,"
            f" consistency {consistency_s * 1e3:5.2f} ms; p95 of both {p95_s * 1e3:5.2f} ms"
            " (200 random each, all verified)"
        )
        synthetic.close()


if __name__ == "__main__":
    main()
