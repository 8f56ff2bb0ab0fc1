"""Generate and download a compliance report (`clgate.audit.compliance`) for a period."""

from __future__ import annotations

from datetime import date

import streamlit as st

from clgate.audit import Journal
from clgate.audit.compliance import ReportFormat, build_report
from clgate.audit.compliance import render as render_report
from clgate.dashboard.context import Context
from clgate.errors import ClgateError

MIME = {"json": "application/json", "html": "text/html", "pdf": "application/pdf"}


def render(ctx: Context) -> None:
    st.header("Compliance report")
    entries = ctx.view.entries
    first = date.fromisoformat(entries[0].timestamp[:10]) if entries else date.today()
    last = date.fromisoformat(entries[-1].timestamp[:10]) if entries else date.today()
    cols = st.columns(3)
    start = cols[0].date_input("From", first, key="report_from")
    end = cols[1].date_input("To", last, key="report_to")
    fmt = cols[2].selectbox(
        "Format", list(ReportFormat), index=list(ReportFormat).index(ReportFormat.html), key="report_format"
    )
    if st.button("Generate", key="report_generate"):
        try:
            with Journal.open(ctx.config.ledger, None, ctx.config.trust) as journal:
                report = build_report(journal, start, end, ctx.config.ledger)
            data = render_report(report, fmt)
        except ClgateError as exc:
            st.error(str(exc))
            return
        st.success(f"{len(report.updates)} update(s), {report.counts['entries']} entries in the period")
        st.download_button(
            "Download",
            data,
            file_name=f"clgate-report-{start}-{end}.{fmt}",
            mime=MIME[fmt],
            key="report_download",
        )
