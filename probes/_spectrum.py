"""Singular-value summaries of a weight change ΔW: from the dense matrix, or from LoRA factors.

Exact spectra come from the eigenvalues of the smaller Gram matrix in float64 (a few times faster
than an SVD on CPU, and exact to ~1e-8·σ_max). They cost O(min(m,n)²·max(m,n)), so by default only
matrices cheap enough get one; the rest get their top-k values from a randomized SVD, and their
effective rank, which needs every singular value, is then unknown (None) rather than guessed. A LoRA update ΔW = s·B·A is never formed: with B = Q_b R_b and
Aᵀ = Q_a R_a, ΔW = Q_b (s·R_b R_aᵀ) Q_aᵀ, so its singular values are those of the r×r core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

EXACT_COST = 32 * 1024 * 1024  # min(m,n)²·max(m,n) up to which the spectrum is exact by default


@dataclass(frozen=True)
class Spectrum:
    top: tuple[float, ...]  # largest singular values, descending
    frobenius: float
    effective_rank: float | None  # exp(entropy of σ/Σσ) (Roy & Vetterli 2007); None if not exact
    stable_rank: float  # ||ΔW||_F² / σ_max²
    exact: bool


def effective_rank(singular_values: torch.Tensor) -> float:
    s = singular_values.double().clamp(min=0)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return math.exp(float(-(p * p.log()).sum()))


def _summary(values: torch.Tensor, frobenius: float, k: int, exact: bool) -> Spectrum:
    values = values.double().clamp(min=0).sort(descending=True).values
    smax = float(values[0]) if len(values) else 0.0
    return Spectrum(
        top=tuple(float(v) for v in values[:k]),
        frobenius=frobenius,
        effective_rank=effective_rank(values) if exact else None,
        stable_rank=frobenius**2 / smax**2 if smax > 0 else 0.0,
        exact=exact,
    )


def as_matrix(tensor: torch.Tensor) -> torch.Tensor:
    """Views a weight as the matrix it acts as: (out, everything else)."""
    return tensor.reshape(tensor.shape[0], -1)


def dense_spectrum(delta: torch.Tensor, k: int, exact: bool | None = None) -> Spectrum:
    """Top-k singular values, effective and stable rank of a dense 2-D ΔW (exact: None = when cheap)."""
    m, n = delta.shape
    frobenius = float(torch.linalg.vector_norm(delta))
    if frobenius == 0.0:
        return Spectrum((), 0.0, 0.0, 0.0, True)
    if exact is None:
        exact = min(m, n) ** 2 * max(m, n) <= EXACT_COST
    if exact:
        d = delta.double()
        gram = d.T @ d if m >= n else d @ d.T
        eig = torch.linalg.eigvalsh(gram)
        return _summary(eig.clamp(min=0).sqrt(), frobenius, k, exact=True)
    q = min(k + 6, m, n)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)  # svd_lowrank draws a random test matrix: keep results reproducible
    try:
        _, s, _ = torch.svd_lowrank(delta.float(), q=q, niter=2)
    finally:
        torch.random.set_rng_state(generator_state)
    return _summary(s, frobenius, k, exact=False)


def factored_spectrum(a: torch.Tensor, b: torch.Tensor, scale: float, k: int) -> Spectrum:
    """Spectrum of ΔW = scale·B·A (A: r×in, B: out×r) from the factors, exactly, in O((in+out)·r²)."""
    _, r_b = torch.linalg.qr(b.double())
    _, r_a = torch.linalg.qr(a.double().T)
    core = scale * (r_b @ r_a.T)
    s = torch.linalg.svdvals(core)
    frobenius = float(torch.linalg.vector_norm(s))
    if frobenius == 0.0:
        return Spectrum((), 0.0, 0.0, 0.0, True)
    return _summary(s, frobenius, k, exact=True)
