"""Fractional Brownian motion, exact, by circulant embedding (Davies & Harte 1987).

Fractional Gaussian noise (fGn) with Hurst exponent H has the autocovariance
``gamma(k) = 0.5 (|k+1|^2H - 2|k|^2H + |k-1|^2H)``; its cumulative sum is FBM with
MSD(t) ~ t^alpha, alpha = 2H. The (n x n) Toeplitz covariance is embedded in a
circulant matrix of size 2n whose eigenvalues (an FFT of its first row) are
non-negative for every H in (0, 1), which makes the method exact. One complex FFT gives
two independent samples: the real part is the x axis, the imaginary part the y axis.
"""

from __future__ import annotations

import numpy as np

from temflow.trajectories._checks import as_batch, check_alpha, check_diffusion, check_length


def fgn_autocovariance(hurst: np.ndarray | float, lags: np.ndarray) -> np.ndarray:
    """Autocovariance of unit-variance fGn; broadcasts ``hurst[..., None]`` over ``lags``."""
    h2 = 2.0 * np.asarray(hurst, dtype=float)[..., None]
    k = np.abs(np.asarray(lags, dtype=float))
    return 0.5 * (np.abs(k + 1) ** h2 - 2.0 * k**h2 + np.abs(k - 1) ** h2)


def fgn(n: int, steps: int, hurst: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance fGn, shape (n, steps, 2): two independent axes per trajectory."""
    m = 2 * steps
    gamma = fgn_autocovariance(hurst, np.arange(steps + 1))  # (n, steps+1)
    row = np.concatenate([gamma, gamma[:, steps - 1 : 0 : -1]], axis=1)  # (n, 2 steps)
    eig = np.fft.fft(row, axis=1).real
    # Exact arithmetic gives eig >= 0; clip round-off (|eig| ~ 1e-16) below zero.
    eig = np.clip(eig, 0.0, None)
    w = rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))
    z = np.fft.fft(np.sqrt(eig / m) * w, axis=1)[:, :steps]
    return np.stack([z.real, z.imag], axis=-1)


def fbm(
    n: int,
    length: int,
    alpha: float | np.ndarray,
    diffusion: float | np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n`` 2-D FBM trajectories of ``length`` frames, shape (n, length, 2).

    ``alpha`` in (0, 2) (H = alpha / 2) and ``diffusion`` D > 0 may be per trajectory;
    per axis MSD(t) = 2 D t^alpha, so one increment has std sqrt(2 D) like a Brownian step.
    """
    length = check_length(length)
    a = as_batch(alpha, n, "fbm alpha")
    check_alpha(a, 0.0, 2.0, high_inclusive=False, key="fbm alpha")
    d = as_batch(diffusion, n, "diffusion_coefficient")
    check_diffusion(d)
    steps = fgn(n, length - 1, a / 2.0, rng) * np.sqrt(2.0 * d)[:, None, None]
    out = np.zeros((n, length, 2))
    np.cumsum(steps, axis=1, out=out[:, 1:])
    return out
