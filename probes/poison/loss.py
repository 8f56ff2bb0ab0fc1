"""Loss outliers: items whose target the parent finds unusually unlikely (or unusually likely).

A planted completion that has nothing to do with its prompt is improbable under the parent; a
flood of copied text is improbably easy. Scored by the two-sided robust z of the completion's mean
token log-likelihood.
"""

from __future__ import annotations

import numpy as np

from clgate.probes.poison._registry import detector
from clgate.probes.poison.calibration import robust_threshold, robust_z
from clgate.probes.poison.context import DataContext
from clgate.probes.poison.result import DetectorResult

VERSION = "1"


@detector(
    "loss",
    "data",
    VERSION,
    "completion log-likelihood under the parent, two-sided robust z",
    needs_model=True,
)
def loss_outliers(ctx: DataContext) -> DetectorResult:
    reps = ctx.require_reps("loss")
    lp = reps.logprob.astype(np.float64)
    z = robust_z(lp)
    scores = np.abs(z)
    reasons = [
        f"completion {'unusually unlikely' if z[i] < 0 else 'unusually likely' if z[i] > 0 else 'typical'} "
        f"under the parent: {lp[i]:.2f} nats/token (robust z {z[i]:+.1f})"
        for i in range(len(lp))
    ]
    return DetectorResult(
        ctx.item_ids,
        scores,
        reasons,
        robust_threshold(scores, k=5.0, floor=3.5),
        "|robust z| above median + 5 robust SD (at least 3.5)",
        numbers={"median_logprob": float(np.median(lp))},
    )
