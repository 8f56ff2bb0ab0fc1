"""The lineage tree: bases, the deployments that run each, and what each deployment runs on it.

Computed once from a `LedgerState`, so `clgate status` and the dashboard draw the same tree and judge
staleness the same way (`LedgerState.is_stale`: an adapter or memory built on another base than its
deployment runs now, or a memory asked through another adapter), and a stale one carries how far its
re-audit got (`LedgerState.reaudit_progress`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from clgate.audit.state import LedgerState, ReauditProgress
from clgate.ledger import UpdateState

UPDATE_SLOTS = ("adapter", "memory")
"""The slots that run on a base, in the order the tree lists them."""


@dataclass(frozen=True)
class SlotNode:
    """An adapter or memory a deployment runs."""

    slot: str
    update_id: str
    entry: int | None
    """The entry that promoted it."""
    built_on: str
    """The base digest it was built on."""
    reaudit: ReauditProgress | None = None
    """None while it runs on the base it was built on; else how far its re-audit got."""
    reaudit_update: str | None = None
    """The re-audit's proposal, once there is one on the deployment's base."""

    @property
    def stale(self) -> bool:
        return self.reaudit is not None


@dataclass(frozen=True)
class DeploymentNode:
    name: str
    base_update: str | None
    """The update that promoted the base it runs (None: no base deployed)."""
    base_entry: int | None
    slots: tuple[SlotNode, ...]


@dataclass(frozen=True)
class BaseNode:
    digest: str | None
    """The base model's digest (None: the deployments under it run no base yet)."""
    deployments: tuple[DeploymentNode, ...]


@dataclass(frozen=True)
class Lineage:
    bases: tuple[BaseNode, ...]


def build_lineage(state: LedgerState) -> Lineage:
    """Every deployment the ledger names, under the base it runs, in deployment-name order."""
    by_base: dict[str | None, list[DeploymentNode]] = {}
    for name in state.governance.deployments():
        base = state.deployed_update("base", name)
        digest = base.candidate_digest if base else None
        slots = tuple(
            _slot(state, slot, update, digest)
            for slot in UPDATE_SLOTS
            if (update := state.deployed_update(slot, name)) is not None
        )
        node = DeploymentNode(
            name, base.update_id if base else None, base.promoted_index if base else None, slots
        )
        by_base.setdefault(digest, []).append(node)
    return Lineage(tuple(BaseNode(digest, tuple(nodes)) for digest, nodes in by_base.items()))


def _slot(state: LedgerState, slot: str, update: UpdateState, base: str | None) -> SlotNode:
    node = SlotNode(slot, update.update_id, update.promoted_index, update.base)
    if base is None or not state.is_stale(update):
        return node
    progress, latest = state.reaudit_progress(update)
    return replace(node, reaudit=progress, reaudit_update=latest.update_id if latest else None)
