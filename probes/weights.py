"""Weight diff: what an update changed in a checkpoint, tensor by tensor, layer by layer, module by module.

Both checkpoints are streamed one tensor at a time through safetensors' lazy `safe_open` (sharded
checkpoints included). Tensors whose manifest digests match are skipped unread; the gate computes
those manifests anyway and can pass them in, so nothing is hashed twice. A LoRA adapter is analysed
from its factors (see `clgate.probes._spectrum`): its ΔW is never formed in full.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from clgate.artifacts import (
    Manifest,
    TensorSpan,
    check_adapter_fits,
    compute_manifest,
    load_lora_adapter,
    model_weight_files,
    read_safetensors_header,
    resolve_model_dir,
)
from clgate.errors import InputError
from clgate.measurement import Measurement
from clgate.probes import plots
from clgate.probes._registry import probe
from clgate.probes._spectrum import Spectrum, as_matrix, dense_spectrum, factored_spectrum
from clgate.progress import Advance, no_progress

VERSION = "1"
DEFAULT_TOP_K = 8

_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\.")
# First match wins: norms before attention (post_attention_layernorm), fused before split projections.
MODULE_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("norm", r"(norm|(^|\.)ln(_[a-z0-9]+)?)\.(weight|bias)$"),
        (
            "embeddings",
            r"(embed_tokens|wte|wpe|word_embeddings|position_embeddings|embed_positions|tok_embeddings|embed_in)\.",
        ),
        ("lm_head", r"(^|\.)(lm_head|embed_out|output)\.weight$"),
        ("attn_qkv", r"(qkv_proj|c_attn|query_key_value|wqkv)\."),
        ("attn_q", r"(q_proj|q_lin|(^|\.)(query|wq))\."),
        ("attn_k", r"(k_proj|k_lin|(^|\.)(key|wk))\."),
        ("attn_v", r"(v_proj|v_lin|(^|\.)(value|wv))\."),
        (
            "attn_o",
            r"(o_proj|out_proj|out_lin|attn\.c_proj|attention\.dense|attention\.output\.dense|(^|\.)wo)\.",
        ),
        ("mlp_gate_up", r"gate_up_proj\."),
        ("mlp_gate", r"(gate_proj|(^|\.)w1)\."),
        ("mlp_up", r"(up_proj|fc1|c_fc|dense_h_to_4h|fc_in|(^|\.)w3)\."),
        ("mlp_down", r"(down_proj|fc2|mlp\.c_proj|dense_4h_to_h|fc_out|(^|\.)w2)\."),
    )
)


def module_type(tensor: str) -> str:
    """attn_q/k/v/o (or attn_qkv), mlp_gate/up/down, embeddings, norm, lm_head, or other."""
    name = tensor.lower()
    return next((kind for kind, rx in MODULE_TYPES if rx.search(name)), "other")


def layer_index(tensor: str) -> int | None:
    m = _LAYER.search(tensor)
    return int(m.group(1)) if m else None


def module_name(tensor: str) -> str:
    """The module a tensor belongs to: its name without the parameter suffix."""
    return tensor.rsplit(".", 1)[0] if "." in tensor else tensor


@dataclass(frozen=True)
class _Checkpoint:
    model_dir: Path
    spans: dict[str, tuple[Path, TensorSpan]]
    manifest: Manifest  # covers every tensor of model_dir
    digest: str  # root digest of the artifact as given (a .gguf file's own manifest, if one was passed)


def _tensor_spans(model_dir: Path) -> dict[str, tuple[Path, TensorSpan]]:
    spans: dict[str, tuple[Path, TensorSpan]] = {}
    for weights in model_weight_files(model_dir):
        for span in read_safetensors_header(weights).tensors:
            if span.name in spans:
                raise InputError(
                    f"{model_dir}: tensor {span.name!r} is stored twice ({spans[span.name][0].name}, {weights.name})"
                )
            spans[span.name] = (weights, span)
    return spans


def _covers(manifest: Manifest, spans: dict[str, tuple[Path, TensorSpan]]) -> bool:
    digests = manifest.tensor_digests()
    return all(
        name in digests and digests[name].shape == span.shape and digests[name].dtype == span.dtype
        for name, (_, span) in spans.items()
    )


def _open_checkpoint(path: Path, manifest: Manifest | None, cache_dir: Path | None) -> _Checkpoint:
    model_dir = resolve_model_dir(path, cache_dir)
    spans = _tensor_spans(model_dir)
    usable = manifest if manifest is not None and _covers(manifest, spans) else compute_manifest(model_dir)
    return _Checkpoint(model_dir, spans, usable, (manifest or usable).root)


def _architecture(model_dir: Path) -> tuple[str | None, tuple[str, ...]]:
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None, ()
    return config.get("model_type"), tuple(config.get("architectures") or ())


def _check_compatible(parent: _Checkpoint, candidate: _Checkpoint) -> None:
    arch_p, arch_c = _architecture(parent.model_dir), _architecture(candidate.model_dir)
    if arch_p[0] and arch_c[0] and arch_p != arch_c:
        raise InputError(
            f"different architectures: parent is {arch_p[0]} {list(arch_p[1])}, "
            f"candidate is {arch_c[0]} {list(arch_c[1])}"
        )
    for name in sorted(parent.spans):
        if name not in candidate.spans:
            raise InputError(f"tensor {name!r} is in the parent but missing from the candidate")
    for name in sorted(candidate.spans):
        if name not in parent.spans:
            raise InputError(f"tensor {name!r} is in the candidate but missing from the parent")
    for name, (_, span) in sorted(parent.spans.items()):
        other = candidate.spans[name][1]
        if span.shape != other.shape:
            raise InputError(
                f"tensor {name!r}: shape {list(span.shape)} in the parent, {list(other.shape)} in the candidate"
            )


class _TensorReader:
    """Lazy per-file `safe_open` handles, so each tensor is read alone and only when needed."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._handles: dict[Path, Any] = {}

    def read(self, file: Path, name: str) -> torch.Tensor:
        from safetensors import safe_open

        if file not in self._handles:
            self._handles[file] = self._stack.enter_context(safe_open(str(file), framework="pt"))
        return self._handles[file].get_tensor(name)


