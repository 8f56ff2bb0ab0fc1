"""The auditor dashboard: a Streamlit app reading the ledger through `clgate.audit` and `clgate.ledger`.

Start it with `clgate dashboard --ledger DB`; it never writes the database itself, every action
is a signed entry made by `clgate.audit.actions`.
"""

from clgate.dashboard.config import Config, parse_config
from clgate.dashboard.data import LedgerView, load_view, open_view
from clgate.dashboard.drift import drift_frame, thresholds
from clgate.dashboard.users import User, authenticate, hash_password, load_users, verify_password

__all__ = [
    "Config",
    "LedgerView",
    "User",
    "authenticate",
    "drift_frame",
    "hash_password",
    "load_users",
    "load_view",
    "open_view",
    "parse_config",
    "thresholds",
    "verify_password",
]
