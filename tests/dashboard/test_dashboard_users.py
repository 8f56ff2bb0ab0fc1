"""Logins: current scrypt cost, the same work for unknown users, throttled guessing, locked keys."""

from __future__ import annotations

import hashlib

import pytest

from clgate.dashboard.users import SCRYPT_N, LoginThrottle, User, authenticate, hash_password, verify_password
from clgate.errors import InputError


@pytest.fixture(scope="module")
def users() -> dict[str, User]:
    return {"alice": User(login="alice", name="Alice", password=hash_password("pw"), role="viewer")}


def test_passwords_are_hashed_at_the_recommended_scrypt_cost(users) -> None:
    scheme, n, r, p, _, _ = users["alice"].password.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**17, 8, 1) and SCRYPT_N == 2**17
    assert verify_password("pw", users["alice"].password) and not verify_password(
        "px", users["alice"].password
    )


def test_an_unknown_login_costs_the_same_scrypt_as_a_wrong_password(users, monkeypatch) -> None:
    costs = []
    real = hashlib.scrypt

    def counting(*args, **kw):
        costs.append((kw["n"], kw["r"], kw["p"]))
        return real(*args, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    for login in ("alice", "mallory"):
        with pytest.raises(InputError, match=r"^login failed: unknown user or wrong password$"):
            authenticate(users, login, "guess")
    assert costs == [(2**17, 8, 1), (2**17, 8, 1)]


def test_repeated_failures_are_throttled_per_login_and_for_the_whole_app(users) -> None:
    now = [1000.0]
    throttle = LoginThrottle(free=3, app_free=5, base_s=2.0, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(InputError, match="login failed"):
            authenticate(users, "alice", "guess", throttle)
    with pytest.raises(InputError, match="too many failed logins; try again in 2 s"):
        authenticate(users, "alice", "pw", throttle)  # even the right password waits
    now[0] += 2.5
    assert authenticate(users, "alice", "pw", throttle).name == "Alice"
    assert throttle.wait_s("alice") == 0
    for name in ("m1", "m2"):  # guessing many names trips the app-wide limit
        with pytest.raises(InputError, match="login failed"):
            authenticate(users, name, "x", throttle)
    assert throttle.wait_s("someone-new") > 0
    now[0] += 3600
    assert throttle.wait_s("someone-new") == 0
