"""Content spreading across instances: one text turning up in many deployments' memory stores.

Organic memories are personal and differ between instances; a poisoned entry that propagates
(a memetic payload copied from store to store) shows up near-verbatim in many of them.
"""

from __future__ import annotations

import numpy as np
from datasketch import MinHashLSH

from clgate.errors import InputError
from clgate.probes.poison._registry import detector
from clgate.probes.poison.memory_context import MemoryContext
from clgate.probes.poison.result import DetectorResult
from clgate.probes.poison.shingles import NUM_PERM, char_shingles, minhash

VERSION = "1"
THRESHOLD = 0.8


@detector("spread", "memory", VERSION, "share of other instances' stores holding a near-copy of the entry")
def spread(ctx: MemoryContext) -> DetectorResult:
    if not ctx.others:
        raise InputError("spread needs other instances' stores (give --instances STORE ...)")
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    for s, other in enumerate(ctx.others):
        for e in other.entries:
            lsh.insert((s, e.id), minhash(char_shingles(e.text)), check_duplication=False)
    counts = np.array(
        [len({s for s, _ in lsh.query(minhash(char_shingles(e.text)))}) for e in ctx.store.entries]
    )
    share = counts / len(ctx.others)
    reasons = [f"near-copies in {c} of {len(ctx.others)} other instances' stores" for c in counts]
    return DetectorResult(
        "spread",
        "memory",
        VERSION,
        ctx.item_ids,
        share,
        reasons,
        0.5,
        "near-copies in more than half of the other instances",
        numbers={"instances": float(len(ctx.others))},
    )
