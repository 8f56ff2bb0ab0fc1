"""Dashboard users: who may log in, with which role, signing with which key.

Passwords are stored only as salted scrypt hashes (stdlib `hashlib.scrypt`, no extra
dependency); a user's role decides which buttons they get, and their private key signs what
they do, so the ledger's own role checks apply on top of the dashboard's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from clgate.errors import InputError

Role = Literal["viewer", "auditor", "approver"]
ACTIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset(),
    "auditor": frozenset({"approve", "reject"}),
    "approver": frozenset({"approve", "reject", "promote", "rollback"}),
}
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash`, base64 fields: the format users.toml stores."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
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


def load_users(path: Path) -> dict[str, User]:
    """Users by login name; a missing or malformed file is an InputError naming the user and field."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such users file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML ({exc})") from None
    users = {}
    for login, fields in data.get("users", {}).items():
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
        users[login] = user
    if not users:
        raise InputError(f"{path}: no [users.NAME] tables")
    return users


def authenticate(users: dict[str, User], login: str, password: str) -> User:
    """The user if the password matches; one message for unknown user and wrong password."""
    user = users.get(login)
    if user is None or not verify_password(password, user.password):
        raise InputError("login failed: unknown user or wrong password")
    return user
