"""The auditor dashboard: a Streamlit app reading the ledger through `clgate.audit` and `clgate.ledger`.

Start it with `clgate dashboard --ledger DB`; it never writes the database itself, every action
is a signed entry made by `clgate.audit.actions`.
"""

from clgate.dashboard.config import Config, parse_config
from clgate.dashboard.data import LedgerView, Snapshot, load_snapshot, open_view, read_view
from clgate.dashboard.drift import drift_frame, thresholds
from clgate.dashboard.users import User, authenticate, hash_password, load_users, verify_password

__all__ = [
    "Config",
    "LedgerView",
    "Snapshot",
    "User",
    "authenticate",
    "drift_frame",
    "hash_password",
    "load_snapshot",
    "load_users",
    "open_view",
    "parse_config",
    "read_view",
    "thresholds",
    "verify_password",
]
