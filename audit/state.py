"""What is deployed, what awaits approval, what needs re-audit: all derived from the ledger.

Nothing here is stored anywhere else. Replaying the verified entries in order is the only way
to learn which artifact is live, so the ledger cannot disagree with the deployment record.
Deployment has three slots: the base model, the adapter on it, and the memory store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

SLOT_OF_KIND = {"model": "base", "adapter": "adapter", "memory": "memory"}


class EntryView(Protocol):
    index: int
    type: str
    body: dict[str, Any]
    signer: str
    timestamp: str


@dataclass
class UpdateRecord:
    update_id: str
    kind: str
    proposed_index: int
    proposal: dict[str, Any]
    proposed_at: str
    decision: str | None = None
    audit_index: int | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    approvals_required: int = 1
    approvers_allowed: list[str] = field(default_factory=list)
    approvals: dict[str, int] = field(default_factory=dict)
    rejected_index: int | None = None
    promoted_index: int | None = None
    rolled_back_index: int | None = None

    @property
    def slot(self) -> str:
        return SLOT_OF_KIND[self.kind]

    @property
    def base(self) -> str | None:
        """Digest of the base model this update runs on (for a new base: itself)."""
        return self.proposal.get("base")

    @property
    def candidate_digest(self) -> str:
        return self.proposal["artifacts"]["candidate"]["digest"]

    @property
    def valid_approvals(self) -> list[str]:
        return [k for k in self.approvals if not self.approvers_allowed or k in self.approvers_allowed]

    @property
    def audited_since_rollback(self) -> bool:
        return self.rolled_back_index is None or (self.audit_index or -1) > self.rolled_back_index


@dataclass
class LedgerState:
    updates: dict[str, UpdateRecord] = field(default_factory=dict)
    deployed: dict[str, str] = field(default_factory=dict)  # slot -> update_id
    history: list[tuple[int, str, str, str]] = field(default_factory=list)  # index, action, slot, update_id
    scheduled_runs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @property
    def current_base(self) -> str | None:
        update_id = self.deployed.get("base")
        return self.updates[update_id].candidate_digest if update_id else None

    def pending_reaudit(self) -> list[UpdateRecord]:
        """Deployed or awaiting adapters and memories built on a base that is no longer deployed."""
        base = self.current_base
        return [
            u
            for u in self.updates.values()
            if u.kind != "model"
            and base is not None
            and u.base != base
            and (self.deployed.get(u.slot) == u.update_id or (u.decision and u.promoted_index is None))
        ]

    def pending_approval(self) -> list[UpdateRecord]:
        return [
            u
            for u in self.updates.values()
            if u.decision == "review" and u.promoted_index is None and u.rejected_index is None
        ]

    def find(self, ref: str) -> UpdateRecord | None:
        """An update by id, by candidate digest, or by the index of any entry about it."""
        if ref in self.updates:
            return self.updates[ref]
        matches = [u for u in self.updates.values() if u.candidate_digest in (ref, f"sha256:{ref}")]
        if ref.isdigit():
            matches += [u for u in self.updates.values() if int(ref) in _indices(u)]
        return matches[-1] if matches else None


def _indices(u: UpdateRecord) -> set[int]:
    return {
        i for i in (u.proposed_index, u.audit_index, u.promoted_index, u.rejected_index) if i is not None
    } | set(u.approvals.values())


def replay(entries: Iterable[EntryView]) -> LedgerState:
    state = LedgerState()
    for e in entries:
        body = e.body
        update = state.updates.get(body.get("update_id", ""))
        if e.type == "update.proposed":
            state.updates[body["update_id"]] = UpdateRecord(
                update_id=body["update_id"],
                kind=body["kind"],
                proposed_index=e.index,
                proposal=body,
                proposed_at=e.timestamp,
            )
        elif update is None:
            if e.type == "audit.scheduled_run":
                state.scheduled_runs.append((e.index, body))
            continue
        elif e.type == "audit.completed":
            update.decision, update.audit_index = body["verdict"], e.index
            update.findings, update.measurements = body.get("findings", []), body.get("measurements", {})
            update.approvals_required = body.get("approvals", {}).get("required", 1)
            update.approvers_allowed = body.get("approvals", {}).get("approvers", [])
            update.approvals, update.rejected_index = {}, None
        elif e.type == "promotion.approved":
            update.approvals.setdefault(e.signer, e.index)
        elif e.type == "promotion.blocked":
            update.rejected_index = e.index
        elif e.type == "promotion.done":
            state.deployed[update.slot] = update.update_id
            update.promoted_index = e.index
            state.history.append((e.index, "promote", update.slot, update.update_id))
        elif e.type == "rollback":
            replaced = state.updates.get(body.get("replaced", ""))
            if replaced is not None:
                replaced.rolled_back_index = e.index
                replaced.promoted_index = None
            state.deployed[update.slot] = update.update_id
            state.history.append((e.index, "rollback", update.slot, update.update_id))
        elif e.type == "audit.scheduled_run":
            state.scheduled_runs.append((e.index, body))
    return state
