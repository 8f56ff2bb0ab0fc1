"""The ledger itself: entries, live verification, inclusion proofs, checkpoint comparison."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from clgate.dashboard.context import Context
from clgate.ledger import Ledger, SeenHeads, load_trust, merkle


def _entries(ctx: Context) -> None:
    frame = pd.DataFrame([vars(r) for r in ctx.view.entries])
    if frame.empty:
        st.info("The ledger has no entries.")
        return
    types = sorted(frame["type"].unique())
    chosen = st.multiselect("Entry types", types, default=types, key="ledger_types")
    shown = frame[frame["type"].isin(chosen)]
    st.dataframe(shown.tail(2000).iloc[::-1], hide_index=True)
    st.caption(f"{len(shown)} matching entries (newest 2000 shown)")


def _proofs(ctx: Context, ledger: Ledger) -> None:
    """Proofs against the tree head that verified, and only the checkpoints that verification checked: the
    head row and checkpoint rows are the database's, and a row inserted there named witnesses who never
    cosigned."""
    if not ctx.view.verified:
        st.info("Proofs and checkpoints show once the ledger has verified.")
        return
    st.subheader("Inclusion proof")
    index = st.number_input("Entry", 0, max(ctx.view.size - 1, 0), ctx.view.size - 1, key="proof_index")
    size, root = ctx.view.size, bytes.fromhex(ctx.view.root)
    proof = ledger.inclusion_proof(int(index), size)
    ok = merkle.verify_inclusion(ledger.get(int(index)).leaf, int(index), size, proof, root)
    (st.success if ok else st.error)(
        f"entry {index} is {'included' if ok else 'NOT included'} in the tree of size {size}, root {root.hex()[:16]}…"
    )
    st.code("\n".join(h.hex() for h in proof) or "(empty proof: a one-entry tree)")

    st.subheader("Checkpoints")
    if not ctx.view.checkpoints:
        st.info("No signed checkpoint yet (`clgate ledger checkpoint`).")
        return
    for cp in ctx.view.checkpoints:
        proof = ledger.consistency_proof(cp.size, size)
        grown = merkle.verify_consistency(cp.size, size, cp.root, root, proof)
        cosigners = ", ".join(s.name for s in cp.signatures if s.name != cp.origin) or "no witness yet"
        (st.success if grown else st.error)(
            f"checkpoint of size {cp.size} (cosigned by: {cosigners}): "
            + ("the ledger only grew since" if grown else "NOT consistent with the ledger now")
        )


def render(ctx: Context) -> None:
    st.header("Ledger")
    cols = st.columns(4)
    cols[0].metric("Entries", ctx.view.size)
    cols[1].metric("Root", ctx.view.root[:12] + "…")
    cols[2].metric("Read in", f"{ctx.view.seconds:.2f} s")
    cols[3].metric("Verified in", "…" if ctx.view.pending else f"{ctx.view.verify_seconds:.2f} s")
    if st.button("Verify now", key="verify_now"):
        with Ledger.open(ctx.config.ledger, load_trust(ctx.config.trust)) as ledger:
            problems = ledger.verify(seen=SeenHeads())
        if problems:
            st.error(f"{len(problems)} problem(s)")
            for p in problems:
                st.write(f"- {p}")
        else:
            st.success("Verified: every signature, hash chain link and Merkle node recomputed.")
    if ctx.view.problems:
        st.subheader("Verification problems")
        for p in ctx.view.problems:
            st.write(f"- {p}")
    _entries(ctx)
    if ctx.view.size:
        with Ledger.open(ctx.config.ledger, load_trust(ctx.config.trust)) as ledger:
            _proofs(ctx, ledger)
