"""What is deployed now (and what of it is stale after a base upgrade), what waits for a decision, the last
scheduled audit of each deployment, ledger health."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from clgate.audit import build_lineage, update_status
from clgate.audit.state import LedgerState
from clgate.dashboard.context import Context
from clgate.dashboard.lineage_graph import lineage_dot
from clgate.ledger import Decision, ScheduledRun


def render(ctx: Context) -> None:
    view, state = ctx.view, ctx.view.state
    st.header("Overview")
    cols = st.columns(4)
    cols[0].metric("Ledger entries", view.size)
    cols[1].metric("Updates", len(state.updates))
    cols[2].metric("Awaiting approval", len(state.pending_approval()))
    health = (
        "verifying…" if view.pending else "verified" if view.verified else f"{len(view.problems)} problem(s)"
    )
    cols[3].metric("Ledger", health)

    st.subheader("Deployed now")
    lineage = build_lineage(state)
    if lineage.bases:
        st.graphviz_chart(lineage_dot(lineage))
        st.caption(
            "Bases → the deployments that run each → the adapter and memory each runs on it. Yellow: stale "
            "(built on another base than its deployment runs now), with how far its re-audit got."
        )
    slots = {(d.name, s.slot): s for b in lineage.bases for d in b.deployments for s in d.slots}
    deployed = [
        (dep, slot, uid)
        for dep in state.governance.deployments()
        for slot, uid in state.deployed(dep).items()
    ]
    if deployed:
        rows = []
        for deployment, slot, update_id in deployed:
            u = state.updates[update_id]
            since = max(
                e.index
                for e in state.history
                if e.deployment == deployment and e.slot == slot and e.update_id == update_id
            )
            node = slots.get((deployment, slot))
            rows.append(
                {
                    "deployment": deployment,
                    "slot": slot,
                    "update": update_id,
                    "kind": u.kind,
                    "lineage": f"stale: re-audit {node.reaudit}" if node and node.stale else "current",
                    "artifact": u.proposal.candidate.uri,
                    "digest": u.candidate_digest,
                    "since entry": since,
                    "since": view.entries[since].timestamp,
                }
            )
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    else:
        st.info("Nothing has been promoted yet.")

    st.subheader("Updates and their decisions")
    undeployed = [u for u in state.updates.values() if not state.is_deployed(u)]
    if undeployed:
        rows = [
            {
                "update": u.update_id,
                "kind": u.kind,
                "decision": u.decision or "not audited",
                "status": update_status(u, state),
                "proposed": u.proposed_at,
                "failing rules": ", ".join(f.rule for f in u.findings if f.status.value == "fail"),
            }
            for u in reversed(undeployed)
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    else:
        st.info("No update is waiting.")

    st.subheader("Last scheduled audit of each deployment")
    latest = {run.deployment: (index, run) for index, run in state.scheduled_runs}
    for deployment, (index, run) in sorted(
        latest.items()
    ):  # one deployment's clean run hides no other's block
        decision = run.verdict.value
        show = {"promote": st.success, "review": st.warning}.get(decision, st.error)
        show(f"{deployment}: entry {index} at {view.entries[index].timestamp}: {decision}")
        for f in run.findings:
            st.write(f"- `{f.status.value}` {f.rule}: {f.reason}")
        failed = _blocked_since_deployed(state, deployment)
        if failed is not None and failed[0] != index:  # nor does a later clean run hide this one's
            st.error(f"{deployment}: entry {failed[0]}, since what it runs was deployed, blocked: "
                     + "; ".join(f.reason for f in failed[1].findings if f.status.value == "fail"))  # fmt: skip
    if not latest:
        st.info("No scheduled audit has run (`clgate audit run`).")


def _blocked_since_deployed(state: LedgerState, deployment: str) -> tuple[int, ScheduledRun] | None:
    """The last scheduled run of `deployment` that blocked since its last promotion or rollback, if any:
    whoever may record a run (a gate or auditor key) could otherwise bury a failed one under a clean one."""
    changed = max((e.index for e in state.history if e.deployment == deployment), default=-1)
    blocked = [(i, run) for i, run in state.scheduled_runs
               if run.deployment == deployment and i > changed and run.verdict is Decision.BLOCK]  # fmt: skip
    return blocked[-1] if blocked else None