def _working(t: torch.Tensor) -> torch.Tensor:
    return t.double() if t.dtype == torch.float64 or not t.is_floating_point() else t.float()


def _norm(t: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(t))


def _cosine(base_norm: float, inner: float, delta_norm: float, cand_norm: float | None = None) -> float:
    """cos(W, W + ΔW) from |W|, <W, ΔW> and |ΔW|, without subtracting two nearly equal norms.

    |W'|² = |W|² + 2<W,ΔW> + |ΔW|² adds positive terms when <W,ΔW> ≥ 0 (W' ≈ W stays exact); when it is
    negative the sum can cancel, so a directly computed |W'| is used if there is one.
    """
    if inner < 0 and cand_norm is not None:
        cand_sq = cand_norm**2
    else:
        cand_sq = base_norm**2 + 2 * inner + delta_norm**2
    if base_norm == 0.0 or cand_sq <= 0.0:
        return 1.0 if base_norm == 0.0 and cand_sq <= 0.0 else 0.0
    return max(-1.0, min(1.0, (base_norm**2 + inner) / (base_norm * math.sqrt(cand_sq))))


def _row(
    tensor: str,
    shape: tuple[int, ...],
    dtype: str,
    delta_norm: float,
    base_norm: float,
    max_abs_delta: float,
    cosine: float,
    spectrum: Spectrum | None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "tensor": tensor,
        "module": module_name(tensor),
        "layer": layer_index(tensor),
        "module_type": module_type(tensor),
        "shape": list(shape),
        "dtype": dtype,
        "delta_norm": delta_norm,
        "base_norm": base_norm,
        "relative_change": delta_norm / base_norm if base_norm > 0 else None,
        "max_abs_delta": max_abs_delta,
        "cosine": cosine,
        "top_singular_values": list(spectrum.top) if spectrum else None,
        "effective_rank": spectrum.effective_rank if spectrum else None,
        "stable_rank": spectrum.stable_rank if spectrum else None,
        "spectrum_exact": spectrum.exact if spectrum else None,
        **extra,
    }


def _dense_row(
    name: str, span: TensorSpan, w: torch.Tensor, w2: torch.Tensor, top_k: int, exact: bool | None = None
) -> dict[str, Any]:
    w, w2 = _working(w), _working(w2)
    delta = w2 - w
    delta_norm, base_norm = _norm(delta), _norm(w)
    spectrum = dense_spectrum(as_matrix(delta), top_k, exact) if delta.dim() >= 2 else None
    lo, hi = torch.aminmax(delta) if delta.numel() else (0.0, 0.0)
    return _row(
        name,
        span.shape,
        span.dtype,
        delta_norm,
        base_norm,
        max(float(-lo), float(hi)) if delta.numel() else 0.0,
        _cosine(base_norm, float(torch.dot(w.reshape(-1), delta.reshape(-1))), delta_norm, _norm(w2)),
        spectrum,
    )


