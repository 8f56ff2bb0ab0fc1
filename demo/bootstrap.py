"""Creates a working ledger from nothing: one key per role, a signed trust file, the genesis entries.

Used by `clgate demo` and by tests; a real deployment makes its keys with `clgate keys new` and
keeps them apart: the admin key offline, the pipeline key in the training job, the gate key in
the gate service, approver keys with the people who approve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clgate.audit.policy import Policy
from clgate.ledger import Ledger, PolicyAdopted, Trust, TrustedKey, generate_key, save_private_key, save_trust

ROLE_KEYS = ("admin", "pipeline", "gate", "auditor", "approver")


@dataclass(frozen=True)
class Bootstrap:
    ledger: Path
    trust: Path
    keys: dict[str, Path]


def bootstrap_ledger(
    folder: Path,
    approvers: int = 1,
    policies: Sequence[Policy] = (),
    witnesses: int = 0,
    admins: int = 1,
) -> Bootstrap:
    """Keys `admin`, `pipeline`, `gate`, `auditor`, `approver` (plus `approver2`…, `witness1`…, `admin2`… if
    asked), a trust file bound to the new ledger and signed by the admin, whose key quorum is every admin,
    and `policies` adopted (by every admin)."""
    folder = Path(folder)
    names = [
        *ROLE_KEYS,
        *(f"approver{i}" for i in range(2, approvers + 1)),
        *(f"witness{i}" for i in range(1, witnesses + 1)),
        *(f"admin{i}" for i in range(2, admins + 1)),
    ]
    private = {name: generate_key() for name in names}
    keys = {name: save_private_key(k, folder / "keys" / f"{name}.pem") for name, k in private.items()}
    trust = Trust(
        keys=[
            TrustedKey.of(k.public_key(), [name.rstrip("0123456789")], name) for name, k in private.items()
        ],
        key_quorum=admins,
        policy_quorum=True,
    )
    ledger_path = folder / "ledger.db"
    with Ledger.init(ledger_path, private["admin"], trust) as ledger:
        trust_path = save_trust(trust.bound_to(ledger.log_id()), folder / "trust.toml", private["admin"])
        for policy in policies:
            adopted = PolicyAdopted(name=policy.name, digest=policy.digest, text=policy.canonical_text)
            for admin in [n for n in names if n.rstrip("0123456789") == "admin"]:
                ledger.append(adopted, private[admin], subject=policy.digest)
    return Bootstrap(ledger=ledger_path, trust=trust_path, keys=keys)
