"""Exact Gaussian likelihood of 2-D track increments: the Bayes bound for MoNet.

Brownian motion and FBM with Gaussian localisation noise are Gaussian processes: the
increments of one axis, ``dx``, have covariance ``s^2 (G_H + r^2 M)``, where ``G_H`` is
the fGn autocovariance (Toeplitz; H = 1/2 gives the identity), ``M`` the covariance of
differenced unit white noise (2 on the diagonal, -1 next to it) and ``r`` the noise std
in units of one step std (the convention of ``add_localisation_noise``). With the scale
``s`` marginalised under the Jeffreys prior 1/s, the evidence of both axes is, up to a
constant that depends only on the number of increments,

    log p(dx, dy | H, r) = -log det(C) - n log(dx' C^-1 dx + dy' C^-1 dy),  C = G_H + r^2 M,

with ``n`` increments per axis. Averaging it over a prior on H and r gives the evidence
of FBM and of Brownian motion, and their comparison the Bayes-optimal Brownian-vs-FBM
decision: no classifier that sees only the track can be more accurate on average. The
normalised increments MoNet reads carry no scale either, so this bound applies to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.special import logsumexp

from temflow.errors import TemflowError
from temflow.trajectories.fbm import fgn_autocovariance


def _increments(positions: np.ndarray) -> np.ndarray:
    positions = np.asarray(positions, dtype=float)
    if positions.ndim != 3 or positions.shape[2] != 2 or positions.shape[1] < 3:
        raise TemflowError(
            f"likelihood: expected positions (N, L >= 3, 2), got shape {positions.shape}"
        )
    return np.diff(positions, axis=1)


def log_likelihoods(
    positions: np.ndarray, hurst: float, noise_step_std: float
) -> tuple[np.ndarray, np.ndarray]:
    """Scale-marginalised log-likelihoods of each track's increments under fGn(H) plus
    localisation noise of ``noise_step_std`` step std (additive constants dropped):
    ``(joint (N,), per axis (N, 2))``. Joint: both axes share the scale; per axis: each
    axis on its own, with its own scale (what a network that reads one axis at a time
    can use)."""
    if not 0.0 < hurst < 1.0:
        raise TemflowError(f"likelihood: Hurst exponent must lie in (0, 1), got {hurst:g}")
    if noise_step_std < 0:
        raise TemflowError(f"likelihood: noise_step_std must be >= 0, got {noise_step_std:g}")
    inc = _increments(positions)
    n = inc.shape[1]
    lags = np.arange(n)
    gamma = fgn_autocovariance(hurst, lags)[np.abs(lags[:, None] - lags[None, :])]
    cov = gamma + noise_step_std**2 * (2.0 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1))
    chol = cholesky(cov, lower=True)
    # Both axes of every track as columns of one right-hand side.
    white = solve_triangular(chol, inc.transpose(1, 0, 2).reshape(n, -1), lower=True)
    quad = np.square(white).sum(axis=0).reshape(-1, 2)
    half_log_det = np.log(np.diag(chol)).sum()
    joint = -2.0 * half_log_det - n * np.log(quad.sum(axis=1))
    return joint, -half_log_det - 0.5 * n * np.log(quad)


def log_likelihood(positions: np.ndarray, hurst: float, noise_step_std: float) -> np.ndarray:
    """The joint log-likelihood (N,) of :func:`log_likelihoods`."""
    return log_likelihoods(positions, hurst, noise_step_std)[0]


def log_evidence(
    positions: np.ndarray,
    hurst_values: Sequence[float],
    noise_values: Sequence[float] = (0.0,),
    noise_weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Log evidence (N,) averaged over H (uniform over ``hurst_values``) and the noise
    level (``noise_weights`` over ``noise_values``; uniform when None)."""
    noise = np.asarray(noise_values, dtype=float)
    weights = np.ones(len(noise)) if noise_weights is None else np.asarray(noise_weights, float)
    if weights.shape != noise.shape or np.any(weights < 0) or weights.sum() <= 0:
        raise TemflowError("likelihood: noise_weights must be >= 0, one per noise value")
    weights = weights / weights.sum()
    terms = [
        np.log(w) - np.log(len(hurst_values)) + log_likelihood(positions, float(h), float(r))
        for r, w in zip(noise, weights, strict=True)
        if w > 0
        for h in hurst_values
    ]
    return logsumexp(np.stack(terms), axis=0)


def bayes_is_fbm(
    positions: np.ndarray,
    fbm_alpha_range: tuple[float, float],
    noise_values: Sequence[float] = (0.0,),
    noise_weights: Sequence[float] | None = None,
    n_hurst: int = 39,
) -> np.ndarray:
    """Bayes decision (N,) bool, FBM (alpha uniform on ``fbm_alpha_range``) against
    Brownian motion at equal prior odds, for the given prior on the noise level."""
    lo, hi = (float(a) / 2.0 for a in fbm_alpha_range)
    hurst = np.linspace(lo, hi, n_hurst) if hi > lo else np.array([lo])
    fbm = log_evidence(positions, hurst, noise_values, noise_weights)
    brownian = log_evidence(positions, [0.5], noise_values, noise_weights)
    return fbm > brownian
