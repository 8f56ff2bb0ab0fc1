"""Judgement and the record of it: policies, the gate, decisions, scheduled audits, reports.

This is the layer's public face; the CLI modules (`*_cli.py`) are thin wrappers over it, and the
dashboard reads and acts only through what is listed here.
"""

import lazy_loader

# Names are imported from their modules on first use: one command does not load what only others need.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "actions": ["approve", "block", "promote", "promotion_refusal", "rollback"],
        "gate": ["GateRequest", "GateRun", "Proposed", "propose", "run_gate"],
        "journal": ["Journal", "evidence_store", "require_trust"],
        "lineage": ["BaseNode", "DeploymentNode", "Lineage", "SlotNode", "build_lineage"],
        "policy": ["Policy", "load_policy", "parse_policy"],
        "compliance": ["ComplianceReport", "build_report", "update_status", "write_report"],
        "result": ["GateResult"],
        "schedule": ["ScheduledAudit", "scheduled_audit"],
        "state": ["LedgerState", "replay"],
        "verdict": ["Decision", "Finding", "Status", "Verdict"],
    },
)
