"""The promotion state machine, enforced by the ledger itself rather than by its clients.

Every stateful entry (keys, policies, proposals, audits, approvals, blocks, promotions,
rollbacks, erasures, signatures, scheduled runs) is checked against the state replayed from the entries before it, in one place, by one
method (`Governance.step`): appends refuse what it refuses (inside the append transaction),
verification flags it, and replay ignores it. So a promotion that the rules forbid cannot become
the deployed state, whichever key signed it and however it reached the database.

The rules, in words:
- an update's id is derived from its proposal, and each id is proposed once; a proposal that supersedes
  another (a re-audit) proposes the same candidate bytes, kind and deployment;
- each proposal is audited once, by a gate key that is not the proposer's, under a policy adopted (by
  the key quorum of admins, in logs whose genesis says so) and not retired, for the update's deployment
  (or for every deployment), asking the approvals and witnesses that policy pins; an audit never clears
  a block or deploys anything;
- an update is promoted only if audited, its audit did not decide `block`, it was neither blocked
  nor rolled back nor proposed again on its base, with enough approvals for a `review` (distinct keys not revoked
  since, neither the proposer's nor the gate's, by name, from the policy's approvers by key id or
  name), on the base its deployment runs now, by an approver who is neither its proposer nor its
  gate, and with the witness cosignatures its policy requires; a memory update only while its
  deployment runs the adapter its audit asked the model through (or none, if it was judged on the
  base alone), and only as a change of the store its deployment runs;
- a rollback restores an update that was deployed in that slot, still fits the deployed base (and,
  for a memory, the adapter it was judged through, and no erasure may find the memory holds erased
  entries), and was neither blocked, rolled back nor proposed again on its base itself;
- an erasure request names a deployment something was proposed to, the memory it runs and updates it
  promoted; once requested, no update trained on the erased data is promoted or rolled back to again,
  nor a memory deployed before the erasure was done that no scan of it found clean; it is done only
  once the deployment runs a memory promoted after it (scanned clean, by its digest) and none of those
  updates, removing no measurement that only other deployments recorded; withdrawn (then never done)
  only once the key quorum of admins signed the withdrawal;
- a release signature (`artifact.signed`) is recorded only for an update that was promoted and was
  neither rolled back, blocked nor proposed again on its base, by a key that neither proposed nor
  audited it, once per signature.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from clgate.errors import InputError
from clgate.json_input import parse_json
from clgate.ledger.checkpoint import CheckpointNote, log_origin
from clgate.ledger.entries import (
    Approval,
    ApprovalRequirement,
    ArtifactSigned,
    AuditRecord,
    Block,
    EntryBody,
    ErasureDone,
    ErasureRequest,
    ErasureWithdrawn,
    Finding,
    PolicyAdopted,
    PolicyRef,
    PolicyRetired,
    Promotion,
    Proposal,
    Rollback,
    ScheduledRun,
    WitnessRequirement,
    is_stateful,
    typed_body,
)
from clgate.ledger.trust import KeyRing, Trust


@dataclass
class UpdateState:
    """One proposal and everything decided about it since."""

    proposal: Proposal
    proposed_index: int
    proposer: str
    proposed_at: str = ""
    audit: AuditRecord | None = None
    audit_index: int | None = None
    auditor: str | None = None
    approvals: dict[str, int] = field(default_factory=dict)  # approver key id -> entry index
    blocked_index: int | None = None
    promoted_index: int | None = None
    rolled_back_index: int | None = None
    superseded_by: str | None = None
    signed: dict[int, ArtifactSigned] = field(default_factory=dict)  # entry index -> release signature

    def fork(self) -> UpdateState:
        forked = copy.copy(self)
        forked.approvals, forked.signed = dict(self.approvals), dict(self.signed)
        return forked

    @property
    def update_id(self) -> str:
        return self.proposal.update_id

    @property
    def kind(self) -> str:
        return self.proposal.kind

    @property
    def slot(self) -> str:
        return self.proposal.slot

    @property
    def deployment(self) -> str:
        return self.proposal.deployment

    @property
    def base(self) -> str:
        return self.proposal.base

    @property
    def candidate_digest(self) -> str:
        return self.proposal.candidate.digest

    @property
    def decision(self) -> str | None:
        return self.audit.verdict.value if self.audit else None

    @property
    def approvals_required(self) -> int:
        return self.audit.approvals.required if self.audit else 1

    @property
    def findings(self) -> list[Finding]:
        return list(self.audit.findings) if self.audit else []

    @property
    def measurements(self) -> dict[str, str]:
        """Check name -> digest of the measurement its audit recorded."""
        return dict(self.audit.measurements) if self.audit else {}


@dataclass
class ErasureState:
    request: ErasureRequest
    requested_index: int
    done_index: int | None = None
    evidence_removed: tuple[str, ...] = ()
    memory_cleaned: str | None = None  # the memory update `erasure.done` scanned clean
    withdrawing: frozenset[str] = frozenset()  # admins who signed its withdrawal
    withdrawn_index: int | None = None  # where the last admin the quorum needed signed it

    @property
    def open(self) -> bool:
        return self.done_index is None and self.withdrawn_index is None

    def may_hold(self, memory: UpdateState) -> bool:
        """Whether `memory`, a memory update of this request's deployment, may hold the erased entries: one
        deployed before the erasure was done that no scan of it found clean (the request's, if it found no
        entries; the done entry's)."""
        if memory.deployment != self.request.deployment or self.withdrawn_index is not None:
            return False
        scanned = {self.memory_cleaned} | (
            {self.request.memory_update} if not self.request.memory_entries else set()
        )
        since = self.done_index if self.done_index is not None else self.requested_index
        return memory.update_id not in scanned and (memory.promoted_index or 0) < since

    @property
    def retrain(self) -> set[str]:
        """Updates trained on the erased data: never deployed again."""
        return {t.update_id for t in self.request.trained_on}


@dataclass(frozen=True)
class DeploymentEvent:
    index: int
    action: str  # promote | rollback
    deployment: str
    slot: str
    update_id: str


@dataclass(frozen=True)
class PendingAdoption:
    """A policy's adoption signed by fewer admins than the quorum: no gate may judge by it yet."""

    body: PolicyAdopted
    signers: frozenset[str]

    def counted(self, ring: KeyRing, index: int) -> int:
        """Its signers who are admins at `index` (a revoked one's signature no longer counts)."""
        return sum(ring.has_role(a, "admin", index) for a in self.signers)

    def progress(self, ring: KeyRing, index: int) -> str:
        return f"adopted by {self.counted(ring, index)} of the {ring.adopting_quorum} admins it needs"


@dataclass
class PolicyState:
    name: str
    digest: str
    text: str
    adopted_index: int
    retired_index: int | None = None
    deployments: frozenset[str] | None = None  # None: any deployment's

    def scope_refusal(self, deployment: str) -> str | None:
        """Why an audit or run of `deployment` may not cite this policy (None: it may)."""
        if self.deployments is None or deployment in self.deployments:
            return None
        return (
            f"policy {self.name!r} was adopted for {scope_words(self.deployments)} only, not {deployment!r}"
        )

    @functools.cached_property  # read at every audit replayed: the text is parsed once per policy
    def requirements(self) -> tuple[ApprovalRequirement, WitnessRequirement] | None:
        """The approvals and witnesses this policy's pinned text asks of its audits (None: a text that is not
        a clgate policy's canonical JSON, which pins none). The gate key records them in each audit; the
        ledger holds it to the policy, or one key could wave its own blocks through on "1 approval"."""
        try:
            pinned = parse_json(self.text, "the policy")
            return (
                ApprovalRequirement.model_validate(pinned.get("approvals", {})),
                WitnessRequirement.model_validate(pinned.get("witnesses", {})),
            )
        except (InputError, ValueError, AttributeError):  # not JSON, not an object, not requirements
            return None


@dataclass(frozen=True)
class RootClaim:
    """A witnessed checkpoint cited by a promotion: the log's root at `size` must be `root`."""

    index: int
    size: int
    root: bytes


Rule = Callable[["Governance", int, str, str | None, Any], str | None]
T = TypeVar("T")


@dataclass(frozen=True)
class Appended(Generic[T]):
    """The first `length` items of a list that forks of a state share: appending is O(1) and a fork copies
    nothing (a year of scheduled runs copied at every append made each one slower). A state appending
    after a dropped fork appended further takes its own copy, once."""

    items: list[T]
    length: int

    def plus(self, item: T) -> Appended[T]:
        items = self.items if len(self.items) == self.length else self.items[: self.length]
        items.append(item)
        return Appended(items, self.length + 1)


@dataclass
class Governance:
    """Keys, policies, updates and deployments as the ledger's entries make them, in index order."""

    ring: KeyRing = field(default_factory=KeyRing)
    updates: dict[str, UpdateState] = field(default_factory=dict)
    deployed: dict[tuple[str, str], str] = field(default_factory=dict)  # (deployment, slot) -> update id
    history: list[DeploymentEvent] = field(default_factory=list)
    policies: dict[str, PolicyState] = field(default_factory=dict)
    adoptions: dict[str, PendingAdoption] = field(default_factory=dict)  # by digest, awaiting admins
    claims: list[RootClaim] = field(default_factory=list)
    erasures: dict[str, ErasureState] = field(default_factory=dict)
    scheduled: Appended[tuple[int, ScheduledRun]] = field(default_factory=lambda: Appended([], 0))
    proposed_to: set[str] = field(default_factory=set)
    """The deployments any update was ever proposed for (asked at every scheduled run a replay meets)."""
    log_id: str = ""
    # the updates this state alone holds (made or copied since it was last forked), changed in place; any
    # other is shared with a fork, and copied before it is changed (`changing`)
    own: set[str] = field(default_factory=set, repr=False, compare=False)

    def changing(self, update_id: str) -> UpdateState:
        """`update_id`'s state, to change: this state's own copy, never one a fork shares."""
        if update_id not in self.own:
            self.updates[update_id] = self.updates[update_id].fork()
            self.own.add(update_id)
        return self.updates[update_id]

    @property
    def scheduled_runs(self) -> list[tuple[int, ScheduledRun]]:
        """Each `audit.scheduled_run` (entry index, run), in ledger order."""
        return self.scheduled.items[: self.scheduled.length]

    @classmethod
    def start(cls, trust: Trust | None) -> Governance:
        return cls(KeyRing(trust))

    def fork(self) -> Governance:
        """A copy an append may change and then drop, so a refused one leaves this state as it was. Updates are
        copied when a step changes one (`changing`), the small rest now; signed bodies and events, never
        changed, are shared. (A deep copy made every append cost time in proportion to the ledger's length.)"""
        forked = copy.copy(self)
        forked.ring = self.ring.fork()
        forked.updates, forked.own, self.own = dict(self.updates), set(), set()  # both now share each update
        forked.deployed = dict(self.deployed)
        forked.history = list(self.history)
        forked.policies = {digest: copy.copy(policy) for digest, policy in self.policies.items()}
        forked.adoptions = dict(self.adoptions)
        forked.proposed_to = set(self.proposed_to)
        forked.claims = list(self.claims)
        forked.erasures = {rid: copy.copy(erasure) for rid, erasure in self.erasures.items()}
        return forked

    @property
    def size(self) -> int:
        return self.ring.size

    def step(
        self,
        index: int,
        signer: str,
        type_name: str,
        subject: str | None,
        body: dict[str, Any],
        timestamp: str = "",
    ) -> str | None:
        """Check one entry against the state so far and, if allowed, apply it; else say why not."""
        refusal = self.ring.check(index, signer, type_name, body)
        if refusal:
            return refusal
        if type_name.startswith("key.") or not is_stateful(type_name):
            self.ring.apply(index, type_name, body, signer)
            return None
        typed = typed_body(type_name, body)
        refusal = _RULES[type_name](self, index, signer, subject, typed)
        if refusal:
            return refusal
        _APPLY[type_name](self, index, signer, typed, timestamp)
        self.ring.size = index + 1
        return None

    # --- what people and tools ask ----------------------------------------------------------------

    def deployed_in(self, deployment: str = "default") -> dict[str, str]:
        """Slot -> update id of what `deployment` runs now."""
        return {slot: uid for (dep, slot), uid in self.deployed.items() if dep == deployment}

    def deployments(self) -> list[str]:
        return sorted({dep for dep, _ in self.deployed} | {u.deployment for u in self.updates.values()})

    def current_base(self, deployment: str = "default") -> str | None:
        update_id = self.deployed.get((deployment, "base"))
        return self.updates[update_id].candidate_digest if update_id else None

    def promoted_bases(self, deployment: str = "default") -> list[UpdateState]:
        """Every base model `deployment` has been promoted to, first promotion first (rollbacks not counted)."""
        ids = [
            e.update_id
            for e in self.history
            if (e.deployment, e.slot, e.action) == (deployment, "base", "promote")
        ]
        return [self.updates[i] for i in dict.fromkeys(ids)]

    def anchor(self, deployment: str = "default", pinned: str | None = None) -> UpdateState | None:
        """What `deployment`'s every update is also compared with, so small steps cannot add up unseen:
        the base it was first promoted to, or the `pinned` one of its promoted bases (by update id or
        digest). None when it has no promoted base yet, or when `pinned` is none of them."""
        bases = self.promoted_bases(deployment)
        if pinned is None:
            return bases[0] if bases else None
        return next((u for u in bases if pinned in (u.update_id, u.candidate_digest)), None)

    def valid_approvals(self, update: UpdateState, index: int | None = None) -> list[str]:
        """Approving keys that count at `index` (now, by default): allowed by the policy, neither the
        proposer's nor the gate's (whichever of their keys), and not revoked since. A revoked key's approvals
        fall with it, so one person who rotates a key approves again once, never twice for an n-of-m."""
        index = self.size if index is None else index
        return [
            k
            for k, at in update.approvals.items()
            if self.ring.active(k, index) is not None and self._approval_counts(update, k, at)
        ]

    def _approver(self, kid: str) -> str:
        """Who a key speaks for: its name (unique among live keys, passed on when a key is rotated), else itself."""
        state = self.ring.keys.get(kid)
        return state.name if state is not None and state.name else kid

    def _acted_on(self, update: UpdateState, kid: str) -> str | None:
        """'proposed' or 'audited' when `kid`'s approver did that for `update`, whichever key they used."""
        if self._approver(kid) == self._approver(update.proposer):
            return "proposed"
        return "audited" if update.auditor and self._approver(kid) == self._approver(update.auditor) else None

    def promotion_refusal(
        self, update: UpdateState, signer: str | None, index: int | None = None
    ) -> str | None:
        """Why `update` may not be promoted now (by `signer`, if given), or None if it may."""
        index = self.size if index is None else index
        uid = update.update_id
        role = self.ring.check(index, signer, "promotion.done", {}) if signer is not None else None
        if role:
            return role
        if update.audit is None:
            return f"update {uid} has not been audited"
        if update.decision == "block":
            reasons = "; ".join(f.reason for f in update.audit.findings if f.status.value == "fail")[:300]
            return f"update {uid} was blocked by its audit ({reasons})"
        if update.rolled_back_index is not None:
            return f"update {uid} was rolled back at entry {update.rolled_back_index}; propose it again for a new audit"
        if update.blocked_index is not None:
            return f"update {uid} was blocked at entry {update.blocked_index}"
        approvals = len(self.valid_approvals(update, index))
        if update.decision == "review" and approvals < update.approvals_required:
            return f"update {uid} needs {update.approvals_required} approvals, has {approvals}"
        acted = self._acted_on(update, signer) if signer is not None else None
        if acted:
            return f"the key that {acted} update {uid} may not promote it"
        superseded = self._superseded(update)
        if superseded:
            return superseded
        stale = (
            self._stale_base(update)
            or self._erased(update)
            or self.other_adapter(update)
            or self.other_memory(update)
        )
        if stale:
            return stale
        if self.deployed.get((update.deployment, update.slot)) == uid:
            return f"update {uid} is already deployed"
        return None

    def rollback_refusal(self, update: UpdateState) -> str | None:
        uid = update.update_id
        if not any(e.update_id == uid for e in self.history):
            return f"update {uid} was never deployed; nothing to roll back to"
        if self.deployed.get((update.deployment, update.slot)) == uid:
            return f"update {uid} is already the deployed {update.slot}"
        if update.blocked_index is not None:
            return f"update {uid} was blocked at entry {update.blocked_index}"
        if update.rolled_back_index is not None:
            return f"update {uid} was rolled back at entry {update.rolled_back_index}; propose it again for a new audit"
        return (
            self._superseded(update)
            or self._stale_base(update)
            or self._erased(update)
            or self._erased_memory(update)
            or self.other_adapter(update)
        )

    def _superseded(self, update: UpdateState) -> str | None:
        """The same bytes proposed again on the same base: the new proposal's audit speaks for them, whatever
        it found, so the earlier one is neither promoted, rolled back to nor signed (a blocked re-audit would
        be walked past). A re-audit on another base (after an upgrade) judged another pair: the earlier
        audit still speaks for the old base, to which a deployment may be rolled back."""
        again = self.updates.get(update.superseded_by) if update.superseded_by else None
        if again is None or again.base != update.base:
            return None
        return f"update {update.update_id} was proposed again as {again.update_id}; that proposal's audit decides"

    def signing_refusal(
        self, update: UpdateState, signer: str | None, index: int | None = None
    ) -> str | None:
        """Why `update`'s candidate may not be signed as a release now (by `signer`, if given), or None."""
        index = self.size if index is None else index
        uid = update.update_id
        role = self.ring.check(index, signer, "artifact.signed", {}) if signer is not None else None
        if role:
            return role
        if not any(e.update_id == uid for e in self.history):
            return f"update {uid} was never promoted; only a promoted artifact is signed"
        if update.rolled_back_index is not None:
            return f"update {uid} was rolled back at entry {update.rolled_back_index}"
        if update.blocked_index is not None:
            return f"update {uid} was blocked at entry {update.blocked_index}"
        acted = self._acted_on(update, signer) if signer is not None else None
        if acted:
            return f"the key that {acted} update {uid} may not sign it"
        return self._superseded(update) or self._erased(update) or self._erased_memory(update)

    def releases(self) -> list[tuple[UpdateState, int, ArtifactSigned]]:
        """Every recorded release signature, in ledger order."""
        found = [(u, i, s) for u in self.updates.values() for i, s in u.signed.items()]
        return sorted(found, key=lambda r: r[1])

    def erasure_blocking(self, update_id: str) -> ErasureState | None:
        """The erasure request, not withdrawn, that lists `update_id` as trained on erased data, if any."""
        return next(
            (e for e in self.erasures.values() if update_id in e.retrain and e.withdrawn_index is None), None
        )

    # --- internals --------------------------------------------------------------------------------

    def _approval_counts(self, update: UpdateState, kid: str, index: int) -> bool:
        if self._acted_on(update, kid):
            return False
        allowed = update.audit.approvals.approvers if update.audit else []
        state = self.ring.keys.get(kid)
        return (
            not allowed
            or kid in allowed
            or (state is not None and bool(state.name) and state.name in allowed)
        )

    def _stale_base(self, update: UpdateState) -> str | None:
        if update.kind == "model":
            return None
        base = self.current_base(update.deployment)
        if base is None:
            return f"deployment {update.deployment!r} has no base model deployed; promote its base first"
        if base != update.base:
            return f"update {update.update_id} was built on another base than the deployed one; propose it again against it"
        return None

    def other_adapter(self, update: UpdateState) -> str | None:
        """Why a memory update's audit does not speak for its deployment now: it asked the model through
        another adapter than the deployment runs (None if it did not, or recorded nothing of it)."""
        if update.kind != "memory" or update.audit is None or update.audit.judged_with is None:
            return None
        judged = update.audit.judged_with.adapter
        running = self.deployed.get((update.deployment, "adapter"))
        if judged == running:
            return None
        through = f"adapter {judged}" if judged else "the base alone"
        runs = f"adapter {running}" if running else "no adapter"
        awaiting = judged is not None and self.updates[judged].promoted_index is None
        then = f"promote adapter {judged} first, or propose it again" if awaiting else "propose it again"
        return (
            f"memory update {update.update_id} was judged through {through}, but deployment "
            f"{update.deployment!r} runs {runs} now; {then} for a new audit"
        )

    def other_memory(self, update: UpdateState) -> str | None:
        """Why a memory update does not apply to its deployment's store: it changes another store than the
        deployed one, so its audit judged a diff nobody would deploy (entries planted in its old store are
        not new to it). None when it changes the deployed store, re-judges it (a re-audit on a new base
        proposes the deployed store again), or no memory is deployed yet."""
        running = self.deployed.get((update.deployment, "memory"))
        if update.kind != "memory" or running is None:
            return None
        old = update.proposal.artifacts["memory_old"]  # every memory proposal names the store it changes
        deployed = self.updates[running].candidate_digest
        if deployed in (old.digest, update.candidate_digest):
            return None
        return (
            f"memory update {update.update_id} changes the store {old.digest[:19]}…, but deployment "
            f"{update.deployment!r} runs memory update {running} ({deployed[:19]}…); propose the change again "
            "against the deployed store"
        )

    def _erased(self, update: UpdateState) -> str | None:
        erasure = self.erasure_blocking(update.update_id)
        if erasure is None:
            return None
        return (
            f"update {update.update_id} was trained on data erased by request {erasure.request.request_id} "
            f"(entry {erasure.requested_index}); train it again without that data and propose the new one"
        )

    def policy_refusal(self, ref: PolicyRef, deployment: str, index: int) -> str | None:
        """Why a decision about `deployment` at entry `index` may not be judged by the policy `ref` names
        (None: it may): its adoption awaits admins, it was never adopted or retired, or it judges others."""
        policy, pending = self.policies.get(ref.digest), self.adoptions.get(ref.digest)
        if pending is not None and (policy is None or policy.retired_index is not None):
            return f"policy {ref.name!r} ({ref.digest[:19]}…) is {pending.progress(self.ring, index)}"
        if policy is None:
            return f"policy {ref.name!r} ({ref.digest[:19]}…) was not adopted by an admin"
        if policy.retired_index is not None:
            return f"policy {ref.name!r} was retired at entry {policy.retired_index}"
        return policy.scope_refusal(deployment)

    def evidence_refusal(self, digest: str, deployment: str) -> str | None:
        """Why an erasure of `deployment` may not remove the measurement `digest` (None: it may). Evidence is
        filed by content, so deployments may share a file. In strict logs it is the first recorder's: a
        scheduled run citing another deployment's digest made that deployment's evidence look lawfully
        erased. Older logs let any deployment that recorded it remove it."""
        recorders = [  # an update records measurements only once audited
            (u.audit_index, u.deployment) for u in self.updates.values() if digest in u.measurements.values()
        ] + [(i, run.deployment) for i, run in self.scheduled_runs if digest in run.measurements.values()]
        if not recorders:
            return None
        owners = {min(recorders)[1]} if self.ring.strict else {dep for _, dep in recorders}
        if deployment in owners:
            return None
        return (
            f"measurement {digest[:19]}… is evidence of deployment(s) {', '.join(sorted(owners))}, not of "
            f"{deployment!r}: an erasure removes only its own deployment's"
        )

    def _erased_memory(self, memory: UpdateState) -> str | None:
        """A store deployed before an erasure of its deployment was done may hold the erased entries: rolling
        back to it would serve them again while the erasure reads as done."""
        if memory.kind != "memory":
            return None
        erasure = next((e for e in self.erasures.values() if e.may_hold(memory)), None)
        if erasure is None:
            return None
        return (
            f"memory update {memory.update_id} was deployed before erasure request {erasure.request.request_id} "
            f"(entry {erasure.requested_index}) was done and may hold the erased entries; propose its store "
            "again without them"
        )

    def _update(self, update_id: str, subject: str | None) -> tuple[UpdateState | None, str | None]:
        update = self.updates.get(update_id)
        if update is None:
            return None, f"no update {update_id} was proposed"
        if subject != update.candidate_digest:
            return None, f"subject is not the candidate digest of update {update_id}"
        return update, None

    def _witness_refusal(self, update: UpdateState, index: int, note_text: str | None) -> str | None:
        assert update.audit is not None
        need = update.audit.witnesses
        try:  # a cited checkpoint is parsed whether or not witnesses are required: replay records its root
            note = CheckpointNote.parse(note_text) if note_text else None
        except ValueError as exc:
            return f"the promotion's checkpoint is malformed: {exc}"
        if need.required == 0:
            return None
        where = f"a checkpoint after entry {update.audit_index} cosigned by {need.required} witness(es)"
        if note is None:
            return f"update {update.update_id} needs {where} (its policy requires witnesses)"
        if self.log_id and note.origin != log_origin(self.log_id):
            return "the promotion's checkpoint belongs to another log"
        assert update.audit_index is not None
        if not update.audit_index < note.size <= index:
            return f"the promotion's checkpoint (size {note.size}) does not cover the audit at entry {update.audit_index}"
        if not note.signed_by_any(self.ring.keys_with("gate", note.size - 1)):
            return "the promotion's checkpoint is not signed by a gate key of this log"
        witnesses = {
            kid: key for kid, key in self.ring.keys_with("witness", index).items()
            if not need.names or self.ring.keys[kid].name in need.names
        }  # fmt: skip
        count = note.cosigners(witnesses, {kid: self.ring.keys[kid].name for kid in witnesses})
        if count < need.required:
            return f"update {update.update_id} needs {where}; the checkpoint has {count}"
        return None


def release_lines(g: Governance) -> list[str]:
    """One line per release signature, as `clgate ledger verify` and `clgate status` print them."""
    return [
        f"update {u.update_id} ({s.artifact[:19]}…) at entry {i}: OMS signature {s.signature.digest}, "
        f"key {s.signature.key}"
        for u, i, s in g.releases()
    ]


def policy_lines(g: Governance) -> list[str]:
    """One line per policy gates may judge by, and per adoption still awaiting admins (`clgate status`)."""
    adopted = [
        f"{p.name} ({p.digest[:19]}…) for {scope_words(p.deployments)}, adopted at entry {p.adopted_index}"
        for p in g.policies.values()
        if p.retired_index is None
    ]
    pending = [
        f"{a.body.name} ({digest[:19]}…) for {scope_words(_scope(a.body))}: {a.progress(g.ring, g.size)}"
        for digest, a in g.adoptions.items()
    ]
    return adopted + pending


# --- rules: None if the entry is allowed, else why not --------------------------------------------


def _proposed(g: Governance, index: int, signer: str, subject: str | None, p: Proposal) -> str | None:
    if p.update_id in g.updates:
        return f"update {p.update_id} was already proposed at entry {g.updates[p.update_id].proposed_index}"
    if p.supersedes is not None:
        earlier = g.updates.get(p.supersedes)
        if earlier is None:
            return f"supersedes unknown update {p.supersedes}"
        if (earlier.deployment, earlier.kind, earlier.candidate_digest) != (
            p.deployment,
            p.kind,
            p.candidate.digest,
        ):
            # else any pipeline key could retire any pending update by naming it
            return (
                f"supersedes update {p.supersedes}, which proposed another {earlier.kind} or deployment or other "
                "bytes: a re-audit proposes the same candidate again"
            )
    return None


def _audited(g: Governance, index: int, signer: str, subject: str | None, a: AuditRecord) -> str | None:
    update, problem = g._update(a.update_id, subject)
    if update is None:
        return problem
    if update.audit_index is not None:
        return f"update {a.update_id} was already audited at entry {update.audit_index}; a re-audit is a new proposal"
    if signer == update.proposer:
        return f"the key that proposed update {a.update_id} may not audit it"
    refusal = g.policy_refusal(a.policy, update.deployment, index)
    if refusal:
        return refusal
    pinned = g.policies[a.policy.digest].requirements
    if pinned is not None and (a.approvals, a.witnesses) != pinned:
        return (
            f"the audit asks for {a.approvals.required} approval(s) and {a.witnesses.required} witness(es) as it "
            f"names them, not what policy {a.policy.name!r} pins ({pinned[0].required} and {pinned[1].required})"
        )
    if a.judged_with is not None:
        if update.kind != "memory":
            return f"update {a.update_id} is not a memory update; it is not judged through an adapter"
        named = a.judged_with.adapter
        adapter = g.updates.get(named) if named is not None else None
        if named is not None and (
            adapter is None or adapter.kind != "adapter" or adapter.deployment != update.deployment
        ):
            return f"{named} is not an adapter update of deployment {update.deployment!r}"
    return None


def _approved(g: Governance, index: int, signer: str, subject: str | None, ap: Approval) -> str | None:
    update, problem = g._update(ap.update_id, subject)
    if update is None:
        return problem
    if update.audit is None:
        return f"update {ap.update_id} has not been audited; nothing to approve"
    if update.decision == "block":
        return f"update {ap.update_id} was blocked by its audit; a block cannot be approved"
    if update.blocked_index is not None:
        return f"update {ap.update_id} was blocked at entry {update.blocked_index}"
    if update.promoted_index is not None:
        return f"update {ap.update_id} was already promoted"
    acted = g._acted_on(update, signer)
    if acted:
        return f"the key that {acted} update {ap.update_id} may not approve it"
    if signer in update.approvals:
        return f"this key already approved update {ap.update_id}"
    if not g._approval_counts(update, signer, index):
        return f"key {g.ring.label(signer)} is not among the approvers the policy names"
    return None


def _blocked(g: Governance, index: int, signer: str, subject: str | None, r: Block) -> str | None:
    return g._update(r.update_id, subject)[1]


def _promoted(g: Governance, index: int, signer: str, subject: str | None, pd: Promotion) -> str | None:
    update, problem = g._update(pd.update_id, subject)
    if update is None:
        return problem
    if pd.slot != update.slot:
        return f"slot {pd.slot!r} is not update {pd.update_id}'s slot ({update.slot})"
    refusal = g.promotion_refusal(update, signer, index)
    if refusal:
        return refusal
    current = g.deployed.get((update.deployment, update.slot))
    if pd.replaced != current:
        return f"the promotion says it replaces {pd.replaced} but {current} is deployed"
    return g._witness_refusal(update, index, pd.checkpoint)


def _rolled_back(g: Governance, index: int, signer: str, subject: str | None, rb: Rollback) -> str | None:
    update, problem = g._update(rb.update_id, subject)
    if update is None:
        return problem
    if rb.slot != update.slot:
        return f"slot {rb.slot!r} is not update {rb.update_id}'s slot ({update.slot})"
    refusal = g.rollback_refusal(update)
    if refusal:
        return refusal
    current = g.deployed.get((update.deployment, update.slot))
    if rb.replaced != current:
        return f"the rollback says it replaces {rb.replaced} but {current} is deployed"
    return None


def _adopted(g: Governance, index: int, signer: str, subject: str | None, p: PolicyAdopted) -> str | None:
    """Co-signing an adoption already in effect changes nothing and is let through, as for keys: a trust file
    that asks a larger quorum than an older one completes the adoption later, and both must verify."""
    existing = g.policies.get(p.digest)
    if existing is not None and existing.retired_index is None:
        if (existing.name, existing.deployments) != _adoption(p):
            return (
                f"policy {p.digest[:19]}… was already adopted at entry {existing.adopted_index} as "
                f"{existing.name!r} for {scope_words(existing.deployments)}: retire it first to adopt it otherwise"
            )
        return None
    pending = g.adoptions.get(p.digest)
    if pending is not None and _adoption(pending.body) != _adoption(p):
        return (
            f"policy {p.digest[:19]}… awaits co-signatures of its adoption as {pending.body.name!r} for "
            f"{scope_words(_scope(pending.body))}; co-sign that one, or retire it first"
        )
    if pending is not None and signer in pending.signers:
        return "this admin already signed this policy's adoption; another admin must co-sign it"
    return None


def _scope(p: PolicyAdopted) -> frozenset[str] | None:
    return frozenset(p.deployments) if p.deployments is not None else None


def _adoption(p: PolicyAdopted) -> tuple[str, frozenset[str] | None]:
    """What co-signers of one adoption must agree on: the name it is recorded under and its deployments."""
    return p.name, _scope(p)


def scope_words(deployments: frozenset[str] | None) -> str:
    """The deployments a policy judges, in words."""
    return (
        f"deployment(s) {', '.join(sorted(deployments))}" if deployments is not None else "every deployment"
    )


def _retired(g: Governance, index: int, signer: str, subject: str | None, p: PolicyRetired) -> str | None:
    existing = g.policies.get(p.digest)
    if p.digest in g.adoptions:  # calling off an adoption still awaiting admins
        return None
    if existing is None:
        return f"policy {p.digest[:19]}… is not adopted"
    if existing.retired_index is not None:
        return f"policy {p.digest[:19]}… was already retired at entry {existing.retired_index}"
    return None


def _erasure_requested(
    g: Governance, index: int, signer: str, subject: str | None, r: ErasureRequest
) -> str | None:
    if r.request_id in g.erasures:
        return f"erasure request {r.request_id} was already made at entry {g.erasures[r.request_id].requested_index}"
    if r.deployment not in g.proposed_to:
        return f"deployment {r.deployment!r} was never proposed anything; there is nothing of it to erase"
    deployed_memory = g.deployed.get((r.deployment, "memory"))
    if r.memory_update != deployed_memory:
        return f"deployment {r.deployment!r} runs memory {deployed_memory}, not {r.memory_update}: scan what it runs"
    if (r.memory_update is None) != (r.memory_digest is None) or (
        r.memory_entries and r.memory_update is None
    ):
        return "a memory scanned needs both its update and its store's digest"
    promoted = {e.update_id for e in g.history if e.deployment == r.deployment}
    strays = [t.update_id for t in r.trained_on if t.update_id not in promoted]
    if strays:
        return f"update {strays[0]} was never deployed in {r.deployment!r}"
    return None


def _open_erasure(g: Governance, request_id: str) -> tuple[ErasureState | None, str | None]:
    erasure = g.erasures.get(request_id)
    if erasure is None:
        return None, f"no erasure request {request_id}"
    if erasure.done_index is not None:
        return None, f"erasure request {request_id} was done at entry {erasure.done_index}"
    if erasure.withdrawn_index is not None:
        return None, f"erasure request {request_id} was withdrawn at entry {erasure.withdrawn_index}"
    return erasure, None


def _erasure_withdrawn(
    g: Governance, index: int, signer: str, subject: str | None, w: ErasureWithdrawn
) -> str | None:
    erasure, problem = _open_erasure(g, w.request_id)
    if erasure is None:
        return problem
    if signer in erasure.withdrawing:
        return f"this admin already signed the withdrawal of erasure request {w.request_id}"
    return None


def _erasure_done(g: Governance, index: int, signer: str, subject: str | None, d: ErasureDone) -> str | None:
    erasure, problem = _open_erasure(g, d.request_id)
    if erasure is None:
        return problem
    deployment = erasure.request.deployment
    deployed_memory = g.deployed.get((deployment, "memory"))
    if d.memory_update != deployed_memory:
        return f"deployment {deployment!r} runs memory {deployed_memory}, not {d.memory_update}: scan what it runs"
    memory = g.updates.get(deployed_memory or "")
    if memory is not None and d.memory_digest != memory.candidate_digest:
        return f"the store scanned ({d.memory_digest}) is not memory {memory.update_id} as promoted"
    if erasure.request.memory_entries and (
        memory is None or (memory.promoted_index or 0) < erasure.requested_index
    ):
        return f"the deployment runs no memory promoted after the erasure request (entry {erasure.requested_index})"
    running = [uid for (dep, _), uid in g.deployed.items() if dep == deployment and uid in erasure.retrain]
    if running:
        return f"update {running[0]}, trained on the erased data, is still deployed in {deployment!r}"
    return next(filter(None, (g.evidence_refusal(digest, deployment) for digest in d.evidence_removed)), None)


def _scheduled(g: Governance, index: int, signer: str, subject: str | None, s: ScheduledRun) -> str | None:
    """A run's body is typed and its verdict follows its findings (the model checks both). In strict logs a
    run is of a deployment the ledger knows, judged by a policy adopted for it, like an audit. Older logs
    hold runs that cite the default policy, adopted or not (recorded before `audit run` required an adopted
    one), so there only a policy adopted for some deployments, or awaiting admins, is held to that."""
    if g.ring.strict:
        if s.deployment != "default" and s.deployment not in g.proposed_to:
            return f"no deployment {s.deployment!r} was proposed anything: there is nothing of it to audit"
        if s.policy is None:
            return "a scheduled run names the adopted policy it was judged by"
    if s.policy is None:
        return None
    if g.ring.strict or s.policy.digest in g.adoptions:  # no older log has a pending adoption
        return g.policy_refusal(s.policy, s.deployment, index)
    policy = g.policies.get(s.policy.digest)
    return policy.scope_refusal(s.deployment) if policy is not None else None


def _signed(g: Governance, index: int, signer: str, subject: str | None, s: ArtifactSigned) -> str | None:
    update, problem = g._update(s.update_id, subject)
    if update is None:
        return problem
    again = next((i for i, o in update.signed.items() if o.signature.digest == s.signature.digest), None)
    if again is not None:
        return f"this signature of update {s.update_id} was recorded at entry {again}"
    return g.signing_refusal(update, signer, index)


_RULES: dict[str, Rule] = {
    "update.proposed": _proposed,
    "audit.completed": _audited,
    "promotion.approved": _approved,
    "promotion.blocked": _blocked,
    "promotion.done": _promoted,
    "rollback": _rolled_back,
    "policy.adopted": _adopted,
    "policy.retired": _retired,
    "erasure.requested": _erasure_requested,
    "erasure.done": _erasure_done,
    "erasure.withdrawn": _erasure_withdrawn,
    "audit.scheduled_run": _scheduled,
    "artifact.signed": _signed,
}


# --- effects of allowed entries -------------------------------------------------------------------


def _apply_proposed(g: Governance, index: int, signer: str, p: EntryBody, timestamp: str) -> None:
    assert isinstance(p, Proposal)
    g.updates[p.update_id] = UpdateState(p, index, signer, timestamp)
    g.own.add(p.update_id)
    g.proposed_to.add(p.deployment)
    if p.supersedes is not None:
        g.changing(p.supersedes).superseded_by = p.update_id


def _apply_audited(g: Governance, index: int, signer: str, a: EntryBody, timestamp: str) -> None:
    assert isinstance(a, AuditRecord)
    update = g.changing(a.update_id)
    update.audit, update.audit_index, update.auditor = a, index, signer


def _apply_approved(g: Governance, index: int, signer: str, ap: EntryBody, timestamp: str) -> None:
    assert isinstance(ap, Approval)
    g.changing(ap.update_id).approvals[signer] = index


def _apply_blocked(g: Governance, index: int, signer: str, r: EntryBody, timestamp: str) -> None:
    assert isinstance(r, Block)
    if g.updates[r.update_id].blocked_index is None:
        g.changing(r.update_id).blocked_index = index


def _apply_promoted(g: Governance, index: int, signer: str, pd: EntryBody, timestamp: str) -> None:
    assert isinstance(pd, Promotion)
    update = g.changing(pd.update_id)
    g.deployed[(update.deployment, update.slot)] = update.update_id
    update.promoted_index = index
    g.history.append(DeploymentEvent(index, "promote", update.deployment, update.slot, update.update_id))
    if pd.checkpoint:
        note = CheckpointNote.parse(pd.checkpoint)
        g.claims.append(RootClaim(index, note.size, note.root))


def _apply_rolled_back(g: Governance, index: int, signer: str, rb: EntryBody, timestamp: str) -> None:
    assert isinstance(rb, Rollback)
    update = g.updates[rb.update_id]
    if rb.replaced in g.updates:
        replaced = g.changing(rb.replaced)
        replaced.rolled_back_index, replaced.promoted_index = index, None
    g.deployed[(update.deployment, update.slot)] = update.update_id
    g.history.append(DeploymentEvent(index, "rollback", update.deployment, update.slot, update.update_id))


def _apply_adopted(g: Governance, index: int, signer: str, p: EntryBody, timestamp: str) -> None:
    """In effect once the admins the log asks (`KeyRing.adopting_quorum`) signed the same adoption, each still
    an admin now (a revoked one's signature no longer counts, as for key additions)."""
    assert isinstance(p, PolicyAdopted)
    existing = g.policies.get(p.digest)
    if existing is not None and existing.retired_index is None:
        return  # a co-signature after it took effect
    pending = g.adoptions.get(p.digest) or PendingAdoption(p, frozenset())
    pending = PendingAdoption(pending.body, pending.signers | {signer})
    if pending.counted(g.ring, index) < g.ring.adopting_quorum:
        g.adoptions[p.digest] = pending
        return
    g.adoptions.pop(p.digest, None)
    g.policies[p.digest] = PolicyState(p.name, p.digest, p.text, index, deployments=_scope(p))


def _apply_retired(g: Governance, index: int, signer: str, p: EntryBody, timestamp: str) -> None:
    assert isinstance(p, PolicyRetired)
    if g.adoptions.pop(p.digest, None) is None:  # else an adoption still awaiting admins is called off
        g.policies[p.digest].retired_index = index


def _apply_erasure_requested(g: Governance, index: int, signer: str, r: EntryBody, timestamp: str) -> None:
    assert isinstance(r, ErasureRequest)
    g.erasures[r.request_id] = ErasureState(r, index)


def _apply_erasure_done(g: Governance, index: int, signer: str, d: EntryBody, timestamp: str) -> None:
    assert isinstance(d, ErasureDone)
    erasure = g.erasures[d.request_id]
    erasure.done_index, erasure.evidence_removed = index, tuple(d.evidence_removed)
    erasure.memory_cleaned = d.memory_update


def _apply_erasure_withdrawn(g: Governance, index: int, signer: str, w: EntryBody, timestamp: str) -> None:
    """Counted once `key_quorum` distinct admins signed it, each still an admin now (a revoked one's
    signature no longer counts, as for key additions)."""
    assert isinstance(w, ErasureWithdrawn)
    erasure = g.erasures[w.request_id]
    erasure.withdrawing = erasure.withdrawing | {signer}
    if sum(g.ring.has_role(a, "admin", index) for a in erasure.withdrawing) >= g.ring.quorum:
        erasure.withdrawn_index = index


def _apply_scheduled(g: Governance, index: int, signer: str, s: EntryBody, timestamp: str) -> None:
    assert isinstance(s, ScheduledRun)
    g.scheduled = g.scheduled.plus((index, s))


def _apply_signed(g: Governance, index: int, signer: str, s: EntryBody, timestamp: str) -> None:
    assert isinstance(s, ArtifactSigned)
    g.changing(s.update_id).signed[index] = s


_APPLY: dict[str, Callable[[Governance, int, str, Any, str], None]] = {
    "update.proposed": _apply_proposed,
    "audit.completed": _apply_audited,
    "promotion.approved": _apply_approved,
    "promotion.blocked": _apply_blocked,
    "promotion.done": _apply_promoted,
    "rollback": _apply_rolled_back,
    "policy.adopted": _apply_adopted,
    "policy.retired": _apply_retired,
    "erasure.requested": _apply_erasure_requested,
    "erasure.done": _apply_erasure_done,
    "erasure.withdrawn": _apply_erasure_withdrawn,
    "audit.scheduled_run": _apply_scheduled,
    "artifact.signed": _apply_signed,
}
