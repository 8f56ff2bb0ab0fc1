"""Ledger fixtures: keys, a throwaway PostgreSQL cluster, and a ledger URL on either backend."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clgate.ledger import (
    Approval,
    ApprovalRequirement,
    AuditRecord,
    Block,
    Decision,
    Finding,
    JudgedWith,
    Ledger,
    LedgerEntry,
    PolicyAdopted,
    PolicyRef,
    Promotion,
    Proposal,
    ProposalContent,
    Rollback,
    Status,
    Trust,
    TrustedKey,
    WitnessRequirement,
    generate_key,
    policy_text_digest,
)
from clgate.ledger.canonical import canonical_json
from clgate.ledger.dsse import ENTRY_PAYLOAD_TYPE, sign_envelope
from clgate.ledger.entries import make_draft, utc_now
from clgate.ledger.keys import key_id
from clgate.ledger.store import Prepared

PG_BIN = Path("/usr/lib/postgresql")
PG_USER = "clgate"


def _pg_bin() -> Path:
    """The newest PostgreSQL server binaries under the system's lib directory."""
    found = sorted(PG_BIN.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError(f"PostgreSQL server binaries not found under {PG_BIN} (apt install postgresql)")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as(user: str | None, argv: list[str]) -> None:
    """initdb refuses to run as root: as root, run the server tools as an unprivileged user."""
    cmd = ["runuser", "-u", user, "--", *argv] if user else argv
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "clgate-pg"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "clgate-pg"], check=True)
    return "clgate-pg"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL cluster in a temp dir on a free port; yields a base URL without database."""
    bindir, user = _pg_bin(), _server_user()
    root = Path(tempfile.mkdtemp(prefix="clgate-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if user:
        shutil.chown(root, user)
        shutil.chown(sockets, user)
    port = _free_port()
    _run_as(user, [str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8"])
    opts = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run_as(
        user, [str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(root / "log"), "start"]
    )
    try:
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}"
    finally:
        _run_as(user, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-W", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def _new_pg_database(base: str) -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
    ) as c:
        c.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend: the storage suite runs against both."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    return _new_pg_database(request.getfixturevalue("pg_server"))


ANCHORS = ("admin", "pipeline", "gate", "auditor", "approver", "approver2", "witness")


@pytest.fixture(scope="session")
def keys() -> dict[str, Ed25519PrivateKey]:
    return {name: generate_key() for name in (*ANCHORS, "admin2", "outsider")}


@pytest.fixture(scope="session")
def trust(keys: dict[str, Ed25519PrivateKey]) -> Trust:
    return Trust(
        keys=[TrustedKey.of(keys[name].public_key(), [name.rstrip("0123456789")], name) for name in ANCHORS]
    )


@pytest.fixture
def ledger(db_url: str, keys: dict[str, Ed25519PrivateKey], trust: Trust) -> Iterator[Ledger]:
    """A ledger with the role keys registered (entries 0-6) on the parametrised backend."""
    with Ledger.init(db_url, keys["admin"], trust) as led:
        yield led


GENESIS = len(ANCHORS)  # entries written by `Ledger.init`: one key.added per anchor


def finding(status: str) -> Finding:
    return Finding(rule=f"r-{status}", check="c", status=Status(status), reason=f"a {status} finding")


FINDINGS = {"promote": [finding("pass")], "review": [finding("warn")], "block": [finding("fail")]}


class Flow:
    """Drives the ledger API (no audit layer) through proposals, audits and decisions, as any client could."""

    def __init__(self, ledger: Ledger, keys: dict[str, Ed25519PrivateKey]) -> None:
        self.ledger, self.keys = ledger, keys
        self.policy = self.adopt("p1")
        self._n = 0

    def adopt(self, name: str, deployments: list[str] | None = None, **pins) -> PolicyRef:
        """A policy pinning `pins` (its `approvals`, `witnesses`), as the audit layer writes one, adopted for
        `deployments` (None: every deployment)."""
        text = canonical_json({"name": name, **pins}).decode()
        digest = policy_text_digest(text)
        body = PolicyAdopted(name=name, digest=digest, text=text, deployments=deployments)
        for admin in ("admin", "admin2")[
            : self.ledger.governance().ring.adopting_quorum
        ]:  # co-signed if asked
            self.ledger.append(body, self.keys[admin], digest)
        return PolicyRef(name=name, digest=digest)

    def proposal(
        self,
        kind: str = "model",
        base: str | None = None,
        memory_old: str | None = None,
        again: Proposal | None = None,
        **extra,
    ) -> Proposal:
        """A proposal of `kind` (of `again`'s candidate, superseding it: a re-audit); a memory update changes
        `memory_old`, by default the store deployed now."""
        self._n += 1
        digest = again.candidate.digest if again else "sha256:" + f"{self._n:064x}"
        extra |= {"supersedes": again.update_id} if again else {}
        parent = base or "sha256:" + "f" * 64
        roles = {"model": "candidate", "adapter": "adapter", "memory": "memory_new"}[kind]
        artifacts = {"parent": {"kind": "model", "uri": "/m/parent", "digest": parent}}
        artifacts[roles] = {
            "kind": "model" if kind == "model" else kind,
            "uri": f"/u/{self._n}",
            "digest": digest,
        }
        if kind == "memory":
            governance = self.ledger.governance()
            running = governance.deployed.get(("default", "memory"))
            deployed = governance.updates[running].candidate_digest if running else "sha256:" + "e" * 64
            artifacts["memory_old"] = {"kind": "memory", "uri": "/m/old", "digest": memory_old or deployed}
        body = {
            "kind": kind,
            "base": digest if kind == "model" else parent,
            "artifacts": artifacts,
            "nonce": f"{self._n:016x}",
            "deployment": "default",
            "pipeline": {},
            **extra,
        }
        return Proposal.of(ProposalContent.model_validate(body))

    def propose(
        self,
        kind: str = "model",
        base: str | None = None,
        signer: str = "pipeline",
        memory_old: str | None = None,
        again: Proposal | None = None,
        **extra,
    ) -> Proposal:
        p = self.proposal(kind, base, memory_old, again, **extra)
        self.ledger.append(p, self.keys[signer], p.candidate.digest)
        return p

    def deploy(self, kind: str = "model", base: str | None = None) -> Proposal:
        """Propose, audit (promote) and promote an update: what an attack needs deployed before it starts."""
        p = self.propose(kind, base)
        self.audit(p)
        self.promote(p)
        return p

    def audit_record(self, p: Proposal, decision: str = "promote", **kw) -> AuditRecord:
        """An audit under the flow's policy, or, asking for approvals or witnesses, under one pinning them."""
        pins = {k: kw.pop(k) for k in ("approvals", "witnesses") if k in kw}
        policy = kw.pop("policy", None) or (self.adopt(f"pins-{self._n}", **pins) if pins else self.policy)
        return AuditRecord(
            update_id=p.update_id,
            verdict=Decision(decision),
            findings=FINDINGS[decision],
            policy=policy,
            approvals=ApprovalRequirement(**pins.get("approvals", {})),
            witnesses=WitnessRequirement(**pins.get("witnesses", {})),
            judged_with=JudgedWith(adapter=kw.pop("adapter"))
            if "adapter" in kw
            else kw.pop("judged_with", None),
        )

    def audit(self, p: Proposal, decision: str = "promote", signer: str = "gate", **kw) -> LedgerEntry:
        return self.ledger.append(self.audit_record(p, decision, **kw), self.keys[signer], p.candidate.digest)

    def approve(self, p: Proposal, signer: str = "approver") -> LedgerEntry:
        return self.ledger.append(Approval(update_id=p.update_id), self.keys[signer], p.candidate.digest)

    def block(self, p: Proposal, signer: str = "gate", reason: str = "blocked") -> LedgerEntry:
        body = Block(update_id=p.update_id, reason=reason)
        return self.ledger.append(body, self.keys[signer], p.candidate.digest)

    def promotion(self, p: Proposal, **kw) -> Promotion:
        current = self.ledger.governance().deployed.get((p.deployment, p.slot))
        return Promotion(update_id=p.update_id, slot=p.slot, replaced=kw.pop("replaced", current), **kw)

    def promote(self, p: Proposal, signer: str = "approver", **kw) -> LedgerEntry:
        return self.ledger.append(self.promotion(p, **kw), self.keys[signer], p.candidate.digest)

    def rollback_to(self, p: Proposal) -> Rollback:
        current = self.ledger.governance().deployed.get((p.deployment, p.slot))
        return Rollback(update_id=p.update_id, slot=p.slot, replaced=current, reason="regression")

    def rollback(self, p: Proposal, signer: str = "approver") -> LedgerEntry:
        return self.ledger.append(self.rollback_to(p), self.keys[signer], p.candidate.digest)

    def force(self, body, signer: str, subject: str | None) -> int:
        """Write a validly signed entry straight into the store, as a rogue client with a real key could:
        the rules are not asked, so only `verify` (and replay) can catch it."""
        draft = make_draft(body, subject)
        key = self.keys[signer]
        kid = key_id(key.public_key())

        def build(head, read_state):
            statement = {
                "schema_version": 1, "index": head.size, "timestamp": utc_now(), "type": draft.type,
                "subject": draft.subject, "body": draft.body, "signer": kid, "prev": head.last_hash.hex(),
            }  # fmt: skip
            env = sign_envelope(canonical_json(statement), ENTRY_PAYLOAD_TYPE, key, kid)
            return [Prepared(env.to_bytes(), draft.type, kid, statement["timestamp"])]

        head, _ = self.ledger.store.append(build)
        return head.size - 1

    def replant(self, index: int) -> int:
        """Copy entry `index`'s stored bytes to the head, as a database writer without keys could: its
        signature still verifies, only its place in the chain is wrong."""
        ((_, leaf),) = self.ledger.store.read(index, index + 1)
        head, _ = self.ledger.store.append(lambda head, read: [Prepared(leaf, "note", "", utc_now())])
        return head.size - 1


@pytest.fixture
def flow(ledger: Ledger, keys: dict[str, Ed25519PrivateKey]) -> Flow:
    return Flow(ledger, keys)


def truncate(ledger: Ledger, keep: int) -> None:
    """What a database writer without keys can do: cut the tail, rebuild nodes and head, drop checkpoints."""
    import sqlalchemy as sa

    from clgate.ledger import merkle

    with ledger.store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger_entries WHERE idx >= :k"), {"k": keep})
        conn.execute(sa.text("DELETE FROM ledger_nodes"))
        conn.execute(sa.text("DELETE FROM ledger_checkpoints"))
    leaves = [leaf for _, leaf in ledger.store.read()]
    front = merkle.Frontier()
    with ledger.store.engine.begin() as conn:
        for leaf in leaves:
            for lv, idx, h in front.append(merkle.leaf_hash(leaf)):
                conn.execute(
                    sa.text("INSERT INTO ledger_nodes VALUES (:l, :i, :h)"), {"l": lv, "i": idx, "h": h}
                )
        conn.execute(
            sa.text("UPDATE ledger_head SET size=:s, frontier=:f, last_hash=:l, root=:r"),
            {
                "s": front.size,
                "f": front.to_bytes(),
                "l": merkle.leaf_hash(leaves[-1]) if leaves else b"",
                "r": front.root(),
            },
        )
