"""Log in against the users file; without one the dashboard is read-only for everyone."""

from __future__ import annotations

import streamlit as st

from clgate.dashboard.config import Config
from clgate.dashboard.users import LoginThrottle, User, authenticate, load_users
from clgate.errors import ClgateError

SESSION_KEY = "clgate_user"


@st.cache_resource
def _throttle(users_file: str) -> LoginThrottle:
    """One throttle per users file for the whole app process: every session's failures count."""
    return LoginThrottle()


def current_user(config: Config) -> User | None:
    """The logged-in user; shows the login form and stops the page while nobody is."""
    if config.users is None:
        st.sidebar.caption("Read-only: no users file (--users), nobody can sign.")
        return None
    users = load_users(config.users)
    user = st.session_state.get(SESSION_KEY)
    if user is not None and user.login in users:
        st.sidebar.write(f"Logged in as **{user.name}** ({user.role})")
        if st.sidebar.button("Log out", key="logout"):
            del st.session_state[SESSION_KEY]
            st.rerun()
        return users[user.login]
    with st.form("login"):
        st.subheader("Log in")
        login = st.text_input("User", key="login_user")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        try:
            st.session_state[SESSION_KEY] = authenticate(users, login, password, _throttle(str(config.users)))
        except ClgateError as exc:
            st.error(str(exc))
        else:
            st.rerun()
    st.stop()
