"""One changed tensor's row: norms, max |ΔW|, cos(W, W') and the spectrum of ΔW.

A dense row is computed from both tensors; a LoRA row from the adapter's factors and the base tensor
alone (see `clgate.probes._spectrum`), so ΔW is never formed in full.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from clgate.artifacts import LoraFactors, TensorSpan
from clgate.probes._spectrum import Spectrum, as_matrix, dense_spectrum, factored_spectrum
from clgate.probes.weights._checkpoint import Spans, TensorReader
from clgate.probes.weights._names import layer_index, module_name, module_type


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


def dense_row(
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


def _max_abs_product(a: torch.Tensor, b: torch.Tensor, scale: float, rows: int = 1024) -> float:
    """max |scale·B·A| a block of rows at a time: the one statistic that needs ΔW's entries."""
    return max(float((scale * (b[i : i + rows] @ a)).abs().max()) for i in range(0, b.shape[0], rows))


def lora_row(f: LoraFactors, spans: Spans, reader: TensorReader, top_k: int) -> dict[str, Any] | None:
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