def _changed_tensors(parent: _Checkpoint, candidate: _Checkpoint) -> list[str]:
    p, c = parent.manifest.tensor_digests(), candidate.manifest.tensor_digests()
    return [name for name in sorted(parent.spans) if p[name] != c[name]]


def _group(rows: Iterable[dict[str, Any]], names: Iterable[str], key: str) -> list[dict[str, Any]]:
    """Per-layer or per-module-type totals over the changed tensors, with a row for every group."""
    total: dict[Any, int] = defaultdict(int)
    for name in names:
        group = layer_index(name) if key == "layer" else module_type(name)
        if group is not None:
            total[group] += 1
    acc: dict[Any, dict[str, float]] = {
        g: {"changed": 0, "d2": 0.0, "b2": 0.0, "max_rel": 0.0, "max_abs": 0.0} for g in total
    }
    for row in rows:
        if row[key] is None:
            continue
        a = acc[row[key]]
        a["changed"] += 1
        a["d2"] += row["delta_norm"] ** 2
        a["b2"] += row["base_norm"] ** 2
        a["max_rel"] = max(a["max_rel"], row["relative_change"] or 0.0)
        a["max_abs"] = max(a["max_abs"], row["max_abs_delta"])
    return [
        {
            key: g,
            "tensors": total[g],
            "tensors_changed": int(a["changed"]),
            "delta_norm": math.sqrt(a["d2"]),
            "relative_change": math.sqrt(a["d2"] / a["b2"]) if a["b2"] > 0 else 0.0,
            "max_relative_change": a["max_rel"],
            "max_abs_delta": a["max_abs"],
        }
        for g, a in sorted(acc.items())
    ]


def _numbers(
    rows: list[dict[str, Any]], names: list[str], per_type: list[dict[str, Any]]
) -> dict[str, float]:
    d2 = sum(r["delta_norm"] ** 2 for r in rows)
    b2 = sum(r["base_norm"] ** 2 for r in rows)
    changed_params = sum(math.prod(r["shape"]) for r in rows)
    exact_ranks = [r["effective_rank"] for r in rows if r["effective_rank"] is not None]
    numbers = {
        "weights.tensors": float(len(names)),
        "weights.tensors_changed": float(len(rows)),
        "weights.fraction_changed": len(rows) / len(names) if names else 0.0,
        "weights.parameters_changed": float(changed_params),
        "weights.modules_changed": float(len({r["module"] for r in rows})),
        "weights.layers_changed": float(len({r["layer"] for r in rows if r["layer"] is not None})),
        "weights.delta_norm": math.sqrt(d2),
        "weights.relative_change": math.sqrt(d2 / b2) if b2 > 0 else 0.0,
        "weights.max_relative_change": max((r["relative_change"] or 0.0 for r in rows), default=0.0),
        "weights.max_abs_delta": max((r["max_abs_delta"] for r in rows), default=0.0),
        "weights.min_cosine": min((r["cosine"] for r in rows), default=1.0),
        "weights.max_stable_rank": max((r["stable_rank"] or 0.0 for r in rows), default=0.0),
        "weights.max_effective_rank": max(exact_ranks, default=0.0),
    }
    for t in per_type:
        numbers[f"weights.max_relative_change.{t['module_type']}"] = t["max_relative_change"]
        numbers[f"weights.relative_change.{t['module_type']}"] = t["relative_change"]
    return numbers


@dataclass(frozen=True)
class ChangeGrid:
    """Largest ||ΔW||/||W|| per module type and layer: the heatmap the probe's page and the gate report draw."""

    layers: tuple[int, ...]
    module_types: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]  # values[i][j]: module_types[i] at layers[j]
    layer_change: tuple[float, ...]  # ||ΔW||/||W|| of each whole layer
    top_tensor: str | None  # the tensor that changed most, relative to its own norm
    top_change: float
    top_cell: tuple[int, int] | None  # its (module type, layer) indices in `values`, if in a layer


