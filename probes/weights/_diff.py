"""The probes `weights` (two checkpoints) and `weights.lora` (an adapter and its base): their measurement."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clgate.artifacts import (
    LoraAdapter,
    Manifest,
    check_adapter_fits,
    compute_manifest,
    load_lora_adapter,
    resolve_model_dir,
)
from clgate.measurement import Measurement
from clgate.probes._registry import probe
from clgate.probes.weights._checkpoint import (
    Spans,
    TensorReader,
    changed_tensors,
    check_compatible,
    open_checkpoint,
    tensor_spans,
)
from clgate.probes.weights._metrics import group, numbers
from clgate.probes.weights._report import write_plots
from clgate.probes.weights._rows import dense_row, lora_row
from clgate.progress import Advance, no_progress

VERSION = "1"
DEFAULT_TOP_K = 8


def _measurement(
    title: str,
    rows: list[dict[str, Any]],
    names: list[str],
    parent_digest: str | None,
    candidate_digest: str | None,
    meta: dict[str, Any],
    evidence: Path | None,
) -> Measurement:
    per_layer = group(rows, names, "layer")
    per_type = group(rows, names, "module_type")
    m = Measurement(
        parent=parent_digest,
        candidate=candidate_digest,
        numbers=numbers(rows, names, per_type),
        details=rows,
        meta={
            **meta,
            "changed_modules": sorted({r["module"] for r in rows}),
            "changed_module_types": sorted({r["module_type"] for r in rows}),
            "per_layer": per_layer,
            "per_module_type": per_type,
        },
    )
    return m.model_copy(update={"evidence": write_plots(evidence, m, title)}) if evidence else m


@probe(
    "weights",
    VERSION,
    "per-tensor, per-layer and per-module change between two checkpoints",
    ("parent", "candidate"),
)
def weight_diff(
    parent: Path,
    candidate: Path,
    *,
    parent_manifest: Manifest | None = None,
    candidate_manifest: Manifest | None = None,
    top_k: int = DEFAULT_TOP_K,
    exact_spectrum: bool | None = None,
    evidence: Path | None = None,
    cache_dir: Path | None = None,
    advance: Advance = no_progress,
) -> Measurement:
    """Diff two checkpoints of one architecture; unchanged tensors (equal digests) are never read.

    `exact_spectrum`: True computes every singular value of every ΔW (effective rank everywhere, slow
    for large matrices), False only randomized top-k, None (default) exact where it is cheap.
    `advance` hears changed tensors diffed.
    """
    started = time.perf_counter()
    p = open_checkpoint(Path(parent), parent_manifest, cache_dir)
    c = open_checkpoint(Path(candidate), candidate_manifest, cache_dir)
    check_compatible(p, c)
    changed = changed_tensors(p, c)
    rows = []
    with contextlib.ExitStack() as stack:
        reader = TensorReader(stack)
        for done, name in enumerate(changed, 1):
            (pf, span), (cf, _) = p.spans[name], c.spans[name]
            w, w2 = reader.read(pf, name), reader.read(cf, name)
            rows.append(dense_row(name, span, w, w2, top_k, exact_spectrum))
            advance(done, len(changed))
    meta = {
        "mode": "dense",
        "parent_path": str(parent),
        "candidate_path": str(candidate),
        "top_k": top_k,
        "exact_spectrum": exact_spectrum,
        "seconds": time.perf_counter() - started,
    }
    return _measurement("weights", rows, sorted(p.spans), p.digest, c.digest, meta, evidence)


def _lora_rows(adapter: LoraAdapter, spans: Spans, top_k: int, advance: Advance) -> Iterator[dict[str, Any]]:
    total = len(adapter.modules())
    with contextlib.ExitStack() as stack:
        reader = TensorReader(stack)
        for done, f in enumerate(adapter.factors(), 1):
            row = lora_row(f, spans, reader, top_k)
            if row is not None:
                yield row
            advance(done, total)


@probe(
    "weights.lora",
    VERSION,
    "the change a LoRA adapter makes to its base, from its factors",
    ("parent", "adapter"),
)
def lora_diff(
    base: Path,
    adapter: Path,
    *,
    base_manifest: Manifest | None = None,
    adapter_manifest: Manifest | None = None,
    top_k: int = DEFAULT_TOP_K,
    evidence: Path | None = None,
    cache_dir: Path | None = None,
    advance: Advance = no_progress,
) -> Measurement:
    """What merging `adapter` into `base` would change, computed from the factors (ΔW never formed).

    `advance` hears adapted modules taken up.
    """
    started = time.perf_counter()
    model_dir = resolve_model_dir(Path(base), cache_dir)
    check_adapter_fits(Path(adapter), model_dir)
    spans = tensor_spans(model_dir)
    lora = load_lora_adapter(Path(adapter))
    rows = list(_lora_rows(lora, spans, top_k, advance))
    base_digest = (base_manifest or compute_manifest(model_dir)).root
    adapter_digest = (adapter_manifest or compute_manifest(Path(adapter))).root
    meta = {
        "mode": "lora",
        "parent_path": str(base),
        "candidate_path": str(adapter),
        "rank": lora.rank,
        "top_k": top_k,
        "seconds": time.perf_counter() - started,
    }
    return _measurement("weights.lora", rows, sorted(spans), base_digest, adapter_digest, meta, evidence)
