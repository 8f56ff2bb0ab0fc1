"""Approve, block, promote, roll back: signed with the user's own key, decided by the ledger.

A button is disabled when the rules would refuse (their reason is shown), but clicking is never
trusted: every action goes through `clgate.audit.actions`, and the ledger checks it again inside
the append. The user types their key's passphrase for each action; it is used once and never kept,
so n-of-m approval needs n people, not one server.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from clgate.audit import Journal, actions, update_status
from clgate.dashboard.context import Context
from clgate.dashboard.selection import choose_update
from clgate.errors import ClgateError
from clgate.ledger import UpdateState

FLASH = "approvals_flash"
PASSPHRASE = "approvals_passphrase"
_FORGET = "approvals_forget_passphrase"


def _act(ctx: Context, action: str, run: Callable[[Journal], int]) -> None:
    """Sign one action; the outcome is shown after the rerun that picks up the new entry."""
    refusal = ctx.refusal(action)
    if refusal:
        st.session_state[FLASH] = ("error", f"{action} refused: {refusal}")
        return
    assert ctx.user is not None
    passphrase = st.session_state.get(PASSPHRASE, "")
    st.session_state[_FORGET] = True  # the field is cleared before it is drawn again
    try:
        signer = ctx.user.signing_key(passphrase)
        with Journal.open(ctx.config.ledger, signer, ctx.config.trust) as journal:
            index = run(journal)
    except ClgateError as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    st.session_state[FLASH] = ("success", f"{action} signed by {ctx.user.name} as ledger entry {index}")
    st.rerun()


def _controls(ctx: Context, update: UpdateState) -> None:
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
        reason = st.text_input("Block reason", key="block_reason")
        cannot = ctx.refusal("block")
        if st.button("Block", key="block", disabled=cannot is not None, help=cannot):
            _act(ctx, "block", lambda j: actions.block(j, ref, reason))


def _rollback(ctx: Context) -> None:
    state = ctx.view.state
    targets = [
        state.updates[uid]
        for uid in dict.fromkeys(e.update_id for e in reversed(state.history))
        if state.governance.rollback_refusal(state.updates[uid]) is None
    ]
    st.subheader("Roll back")
    if not targets:
        st.info("Nothing to roll back to: no previously deployed update may return without a new proposal.")
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
    if st.session_state.pop(_FORGET, False):
        st.session_state.pop(PASSPHRASE, None)
    if who is not None and who.key is not None:
        st.text_input(
            "Your key's passphrase (asked for each action, never kept)", type="password", key=PASSPHRASE
        )
    if who is not None and not who.may("approve"):
        st.info(f"{who.name} is a viewer: approvals are disabled.")
    state = ctx.view.state
    open_updates = sorted(
        (u for u in state.updates.values() if u.decision and not state.is_deployed(u)),
        key=lambda u: -u.proposed_index,
    )
    update = choose_update(ctx.view, open_updates, "approvals_update")
    if update is None:
        st.info("No audited update awaits a decision.")
    else:
        st.write(
            f"**{update.update_id}** ({update.kind}): decision **{update.decision}**, "
            f"{update_status(update, state)}; approvals: {len(state.valid_approvals(update))} of {update.approvals_required}"
        )
        _controls(ctx, update)
    _rollback(ctx)
