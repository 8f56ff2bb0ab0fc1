"""What is deployed, what awaits approval, what needs re-audit: all derived from the ledger.

Nothing here is stored anywhere else. The ledger's own governance rules (`clgate.ledger.Governance`)
replay its entries in order, ignoring any that the rules forbid; this module adds the views people
and tools ask for. Each deployment has three slots: the base model, the adapter on it, and the
memory store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from clgate.ledger import DeploymentEvent, Governance, ScheduledRun, Trust, UpdateState

DEFAULT_DEPLOYMENT = "default"

ReauditProgress = Literal["todo", "incomplete", "audited"]


class EntryView(Protocol):
    index: int
    type: str
    subject: str | None
    body: dict[str, Any]
    signer: str
    timestamp: str


@dataclass
class LedgerState:
    governance: Governance = field(default_factory=Governance)

    @property
    def scheduled_runs(self) -> list[tuple[int, ScheduledRun]]:
        """Each `audit.scheduled_run` (entry index, run), in ledger order."""
        return self.governance.scheduled_runs

    @property
    def updates(self) -> dict[str, UpdateState]:
        return self.governance.updates

    @property
    def history(self) -> list[DeploymentEvent]:
        return self.governance.history

    def deployed(self, deployment: str = DEFAULT_DEPLOYMENT) -> dict[str, str]:
        """Slot -> update id of what `deployment` runs now."""
        return self.governance.deployed_in(deployment)

    def deployed_update(self, slot: str, deployment: str = DEFAULT_DEPLOYMENT) -> UpdateState | None:
        update_id = self.deployed(deployment).get(slot)
        return self.updates[update_id] if update_id else None

    def is_deployed(self, update: UpdateState) -> bool:
        return self.deployed(update.deployment).get(update.slot) == update.update_id

    def current_base(self, deployment: str = DEFAULT_DEPLOYMENT) -> str | None:
        return self.governance.current_base(deployment)

    def recorded_measurements(self) -> set[str]:
        """The digests of every measurement an entry records: audits' and scheduled runs'."""
        digests = {d for u in self.updates.values() for d in u.measurements.values()}
        return digests | {d for _, run in self.scheduled_runs for d in run.measurements.values()}

    def valid_approvals(self, update: UpdateState) -> list[str]:
        return self.governance.valid_approvals(update)

    def is_stale(self, update: UpdateState) -> bool:
        """An adapter or memory whose audit no longer speaks for its deployment: built on a base it no longer
        runs, or a memory asked through another adapter than it runs now."""
        base = self.current_base(update.deployment)
        if update.kind == "model" or base is None:
            return False
        return update.base != base or self.governance.other_adapter(update) is not None

    def pending_reaudit(self) -> list[UpdateState]:
        """Stale adapters and memories that are deployed, and those awaiting promotion on an old base (one
        awaiting promotion beside another adapter is refused promotion instead, and says why)."""
        out = []
        for u in self.updates.values():
            waiting = u.decision is not None and u.promoted_index is None and u.blocked_index is None
            if self.is_stale(u) and (
                self.is_deployed(u) or (waiting and u.base != self.current_base(u.deployment))
            ):
                out.append(u)
        return out

    def reaudit_progress(self, stale: UpdateState) -> tuple[ReauditProgress, UpdateState | None]:
        """How far the re-audit of `stale` got: the latest proposal superseding it, if it is on the base its
        deployment runs now, audited or not."""
        latest = stale
        while latest.superseded_by is not None:
            latest = self.updates[latest.superseded_by]
        if latest is stale or latest.base != self.current_base(stale.deployment):
            return "todo", None
        return ("audited" if latest.audit_index is not None else "incomplete"), latest

    def pending_approval(self) -> list[UpdateState]:
        return [
            u
            for u in self.updates.values()
            if u.decision == "review" and u.promoted_index is None and u.blocked_index is None
        ]

    def find(self, ref: str) -> UpdateState | None:
        """An update by id, by candidate digest, or by the index of any entry about it."""
        if ref in self.updates:
            return self.updates[ref]
        matches = [u for u in self.updates.values() if u.candidate_digest in (ref, f"sha256:{ref}")]
        if ref.isdigit():
            matches += [u for u in self.updates.values() if int(ref) in _indices(u)]
        return matches[-1] if matches else None


def _indices(u: UpdateState) -> set[int]:
    return {
        i for i in (u.proposed_index, u.audit_index, u.promoted_index, u.blocked_index) if i is not None
    } | set(u.approvals.values())


def replay(entries: Iterable[EntryView], trust: Trust | None) -> LedgerState:
    """Apply the ledger's rules to `entries` in order; entries they forbid are ignored (verify flags them).

    Signatures are not checked here: that is `Ledger.verify`'s job, and callers show a state as
    trustworthy only once the ledger verified.
    """
    state = LedgerState(Governance.start(trust))
    for e in entries:
        state.governance.step(e.index, e.signer, e.type, e.subject, e.body, e.timestamp)
    return state
