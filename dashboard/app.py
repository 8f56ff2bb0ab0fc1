"""The dashboard script: `streamlit run app.py -- --ledger DB [--trust T] [--users U]`.

`clgate dashboard` starts it. Pages are chosen in the sidebar or with `?page=Drift&update=ID`
in the URL. A new ledger state is drawn from a bare read first, with actions disabled, then
verified and drawn again. Any clgate error becomes a message on the page, never a traceback.
"""

from __future__ import annotations

import sys

import streamlit as st

from clgate.dashboard.config import parse_config
from clgate.dashboard.context import Context
from clgate.dashboard.data import load_snapshot
from clgate.dashboard.login import current_user
from clgate.dashboard.screens import PAGES
from clgate.errors import ClgateError
from clgate.redact import mask_secrets


def _page() -> str:
    names = list(PAGES)
    wanted = st.query_params.get("page")
    index = names.index(wanted) if wanted in names else 0
    page = st.sidebar.radio("Page", names, index=index, key="page")
    st.query_params["page"] = page
    return page


def main(argv: list[str]) -> None:
    st.set_page_config(page_title="clgate auditor dashboard", layout="wide")
    st.sidebar.title("clgate")
    try:
        config = parse_config(argv)
        user = current_user(config)
        snapshot = load_snapshot(config.ledger, config.trust)
        view = snapshot.view
        page = _page()
        st.sidebar.caption(f"{config.ledger_label} · {view.size} entries")
        if view.pending:
            st.info(
                "Verifying the ledger (every signature, hash link and Merkle node)… "
                "Until it is verified nothing on it can be trusted, and approvals are disabled."
            )
        elif not view.verified:
            st.error(
                f"⚠ The ledger FAILS verification ({len(view.problems)} problem(s), first: {view.problems[0]}). "
                "Nothing on it can be trusted, and approvals are disabled."
            )
        if view.size == 0:
            st.warning("The ledger is empty: create one with `clgate ledger init` or `clgate demo`.")
        PAGES[page](Context(config, view, user))
        if view.pending:  # the page is up; verify now, then draw it again with the result
            snapshot.verify()
            st.rerun()
    except ClgateError as exc:
        st.error(mask_secrets(str(exc), *argv))
    except Exception as exc:  # never a traceback on the page
        st.error(mask_secrets(f"unexpected error: {type(exc).__name__}: {exc}", *argv))


main(sys.argv[1:])
