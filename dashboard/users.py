"""Dashboard users: who may log in, with which role, signing with which key.

Passwords are stored only as salted scrypt hashes (stdlib `hashlib.scrypt`) at the cost OWASP
recommends for scrypt (N=2^17, r=8, p=1). An unknown login is checked against a dummy hash, so it
takes as long as a wrong password and the timing says nothing about who exists; repeated failures
for a login, or from the whole app, are throttled. A user's role decides which buttons they get;
their own private key, unlocked with a passphrase they type for each action and never stored,
signs what they do, so the ledger's role and n-of-m rules apply to people, not to the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, ValidationError

from clgate.errors import InputError
from clgate.ledger import load_private_key
from clgate.toml_input import read_toml

Role = Literal["viewer", "auditor", "approver"]
ACTIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset(),
    "auditor": frozenset({"approve", "block"}),
    "approver": frozenset({"approve", "block", "promote", "rollback"}),
}
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
_MAXMEM = 256 * 1024 * 1024
_DUMMY_SALT = b"clgate-no-such-user"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=_MAXMEM)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash`, base64 fields: the format users.toml stores."""
    salt = salt or os.urandom(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


class User(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    login: str = ""
    name: str
    password: str
    role: Role
    key: Path | None = None

    def may(self, action: str) -> bool:
        return action in ACTIONS[self.role]

    def signing_key(self, passphrase: str) -> Ed25519PrivateKey:
        """The user's own key, unlocked with their own passphrase for this one action."""
        if self.key is None:
            raise InputError(f"{self.name} has no signing key")
        if not passphrase:
            raise InputError("type your key's passphrase to sign")
        return load_private_key(self.key, passphrase)


def load_users(path: Path) -> dict[str, User]:
    """Users by login name; a missing or malformed file is an InputError naming the user and field.

    A user who signs must have a key encrypted with their own passphrase: an unencrypted key on the
    server would let anyone with the server sign as them.
    """
    path = Path(path)
    listed = read_toml(path, "users file").get("users", {})
    if not isinstance(listed, dict):
        raise InputError(f"{path}: users must be a table of [users.LOGIN] tables")
    users = {}
    for login, fields in listed.items():
        if not isinstance(fields, dict):
            raise InputError(f"{path}: users.{login} must be a table (name, password, role, key)")
        try:
            user = User.model_validate({**fields, "login": login})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InputError(f"{path}: users.{login}.{where}: {err['msg']}") from None
        if user.key is not None and not user.key.is_absolute():
            user = user.model_copy(update={"key": path.parent / user.key})
        if user.role != "viewer" and user.key is None:
            raise InputError(f"{path}: users.{login}: role {user.role} needs a key to sign with")
        if user.key is not None and not _encrypted(user.key):
            raise InputError(
                f"{path}: users.{login}: key {user.key} is not encrypted; it must be protected by its owner's passphrase"
            )
        users[login] = user
    if not users:
        raise InputError(f"{path}: no [users.NAME] tables")
    return users


def _encrypted(key: Path) -> bool:
    if not key.is_file():
        raise InputError(f"private key file not found: {key}")
    return b"ENCRYPTED" in key.read_bytes()


@dataclass
class LoginThrottle:
    """Failed logins slow down whoever makes them: per login name and for the app as a whole.

    After `free` failures within `window_s`, each further attempt for that login waits
    `base_s * 2**(excess)` seconds (capped at `max_s`) before it is even checked; so does every
    attempt once the whole app has seen `app_free` failures in the window (guessing many names).
    """

    free: int = 5
    app_free: int = 50
    window_s: float = 900.0
    base_s: float = 1.0
    max_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _app: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, login: str) -> float:
        """How long the next attempt for `login` must wait (0: it may go now)."""
        with self._lock:
            now = self.clock()
            mine, everyone = (
                self._recent(self._failures.get(login, deque()), now),
                self._recent(self._app, now),
            )
            excess = max(len(mine) - self.free, len(everyone) - self.app_free, -1)
            if excess < 0:
                return 0.0
            last = max(mine[-1] if mine else 0.0, everyone[-1] if everyone else 0.0)
            return max(0.0, last + min(self.max_s, self.base_s * 2**excess) - now)

    def failed(self, login: str) -> None:
        with self._lock:
            now = self.clock()
            self._failures.setdefault(login, deque()).append(now)
            self._app.append(now)

    def succeeded(self, login: str) -> None:
        with self._lock:
            self._failures.pop(login, None)

    def _recent(self, times: deque[float], now: float) -> deque[float]:
        while times and times[0] < now - self.window_s:
            times.popleft()
        return times


def authenticate(
    users: dict[str, User], login: str, password: str, throttle: LoginThrottle | None = None
) -> User:
    """The user if the password matches; one message, and the same work, for unknown user and wrong password."""
    if throttle is not None:
        wait = throttle.wait_s(login)
        if wait > 0:
            raise InputError(f"too many failed logins; try again in {wait:.0f} s")
    user = users.get(login)
    stored = user.password if user else _dummy_hash()
    ok = verify_password(password, stored) and user is not None
    if not ok:
        if throttle is not None:
            throttle.failed(login)
        raise InputError("login failed: unknown user or wrong password")
    if throttle is not None:
        throttle.succeeded(login)
    return user  # type: ignore[return-value]


def _dummy_hash() -> str:
    """A hash with the real cost parameters and a digest nothing matches: unknown logins take as long."""
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(_DUMMY_SALT).decode()}${b64(bytes(32)).decode()}"
