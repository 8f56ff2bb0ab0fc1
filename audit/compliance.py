"""Compliance reports: what the ledger proves about a period, for a regulator or an auditor.

A report is built only from a verified ledger (`Journal.open` refuses a tampered one) and the
evidence pinned in it by digest. It lists every update touched in the period with the evidence
behind its verdict, the scheduled audits, the ledger's checkpoint and proofs, and maps all of it
to EU AI Act, NIST AI RMF and ISO/IEC 42001 clauses, saying plainly where clgate has no evidence.
The same data renders to JSON (machines), HTML (people) and PDF (the HTML through weasyprint).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, Field

import clgate
from clgate.atomic import write_bytes_atomic
from clgate.audit.journal import Journal
from clgate.audit.state import LedgerState, replay
from clgate.errors import ClgateError, InputError, IntegrityError
from clgate.ledger import LedgerEntry, UpdateState, merkle
from clgate.redact import display_target


class ReportFormat(StrEnum):
    """What a compliance report is written as: JSON for tools, HTML to read, PDF to file."""

    json = "json"
    html = "html"
    pdf = "pdf"


UPDATE_EVENTS = (
    "update.proposed",
    "audit.completed",
    "promotion.approved",
    "promotion.blocked",
    "promotion.done",
    "rollback",
)

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("clgate.audit", "templates"),
    autoescape=jinja2.select_autoescape(["html.j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class Event(BaseModel):
    index: int
    type: str
    timestamp: str
    signer: str
    note: str = ""


class Evidence(BaseModel):
    """One measurement behind a verdict: its digest in the ledger and, if readable, its numbers."""

    check: str
    digest: str
    numbers: dict[str, float] = Field(default_factory=dict)
    problem: str | None = None


class UpdateSection(BaseModel):
    update_id: str
    kind: str
    candidate: str
    base: str | None
    decision: str | None
    status: str
    findings: list[dict[str, Any]]
    evidence: list[Evidence]
    events: list[Event]


class ScheduledSection(BaseModel):
    index: int
    timestamp: str
    deployment: str
    decision: str
    findings: list[dict[str, Any]]
    evidence: list[Evidence]


class CheckpointInfo(BaseModel):
    size: int
    root: str
    note: str  # the C2SP signed note, with the log's signature and every witness cosignature
    witnesses: list[str]
    consistency_proof: list[str]


class Verification(BaseModel):
    verified: bool
    size: int
    root: str
    log_id: str
    checkpoint: CheckpointInfo | None
    inclusion_proofs: dict[int, list[str]]


class MappingRow(BaseModel):
    framework: str
    clause: str
    requirement: str
    status: Literal["evidence", "partial", "none"]
    evidence: str
    gap: str


class ComplianceReport(BaseModel):
    schema_version: int = 2
    generated_at: str
    clgate_version: str
    ledger: str
    period_start: date
    period_end: date
    counts: dict[str, int]
    dated_outside: list[Event] = []
    """Entries of the period whose signer dated them outside it: the period is the run of entries between
    the first and last dated in it, so an entry a wrong clock dated elsewhere is still reported, and named."""
    updates: list[UpdateSection]
    scheduled: list[ScheduledSection]
    verification: Verification
    mapping: list[MappingRow]


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not a date like 2025-01-31") from None


def update_status(u: UpdateState, state: LedgerState) -> str:
    """Where an update stands, in words a release manager uses."""
    if state.is_deployed(u):
        return "deployed"
    if u.rolled_back_index is not None:
        return "rolled back"
    if u.decision == "block" or u.blocked_index is not None:
        return "blocked"
    if u.promoted_index is not None:
        return "promoted, since replaced"
    if u.decision == "review":
        return f"awaiting approval ({len(state.valid_approvals(u))} of {u.approvals_required})"
    return "audited, not promoted" if u.decision else "proposed, not audited"


def _evidence(journal: Journal, measurements: dict[str, str], state: LedgerState) -> list[Evidence]:
    erased = {d: e for e in state.governance.erasures.values() for d in e.evidence_removed}
    out = []
    for check, digest in sorted(measurements.items()):
        try:  # held and as recorded: its numbers, whatever an erasure entry lists
            m = journal.evidence.get(digest)
        except ClgateError as exc:
            out.append(Evidence(check=check, digest=digest, problem=str(exc)))
            continue
        if m is not None:
            out.append(Evidence(check=check, digest=digest, numbers=m.numbers))
        elif digest in erased:
            by = erased[digest]
            why = f"removed by erasure request {by.request.request_id} (entry {by.done_index}): it quoted erased data"
            out.append(Evidence(check=check, digest=digest, problem=why))
        else:
            out.append(Evidence(check=check, digest=digest, problem="evidence file missing"))
    return out


def _event_note(e: LedgerEntry) -> str:
    body = e.body
    if e.type == "audit.completed":
        policy = body.get("policy", {})
        return f"decision {body.get('verdict')} under policy {policy.get('name', '?')} ({policy.get('digest', '?')[:19]}…)"
    return str(body.get("reason") or body.get("note") or "")


def _verification(journal: Journal, entries: list[LedgerEntry], cited: list[int]) -> Verification:
    """What the verification at open vouched for (its size, root and checkpoints), with proofs served from
    the store, each checked against that root: a database writer who changed the stored nodes or
    checkpoints since cannot put a proof that fails, or a witness nobody verified, in the report."""
    ledger, size, root = journal.ledger, journal.verified_size, journal.verified_root
    checkpoint = None
    stored = [cp for cp in journal.verified_checkpoints if cp.size <= size]
    if stored:
        cp = max(stored, key=lambda c: c.size)
        proof = ledger.consistency_proof(cp.size, size)
        if not merkle.verify_consistency(cp.size, size, cp.root, root, proof):
            raise IntegrityError(_CHANGED)
        checkpoint = CheckpointInfo(
            size=cp.size,
            root=cp.root.hex(),
            note=cp.to_text(),
            witnesses=[s.name for s in cp.signatures if s.name != cp.origin],
            consistency_proof=[h.hex() for h in proof],
        )
    proofs = {i: ledger.inclusion_proof(i, size) for i in cited}
    if not all(merkle.verify_inclusion(entries[i].leaf, i, size, p, root) for i, p in proofs.items()):
        raise IntegrityError(_CHANGED)
    return Verification(
        verified=True,  # Journal.open refuses a ledger with any problem
        size=size,
        root=root.hex(),
        log_id=entries[0].entry_hash,  # as `Ledger.log_id`, from the entry that verified
        checkpoint=checkpoint,
        inclusion_proofs={i: [h.hex() for h in p] for i, p in proofs.items()},
    )


_CHANGED = "the ledger's stored proofs changed after it verified; run `clgate ledger verify`"


def _indices(rows: list[Any]) -> str:
    return ", ".join(str(r) for r in rows[:12]) + (f" and {len(rows) - 12} more" if len(rows) > 12 else "")


def _mapping(r: ComplianceReport) -> list[MappingRow]:
    audits = sorted(e.index for u in r.updates for e in u.events if e.type == "audit.completed")
    actions = sorted(
        e.index
        for u in r.updates
        for e in u.events
        if e.type in ("promotion.approved", "promotion.blocked", "promotion.done", "rollback")
    )
    checks = sorted({ev.check for u in r.updates for ev in u.evidence})
    poison = [c for c in checks if c.startswith("poison")]
    runs = [s.index for s in r.scheduled]
    cp = r.verification.checkpoint
    log = (
        f"{r.counts['entries']} signed entries in the period; whole ledger ({r.verification.size} entries, "
        f"root {r.verification.root[:16]}…) verified"
        + (
            f"; signed checkpoint at size {cp.size} with consistency proof"
            if cp
            else "; no signed checkpoint"
        )
    )
    no_audit = "no audit in the period"

    def row(fw: str, clause: str, req: str, ok: bool, partial: bool, evidence: str, gap: str) -> MappingRow:
        status = "evidence" if ok else "partial" if partial else "none"
        return MappingRow(
            framework=fw, clause=clause, requirement=req, status=status, evidence=evidence, gap=gap
        )

    measured = f"audit entries {_indices(audits)}; checks {', '.join(checks)}" if audits else no_audit
    return [
        row("EU AI Act", "Art. 12", "Record-keeping: automatic logging of events over the lifetime",
            r.counts["entries"] > 0, False, log,
            "Logs only model updates and audits; inference-time events are not recorded by clgate."),
        row("EU AI Act", "Art. 15", "Accuracy, robustness and cybersecurity",
            bool(audits) and bool(poison), bool(audits),
            measured + (f"; poisoning scans: {', '.join(poison)}" if poison else "; no poisoning scan"),
            "Declared accuracy levels, adversarial testing of the serving stack and infrastructure security "
            "are outside clgate."),
        row("EU AI Act", "Art. 72", "Post-market monitoring",
            bool(runs), False,
            f"scheduled audit entries {_indices(runs)}" if runs else "no scheduled audit in the period",
            "The post-market monitoring plan itself and incident reporting are not produced by clgate."),
        row("NIST AI RMF", "Govern", "Policies, accountability, roles",
            bool(audits), False,
            f"adopted policy pinned by digest in each audit entry; separate keys per role (pipeline, gate, approver); "
            f"signed approvals, blocks, promotions and rollbacks at entries {_indices(actions)}"
            if audits else no_audit,
            "Organisational governance (risk tolerance, training, culture) has no evidence in clgate."),
        row("NIST AI RMF", "Map", "Context, intended use, risk identification",
            False, bool(r.updates),
            f"update kind and lineage (base digest) of {len(r.updates)} update(s)" if r.updates else "none",
            "clgate records what changed, not the intended use, context or impact assessment."),
        row("NIST AI RMF", "Measure", "Measure and monitor risks",
            bool(audits), False, measured, "Only the metrics configured in the policy are measured."),
        row("NIST AI RMF", "Manage", "Prioritise and act on risks",
            bool(actions), bool(audits),
            f"block, approval, promotion and rollback entries {_indices(actions)}" if actions
            else "audits only, no block, approval, promotion or rollback entry",
            "Risk response outside model updates (e.g. user communication) is not recorded."),
        row("ISO/IEC 42001", "A.6.2.4", "AI system verification and validation",
            bool(audits), False, measured, "Validation against stakeholder requirements is not covered."),
        row("ISO/IEC 42001", "A.6.2.5 / A.6.2.6", "Deployment; operation and monitoring",
            bool(actions) and bool(runs), bool(actions) or bool(runs),
            f"promotions/rollbacks at {_indices(actions) or 'none'}; scheduled audits at {_indices(runs) or 'none'}",
            "Operational monitoring beyond scheduled audits (latency, incidents) is outside clgate."),
        row("ISO/IEC 42001", "A.6.2.8", "Recording of event logs", r.counts["entries"] > 0, False, log,
            "Same limit as Art. 12: update events only."),
        row("ISO/IEC 42001", "A.7.2 / A.7.6", "Data for AI systems: acquisition, provenance, erasure",
            r.counts["erasures_done"] > 0, r.counts["erasures_requested"] > 0,
            f"{r.counts['erasures_requested']} erasure request(s), {r.counts['erasures_done']} proven done "
            "(deployed memory rescanned by digest; updates trained on the data never redeployed), "
            f"{r.counts['erasures_withdrawn']} withdrawal signature(s) by admins",
            "Erasure covers the deployed memory, the audit evidence and which weight updates must be retrained; "
            "copies outside the ledger (report folders, training pipelines) are the operator's."),
        row("ISO/IEC 42001", "Clauses 5, 6.1.4, 8.4", "Leadership, AI risk and impact assessment",
            False, False, "none", "clgate provides no evidence for these clauses."),
    ]  # fmt: skip


def build_report(journal: Journal, start: date, end: date, label: str) -> ComplianceReport:
    """Everything the ledger proves about [start, end] (inclusive UTC days)."""
    if end < start:
        raise InputError(f"--to {end} is before --from {start}")
    entries = journal.verified_entries()
    if not entries:
        raise InputError(f"{display_target(label)}: the ledger is empty")
    # each signer's clock sets its entries' timestamps: the period is the run of entries from the first
    # dated in it to the last, and the state is replayed up to that one, never a selection a clock set
    # to 2099 (or to last year) could leave a proposal or a promotion out of
    after = [e.index for e in entries if e.timestamp[:10] >= start.isoformat()]
    before = [e.index for e in entries if e.timestamp[:10] <= end.isoformat()]
    if not after or not before or after[0] > before[-1]:
        raise InputError(
            f"no ledger entries between {start} and {end} "
            f"(the ledger spans {entries[0].timestamp[:10]} to {entries[-1].timestamp[:10]})"
        )
    in_period = entries[after[0] : before[-1] + 1]
    state = replay(entries[: before[-1] + 1], journal.ledger.trust)
    names = {kid: k.name or kid[:12] for kid, k in state.governance.ring.keys.items()}
    events: dict[str, list[Event]] = {}
    for e in in_period:
        if e.type in UPDATE_EVENTS and "update_id" in e.body:
            events.setdefault(e.body["update_id"], []).append(
                Event(
                    index=e.index,
                    type=e.type,
                    timestamp=e.timestamp,
                    signer=names.get(e.signer, e.signer[:12]),
                    note=_event_note(e),
                )
            )
    updates = [
        UpdateSection(
            update_id=u.update_id,
            kind=u.kind,
            candidate=u.candidate_digest,
            base=u.base,
            decision=u.decision,
            status=update_status(u, state),
            findings=[f.model_dump(mode="json") for f in u.findings],
            evidence=_evidence(journal, u.measurements, state),
            events=events[u.update_id],
        )
        for u in state.updates.values()
        if u.update_id in events
    ]
    period_indices = {e.index for e in in_period}
    dated_outside = [
        Event(index=e.index, type=e.type, timestamp=e.timestamp, signer=names.get(e.signer, e.signer[:12]))
        for e in in_period
        if not start.isoformat() <= e.timestamp[:10] <= end.isoformat()
    ]
    scheduled = [
        ScheduledSection(
            index=i,
            timestamp=entries[i].timestamp,
            deployment=run.deployment,
            decision=run.verdict.value,
            findings=[f.model_dump(mode="json") for f in run.findings],
            evidence=_evidence(journal, run.measurements, state),
        )
        for i, run in state.scheduled_runs
        if i in period_indices
    ]
    cited = sorted({e.index for u in updates for e in u.events} | {s.index for s in scheduled})
    counts = {
        "entries": len(in_period),
        "proposed": sum(e.type == "update.proposed" for e in in_period),
        "audited": sum(e.type == "audit.completed" for e in in_period),
        "approvals": sum(e.type == "promotion.approved" for e in in_period),
        "blocked": sum(e.type == "promotion.blocked" for e in in_period),
        "promoted": sum(e.type == "promotion.done" for e in in_period),
        "rolled_back": sum(e.type == "rollback" for e in in_period),
        "scheduled_runs": len(scheduled),
        "erasures_requested": sum(e.type == "erasure.requested" for e in in_period),
        "erasures_done": sum(e.type == "erasure.done" for e in in_period),
        "erasures_withdrawn": sum(e.type == "erasure.withdrawn" for e in in_period),
    }
    report = ComplianceReport(
        generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        clgate_version=clgate.__version__,
        ledger=display_target(label),
        period_start=start,
        period_end=end,
        counts=counts,
        dated_outside=dated_outside,
        updates=updates,
        scheduled=scheduled,
        verification=_verification(journal, entries, cited),
        mapping=[],
    )
    return report.model_copy(update={"mapping": _mapping(report)})


def render_html(report: ComplianceReport) -> str:
    return _TEMPLATES.get_template("report.html.j2").render(r=report)


def render(report: ComplianceReport, fmt: ReportFormat | str) -> bytes:
    """The report as bytes in `fmt` (json, html or pdf)."""
    if fmt == "json":
        return report.model_dump_json(indent=2).encode()
    if fmt == "html":
        return render_html(report).encode()
    if fmt == "pdf":
        from weasyprint import HTML

        return HTML(string=render_html(report)).write_pdf()
    raise InputError(f"unknown report format {fmt!r} (use {', '.join(ReportFormat)})")


def write_report(report: ComplianceReport, fmt: ReportFormat | str, out: Path) -> Path:
    return write_bytes_atomic(out, render(report, fmt), mode=0o644)  # a report is meant to be shared
