"""The dashboard's pages, in menu order; each is a module with `render(ctx)`.

Not named `pages/`: Streamlit would turn a `pages/` folder beside app.py into its own menu.
"""

from clgate.dashboard.screens import approvals, drift, ledger, overview, reports, update

PAGES = {
    "Overview": overview.render,
    "Drift": drift.render,
    "Update detail": update.render,
    "Ledger": ledger.render,
    "Approvals": approvals.render,
    "Reports": reports.render,
}

__all__ = ["PAGES"]
