"""Content spreading across instances: one text turning up in many deployments' memory stores.

Each entry scores the share of other instances' stores holding a near-copy of it, as
`clgate.probes.near_copies` finds them (the index behind the probe `memory.spread` too).
"""

from __future__ import annotations

import numpy as np

from clgate.errors import InputError
from clgate.probes.near_copies import NearCopies
from clgate.probes.poison._registry import detector
from clgate.probes.poison.memory_context import MemoryContext
from clgate.probes.poison.result import DetectorResult

VERSION = "2"  # 2: near-copies as `memory.spread` finds them (normalised text, Jaccard confirmed)


@detector("spread", "memory", VERSION, "share of other instances' stores holding a near-copy of the entry")
def spread(ctx: MemoryContext) -> DetectorResult:
    if not ctx.others:
        raise InputError("spread needs other instances' stores (give --instances STORE ...)")
    copies = NearCopies([[e.text for e in store.entries] for store in (ctx.store, *ctx.others)])
    counts = np.array([len(stores) for stores in copies.holders(0)], dtype=np.int64)
    share = counts / len(ctx.others)
    reasons = [f"near-copies in {c} of {len(ctx.others)} other instances' stores" for c in counts]
    return DetectorResult(
        ctx.item_ids,
        share,
        reasons,
        0.5,
        "near-copies in more than half of the other instances",
        numbers={"instances": float(len(ctx.others))},
    )
