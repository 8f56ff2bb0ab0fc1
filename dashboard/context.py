"""What every page gets: the ledger snapshot, the logged-in user, the start config."""

from __future__ import annotations

from dataclasses import dataclass

from clgate.dashboard.config import Config
from clgate.dashboard.data import LedgerView
from clgate.dashboard.users import User


@dataclass(frozen=True)
class Context:
    config: Config
    view: LedgerView
    user: User | None

    def refusal(self, action: str) -> str | None:
        """Why this user may not `action` here (None if they may); the audit layer still decides."""
        if self.view.pending:
            return "the ledger is still being verified; no action can be signed on it yet"
        if not self.view.verified:
            return "the ledger fails verification; no action can be signed on it"
        if self.user is None:
            return "read-only: start the dashboard with --users and log in to act"
        if not self.user.may(action):
            return f"{self.user.name} is a {self.user.role} and may not {action}"
        return None
