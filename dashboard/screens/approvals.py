"""Approve, reject, promote, roll back: signed with the user's key, decided by `clgate.audit`.

A button is disabled when the audit layer would refuse (its reason is shown), but clicking is
never trusted: every action goes through `clgate.audit.actions`, which checks again.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from clgate.audit import actions
from clgate.audit.gate_cli import open_journal
from clgate.audit.journal import Journal
from clgate.audit.reports import update_status
from clgate.audit.state import UpdateRecord
from clgate.dashboard.context import Context
from clgate.dashboard.selection import choose_update
from clgate.errors import ClgateError

FLASH = "approvals_flash"


def _act(ctx: Context, action: str, run: Callable[[Journal], int]) -> None:
    """Sign one action; the outcome is shown after the rerun that picks up the new entry."""
    refusal = ctx.refusal(action)
    if refusal:
        st.session_state[FLASH] = ("error", f"{action} refused: {refusal}")
        return
    assert ctx.user is not None and ctx.user.key is not None
    try:
        with open_journal(ctx.config.ledger, ctx.user.key, ctx.config.trust) as journal:
            index = run(journal)
    except ClgateError as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    st.session_state[FLASH] = ("success", f"{action} signed by {ctx.user.name} as ledger entry {index}")
    st.rerun()


def _controls(ctx: Context, update: UpdateRecord) -> None:
    state, ref = ctx.view.state, update.update_id
    cols = st.columns(2)
    with cols[0]:
        note = st.text_input("Approval note", key="approve_note")
        cannot = ctx.refusal("approve") or (
            "a block cannot be approved" if update.decision == "block" else None
        )
        if st.button("Approve", key="approve", disabled=cannot is not None, help=cannot):
            _act(ctx, "approve", lambda j: actions.approve(j, ref, note))
        refusal = ctx.refusal("promote") or actions.promotion_refusal(state, update)
        if refusal:
            st.warning(f"Promotion not allowed: {refusal}")
        if st.button("Promote", key="promote", type="primary", disabled=refusal is not None, help=refusal):
            _act(ctx, "promote", lambda j: actions.promote(j, ref))
    with cols[1]:
        reason = st.text_input("Rejection reason", key="reject_reason")
        cannot = ctx.refusal("reject")
        if st.button("Reject", key="reject", disabled=cannot is not None, help=cannot):
            _act(ctx, "reject", lambda j: actions.reject(j, ref, reason))


def _rollback(ctx: Context) -> None:
    state = ctx.view.state
    targets = [
        state.updates[uid]
        for uid in dict.fromkeys(uid for _, _, _, uid in reversed(state.history))
        if state.deployed.get(state.updates[uid].slot) != uid
    ]
    st.subheader("Roll back")
    if not targets:
        st.info("Nothing to roll back to: no previously deployed update is out of service.")
        return
    target = st.selectbox(
        "Restore", targets, format_func=lambda u: f"{u.update_id} · {u.slot}", key="rollback_target"
    )
    reason = st.text_input("Rollback reason", key="rollback_reason")
    cannot = ctx.refusal("rollback")
    if st.button("Roll back", key="rollback", disabled=cannot is not None, help=cannot):
        _act(ctx, "rollback", lambda j: actions.rollback(j, target.update_id, reason))


def render(ctx: Context) -> None:
    st.header("Approvals")
    # A signed action changes the ledger, so the next draw is pending and is followed by the
    # verified one: keep the message until then.
    flash = st.session_state.get(FLASH) if ctx.view.pending else st.session_state.pop(FLASH, None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    who = ctx.user
    st.caption(f"Signed as {who.name} ({who.role})" if who else "Read-only: no user logged in")
    if who is not None and not who.may("approve"):
        st.info(f"{who.name} is a viewer: approvals are disabled.")
    state = ctx.view.state
    open_updates = sorted(
        (u for u in state.updates.values() if u.decision and state.deployed.get(u.slot) != u.update_id),
        key=lambda u: -u.proposed_index,
    )
    update = choose_update(ctx.view, open_updates, "approvals_update")
    if update is None:
        st.info("No audited update awaits a decision.")
    else:
        st.write(
            f"**{update.update_id}** ({update.kind}): verdict **{update.decision}**, "
            f"{update_status(update, state)}; approvals: {len(update.valid_approvals)} of {update.approvals_required}"
        )
        _controls(ctx, update)
    _rollback(ctx)