def change_grid(m: Measurement) -> ChangeGrid:
    """The grid of a `weights` or `weights.lora` measurement; attn_q and mlp_down rows are always
    there, so an update that left attention or the MLP alone shows it."""
    rows = [r for r in m.details if r["layer"] is not None]
    layers = tuple(r["layer"] for r in m.meta["per_layer"])
    types = tuple(sorted({r["module_type"] for r in rows} | {"attn_q", "mlp_down"}))
    cell: dict[tuple[str, int], float] = defaultdict(float)
    for r in rows:
        key = (r["module_type"], r["layer"])
        cell[key] = max(cell[key], r["relative_change"] or 0.0)
    top = max(m.details, key=lambda r: r["relative_change"] or 0.0, default=None)
    in_grid = top is not None and top["layer"] is not None
    return ChangeGrid(
        layers=layers,
        module_types=types,
        values=tuple(tuple(cell[(t, layer)] for layer in layers) for t in types),
        layer_change=tuple(r["relative_change"] for r in m.meta["per_layer"]),
        top_tensor=top["tensor"] if top else None,
        top_change=(top["relative_change"] or 0.0) if top else 0.0,
        top_cell=(types.index(top["module_type"]), layers.index(top["layer"])) if in_grid else None,
    )


def _plots(path: Path, m: Measurement) -> list[str]:
    grid = change_grid(m)
    figures = [
        plots.layer_heatmap(
            grid.values,
            grid.layers,
            grid.module_types,
            "max ||ΔW||/||W|| per layer and module type",
            "relative change",
        ),
        plots.layer_bars(grid.layers, grid.layer_change, "relative change per layer", "||ΔW||/||W||"),
    ]
    return [str(p) for p in plots.write_page(path, f"{m.name}: {m.meta['candidate_path']}", figures)]


def _measurement(
    name: str,
    rows: list[dict[str, Any]],
    names: list[str],
    parent_digest: str | None,
    candidate_digest: str | None,
    meta: dict[str, Any],
    evidence: Path | None,
) -> Measurement:
    per_layer = _group(rows, names, "layer")
    per_type = _group(rows, names, "module_type")
    m = Measurement(
        name=name,
        version=VERSION,
        parent=parent_digest,
        candidate=candidate_digest,
        numbers=_numbers(rows, names, per_type),
        details=rows,
        meta={
            **meta,
            "changed_modules": sorted({r["module"] for r in rows}),
            "changed_module_types": sorted({r["module_type"] for r in rows}),
            "per_layer": per_layer,
            "per_module_type": per_type,
        },
    )
    return m.model_copy(update={"evidence": _plots(evidence, m)}) if evidence else m


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
    p = _open_checkpoint(Path(parent), parent_manifest, cache_dir)
    c = _open_checkpoint(Path(candidate), candidate_manifest, cache_dir)
    _check_compatible(p, c)
    changed = _changed_tensors(p, c)
    rows = []
    with contextlib.ExitStack() as stack:
        reader = _TensorReader(stack)
        for done, name in enumerate(changed, 1):
            (pf, span), (cf, _) = p.spans[name], c.spans[name]
            w, w2 = reader.read(pf, name), reader.read(cf, name)
            rows.append(_dense_row(name, span, w, w2, top_k, exact_spectrum))
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


def _max_abs_product(a: torch.Tensor, b: torch.Tensor, scale: float, rows: int = 1024) -> float:
    """max |scale·B·A| a block of rows at a time: the one statistic that needs ΔW's entries."""
    return max(float((scale * (b[i : i + rows] @ a)).abs().max()) for i in range(0, b.shape[0], rows))


def _lora_row(
    f: Any, spans: dict[str, tuple[Path, TensorSpan]], reader: _TensorReader, top_k: int
) -> dict[str, Any] | None:
    """One adapted module's change, or None when its factors multiply to zero."""
    name = f"{f.module}.weight"
    file, span = spans[name]
    a, b = f.a.float(), f.b.float()
    spectrum = factored_spectrum(a, b, f.scale, top_k)
    if spectrum.frobenius == 0.0:
        return None
    w = _working(reader.read(file, name)).reshape(b.shape[0], -1)
    base_norm = _norm(w)
    inner = f.scale * float(((b.T @ w).double() * a.double()).sum())  # <W, ΔW> = s·tr(Wᵀ B A)
    return _row(
        name,
        span.shape,
        span.dtype,
        spectrum.frobenius,
        base_norm,
        _max_abs_product(a, b, f.scale),
        _cosine(base_norm, inner, spectrum.frobenius),
        spectrum,
        rank=int(a.shape[0]),
        scale=f.scale,
    )


def _lora_rows(
    adapter: Any, spans: dict[str, tuple[Path, TensorSpan]], top_k: int, advance: Advance
) -> Iterator[dict[str, Any]]:
    total = len(adapter.modules())
    with contextlib.ExitStack() as stack:
        reader = _TensorReader(stack)
        for done, f in enumerate(adapter.factors(), 1):
            row = _lora_row(f, spans, reader, top_k)
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
    spans = _tensor_spans(model_dir)
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
