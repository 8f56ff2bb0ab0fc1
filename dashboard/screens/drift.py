"""Every audited number across the ledger history, with CIs and the thresholds each audit judged by."""

from __future__ import annotations

import streamlit as st

from clgate.dashboard.charts import drift_timeline
from clgate.dashboard.context import Context
from clgate.dashboard.drift import audit_policies, drift_frame, thresholds


def render(ctx: Context) -> None:
    st.header("Drift across updates")
    frame = drift_frame(ctx.view)
    if frame.empty:
        st.info("No audited measurements yet: drift appears once updates have gone through `clgate gate`.")
        return
    checks = sorted(frame["check"].unique())
    chosen = st.multiselect("Checks", checks, default=checks, key="drift_checks")
    policies = audit_policies(ctx.view)
    st.caption(
        "Dashed lines: the thresholds of the policy each audit judged by (the anchor's numbers compare with the deployment's first promoted base)."
    )
    for check in chosen:
        st.subheader(check)
        part = frame[frame["check"] == check]
        metrics = sorted(part["metric"].unique())
        cols = st.columns(2)
        for i, metric in enumerate(metrics):
            series = part[part["metric"] == metric]
            fig = drift_timeline(series, f"{check} / {metric}", thresholds(series, policies, check, metric))
            cols[i % 2].plotly_chart(fig, key=f"drift-{check}-{metric}")
    with st.expander("All numbers"):
        st.dataframe(frame, hide_index=True)
