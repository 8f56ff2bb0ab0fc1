"""Choosing an update on a page; `?update=ID` in the URL preselects it (deep links, browser tests)."""

from __future__ import annotations

import streamlit as st

from clgate.dashboard.data import LedgerView
from clgate.ledger import UpdateState


def choose_update(view: LedgerView, updates: list[UpdateState], key: str) -> UpdateState | None:
    if not updates:
        return None
    ids = [u.update_id for u in updates]
    wanted = st.query_params.get("update")
    index = ids.index(wanted) if wanted in ids else 0
    labels = {u.update_id: f"{u.update_id} · {u.kind} · {u.decision or 'not audited'}" for u in updates}
    chosen = st.selectbox("Update", ids, index=index, format_func=labels.__getitem__, key=key)
    return view.state.updates[chosen]
