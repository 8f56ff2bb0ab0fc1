"""Judgement and the record of it: policies, the gate, decisions, scheduled audits, reports.

This is the layer's public face; the CLI modules (`*_cli.py`) are thin wrappers over it, and the
dashboard reads and acts only through what is listed here.
"""

from clgate.audit.actions import approve, promote, promotion_refusal, reject, rollback
from clgate.audit.fanout import reaudit_progress
from clgate.audit.gate import GateRequest, GateRun, Proposed, propose, run_gate
from clgate.audit.journal import Journal, evidence_store, require_trust
from clgate.audit.policy import Policy, load_policy, parse_policy
from clgate.audit.reports import ComplianceReport, build_report, update_status, write_report
from clgate.audit.result import GateResult
from clgate.audit.schedule import ScheduledAudit, scheduled_audit
from clgate.audit.state import LedgerState, replay
from clgate.audit.verdict import Decision, Finding, Status, Verdict

__all__ = [
    "ComplianceReport",
    "Decision",
    "Finding",
    "GateRequest",
    "GateResult",
    "GateRun",
    "Journal",
    "LedgerState",
    "Policy",
    "Proposed",
    "ScheduledAudit",
    "Status",
    "Verdict",
    "approve",
    "build_report",
    "evidence_store",
    "load_policy",
    "parse_policy",
    "promote",
    "promotion_refusal",
    "propose",
    "reaudit_progress",
    "reject",
    "replay",
    "require_trust",
    "rollback",
    "run_gate",
    "scheduled_audit",
    "update_status",
    "write_report",
]
