"""Creates a working ledger from nothing: one key per role, a trust file, and the genesis entries.

Used by `clgate demo` and by tests; a real deployment makes its keys with `clgate keys new` and
keeps them apart (the admin key offline).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clgate.ledger import Ledger, Trust, TrustedKey, generate_key, save_private_key, save_trust

ROLE_KEYS = ("admin", "pipeline", "auditor", "approver")


@dataclass(frozen=True)
class Bootstrap:
    ledger: Path
    trust: Path
    keys: dict[str, Path]


def bootstrap_ledger(folder: Path, approvers: int = 1) -> Bootstrap:
    """Keys `admin`, `pipeline`, `auditor`, `approver` (plus `approver2`… if asked), trust file, ledger."""
    folder = Path(folder)
    names = [*ROLE_KEYS, *(f"approver{i}" for i in range(2, approvers + 1))]
    private = {name: generate_key() for name in names}
    keys = {name: save_private_key(k, folder / "keys" / f"{name}.pem") for name, k in private.items()}
    trust = Trust(
        keys=[TrustedKey.of(k.public_key(), [name.rstrip("0123456789")], name) for name, k in private.items()]
    )
    trust_path = save_trust(trust, folder / "trust.toml")
    ledger_path = folder / "ledger.db"
    Ledger.init(ledger_path, private["admin"], trust).close()
    return Bootstrap(ledger=ledger_path, trust=trust_path, keys=keys)
