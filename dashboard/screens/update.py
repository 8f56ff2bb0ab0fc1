"""One update: its findings, and every measurement behind them (special charts where known)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from clgate.audit import promotion_refusal, update_status
from clgate.dashboard.charts import SPECIAL_CHARTS
from clgate.dashboard.context import Context
from clgate.dashboard.selection import choose_update
from clgate.measurement import Measurement

FLIP_COLUMNS = ("parent_correct", "candidate_correct")
SCORE_COLUMNS = ("suspicion", "score")


def _details(m: Measurement) -> None:
    frame = m.details_frame()
    if frame.empty:
        return
    if set(FLIP_COLUMNS) <= set(frame.columns):
        flipped = frame[frame["parent_correct"] != frame["candidate_correct"]]
        st.markdown(f"**Flipped items** ({len(flipped)} of {len(frame)})")
        st.dataframe(flipped, hide_index=True)
    score = next((c for c in SCORE_COLUMNS if c in frame.columns), None)
    if score:
        st.markdown("**Most suspicious items**")
        st.dataframe(frame.sort_values(score, ascending=False).head(20), hide_index=True)
    with st.expander(f"All {len(frame)} detail rows"):
        st.dataframe(frame.head(5000), hide_index=True)


def _measurement(m: Measurement, key: str) -> None:
    if m.numbers:
        st.dataframe(
            pd.DataFrame({"number": list(m.numbers), "value": list(m.numbers.values())}), hide_index=True
        )
    for chart in SPECIAL_CHARTS:
        fig = chart(m)
        if fig is not None:
            st.plotly_chart(fig, key=f"{key}-{chart.__name__}")
    if "triggers" in m.meta:
        st.markdown("**Triggers found**")
        st.dataframe(pd.DataFrame({"trigger": m.meta["triggers"]}), hide_index=True)
    _details(m)
    other = {k: v for k, v in m.meta.items() if k != "triggers"}
    if other:
        st.json(other, expanded=False)


def render(ctx: Context) -> None:
    st.header("Update detail")
    state = ctx.view.state
    update = choose_update(
        ctx.view, sorted(state.updates.values(), key=lambda u: -u.proposed_index), "detail_update"
    )
    if update is None:
        st.info("The ledger holds no update yet.")
        return
    decision = update.decision or "not audited"
    show = {"promote": st.success, "review": st.warning}.get(decision, st.error)
    show(f"Decision: {decision.upper()} · {update_status(update, state)}")
    refusal = promotion_refusal(state, update)
    st.write(f"Promotion: {'allowed' if refusal is None else 'not allowed — ' + refusal}")
    st.caption(
        f"candidate {update.candidate_digest} · proposed at entry {update.proposed_index}, {update.proposed_at}"
    )

    st.subheader("Findings")
    if update.findings:
        st.dataframe(
            pd.DataFrame([f.model_dump(mode="json") for f in update.findings]).drop(
                columns=["schema_version"], errors="ignore"
            ),
            hide_index=True,
        )
    else:
        st.info("No findings recorded (not audited yet).")

    st.subheader("Evidence")
    for check, digest in sorted(update.measurements.items()):
        with st.expander(f"{check} · {digest[:23]}…", expanded=True):
            m = ctx.view.measurement(digest)
            if m is None:
                st.error(ctx.view.evidence_problems.get(digest, "evidence not available"))
            else:
                _measurement(m, f"{update.update_id}-{check}")
