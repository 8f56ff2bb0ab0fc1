"""What the probe's page and the gate report draw of an activation diff: its per-layer columns."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from clgate.measurement import Measurement
from clgate.probes import plots


@dataclass(frozen=True)
class LayerDrift:
    """The per-layer columns of an activation diff that the probe's page and the gate report draw."""

    layer: tuple[int, ...]
    cosine_distance: tuple[float, ...]  # residual drift, mean over each prompt's tokens
    cosine_distance_last: tuple[float, ...]  # at the last prompt token
    cka: tuple[float, ...]
    logit_lens_kl: tuple[float, ...]
    separation_parent: tuple[float, ...]
    separation_candidate: tuple[float, ...]
    refusal_cosine: tuple[float, ...]  # refusal direction, parent against candidate


def layer_drift(m: Measurement) -> LayerDrift:
    return LayerDrift(**{f.name: tuple(r[f.name] for r in m.details) for f in fields(LayerDrift)})


def write_plots(path: Path, title: str, m: Measurement) -> list[str]:
    d = layer_drift(m)
    figures = [
        plots.layer_lines(
            d.layer,
            {"token mean": d.cosine_distance, "last token": d.cosine_distance_last},
            "residual drift (cosine distance, parent vs candidate)",
            "1 − cos",
        ),
        plots.layer_lines(d.layer, {"linear CKA": d.cka}, "representation similarity", "CKA"),
        plots.layer_bars(d.layer, d.logit_lens_kl, "logit-lens KL(parent ‖ candidate)", "nats"),
        plots.layer_lines(
            d.layer,
            {"parent": d.separation_parent, "candidate": d.separation_candidate},
            "harmful − harmless separation along the parent's refusal direction",
            "projection",
        ),
        plots.layer_lines(
            d.layer,
            {"cos(parent, candidate)": d.refusal_cosine},
            "refusal direction agreement",
            "cosine",
        ),
    ]
    return [str(p) for p in plots.write_page(path, title, figures)]
