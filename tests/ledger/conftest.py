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

from clgate.ledger import Ledger, Trust, TrustedKey, generate_key

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


@pytest.fixture(scope="session")
def keys() -> dict[str, Ed25519PrivateKey]:
    return {name: generate_key() for name in ("admin", "pipeline", "auditor", "approver", "outsider")}


@pytest.fixture(scope="session")
def trust(keys: dict[str, Ed25519PrivateKey]) -> Trust:
    return Trust(
        keys=[
            TrustedKey.of(keys[name].public_key(), [name], name)
            for name in ("admin", "pipeline", "auditor", "approver")
        ]
    )


@pytest.fixture
def ledger(db_url: str, keys: dict[str, Ed25519PrivateKey], trust: Trust) -> Iterator[Ledger]:
    """A ledger with the four role keys registered (entries 0-3) on the parametrised backend."""
    with Ledger.init(db_url, keys["admin"], trust) as led:
        yield led
