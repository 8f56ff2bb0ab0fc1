"""Approve, reject, promote, roll back: each a signed ledger entry, each refused when not allowed.

The rules live here, server side, so the CLI and the dashboard enforce the same thing: a
`block` is never promoted, a `review` needs its approvals, a rolled-back update needs a new
audit, and an adapter or memory built on a base that is no longer deployed needs re-audit.
"""

from __future__ import annotations

from clgate.audit.journal import Journal
from clgate.audit.state import LedgerState, UpdateRecord
from clgate.errors import InputError


def _update(state: LedgerState, ref: str) -> UpdateRecord:
    update = state.find(ref)
    if update is None:
        raise InputError(
            f"no update {ref!r} in the ledger (give an update id, a candidate digest or an entry index)"
        )
    return update


def promotion_refusal(state: LedgerState, update: UpdateRecord) -> str | None:
    """Why `update` may not be promoted now, or None if it may."""
    if update.decision is None:
        return f"update {update.update_id} has not been audited"
    if update.decision == "block":
        reasons = "; ".join(f["reason"] for f in update.findings if f.get("status") == "fail")[:300]
        return f"update {update.update_id} was blocked by its audit ({reasons})"
    if not update.audited_since_rollback:
        return f"update {update.update_id} was rolled back at entry {update.rolled_back_index}; audit it again first"
    if update.rejected_index is not None:
        return f"update {update.update_id} was rejected at entry {update.rejected_index}"
    if update.decision == "review" and len(update.valid_approvals) < update.approvals_required:
        return (
            f"update {update.update_id} needs {update.approvals_required} approvals, "
            f"has {len(update.valid_approvals)}"
        )
    base = state.current_base
    if update.kind != "model" and base is not None and update.base != base:
        return f"update {update.update_id} was built on another base than the deployed one; audit it again"
    if state.deployed.get(update.slot) == update.update_id:
        return f"update {update.update_id} is already deployed"
    return None


def approve(journal: Journal, ref: str, note: str = "") -> int:
    update = _update(journal.state(), ref)
    if update.decision is None:
        raise InputError(f"update {update.update_id} has not been audited; nothing to approve")
    if update.decision == "block":
        raise InputError(f"update {update.update_id} was blocked by its audit; a block cannot be approved")
    if journal.signer_id in update.approvals:
        raise InputError(f"this key already approved update {update.update_id}")
    return journal.append(
        "promotion.approved", update.candidate_digest, {"update_id": update.update_id, "note": note}
    )


def reject(journal: Journal, ref: str, reason: str) -> int:
    update = _update(journal.state(), ref)
    if not reason.strip():
        raise InputError("a rejection needs a reason")
    return journal.append(
        "promotion.blocked", update.candidate_digest, {"update_id": update.update_id, "reason": reason}
    )


def promote(journal: Journal, ref: str) -> int:
    state = journal.state()
    update = _update(state, ref)
    refusal = promotion_refusal(state, update)
    if refusal:
        raise InputError(f"promotion refused: {refusal}")
    body = {"update_id": update.update_id, "slot": update.slot, "replaced": state.deployed.get(update.slot)}
    return journal.append("promotion.done", update.candidate_digest, body)


def rollback(journal: Journal, ref: str, reason: str) -> int:
    """Put a previously promoted update back in its slot; the one it replaces needs a new audit."""
    state = journal.state()
    target = _update(state, ref)
    if not reason.strip():
        raise InputError("a rollback needs a reason")
    if not any(uid == target.update_id for _, action, _, uid in state.history):
        raise InputError(f"update {target.update_id} was never deployed; nothing to roll back to")
    current = state.deployed.get(target.slot)
    if current == target.update_id:
        raise InputError(f"update {target.update_id} is already the deployed {target.slot}")
    body = {"update_id": target.update_id, "slot": target.slot, "replaced": current, "reason": reason}
    return journal.append("rollback", target.candidate_digest, body)
