"""Continuous-time random walk with power-law waiting times, observed at regular frames.

Waiting times have a heavy tail psi(t) ~ t^(-1-alpha), 0 < alpha <= 1: either
Mittag-Leffler distributed (survival E_alpha(-t^alpha); the number of jumps up to t then
has mean t^alpha / Gamma(1 + alpha) exactly, as in the MoNet reference) or Pareto
(survival t^-alpha for t >= 1, as in andi-datasets). Jumps are Gaussian with std
sqrt(2 D) per axis. Frame k (time k) shows the position after the last jump at or
before time k; the walk starts at the origin at time 0.
"""

from __future__ import annotations

import numpy as np

from temflow.errors import TemflowError
from temflow.trajectories._checks import as_batch, check_alpha, check_diffusion, check_length

WAITING_TIMES = ("mittag_leffler", "pareto")


def mittag_leffler_waits(alpha: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Mittag-Leffler waiting times (scale 1), shape (len(alpha), size).

    Kozubowski & Rachev / Fulger et al. (PRE 77, 021122, 2008):
    ``tau = -ln(U) * (sin(a pi) / tan(a pi V) - cos(a pi))^(1/a)``.
    """
    a = np.asarray(alpha, dtype=float)[:, None]
    u = 1.0 - rng.random((a.shape[0], size))  # (0, 1]
    v = rng.random((a.shape[0], size))
    base = np.sin(a * np.pi) / np.tan(a * np.pi * v) - np.cos(a * np.pi)
    # Strictly positive (tiny values underflow for small alpha): no jump at time 0.
    return np.maximum(-np.log(u) * np.clip(base, 0.0, None) ** (1.0 / a), np.finfo(float).tiny)


def pareto_waits(alpha: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Pareto waiting times with minimum 1: survival t^-alpha, shape (len(alpha), size)."""
    a = np.asarray(alpha, dtype=float)[:, None]
    u = 1.0 - rng.random((a.shape[0], size))
    return u ** (-1.0 / a)


def _jump_counts(times: np.ndarray, length: int) -> np.ndarray:
    """Number of jump times <= k for frames k = 0..length-1, one row per trajectory.

    ``times`` (n, K) is sorted along rows and > 0. For an integer frame k, t <= k exactly
    when ceil(t) <= k, so the keys are whole numbers and the row shift below is exact. One
    flat searchsorted over all rows: row r is shifted by r * (length + 1) after clipping
    times to ``length``.
    """
    n, k = times.shape
    offset = (np.arange(n) * (length + 1.0))[:, None]
    keys = (np.ceil(np.minimum(times, length)) + offset).ravel()
    frames = (np.arange(length)[None, :] + offset).ravel()
    idx = np.searchsorted(keys, frames, side="right").reshape(n, length)
    return idx - (np.arange(n) * k)[:, None]


def ctrw(
    n: int,
    length: int,
    alpha: float | np.ndarray,
    diffusion: float | np.ndarray,
    rng: np.random.Generator,
    waiting_time: str = "mittag_leffler",
    wait_scale: float = 1.0,
) -> np.ndarray:
    """``n`` 2-D CTRW trajectories of ``length`` frames, shape (n, length, 2).

    ``alpha`` in (0, 1]; waiting times ``mittag_leffler`` or ``pareto``, multiplied by
    ``wait_scale`` (in frames: ``wait_scale = s`` samples the walk of unit waits at
    ``s`` instants per unit time, as the motion blur needs). Jump times are drawn in
    vectorised chunks until every trajectory has passed the last frame.
    """
    length = check_length(length)
    a = as_batch(alpha, n, "ctrw alpha")
    check_alpha(a, 0.0, 1.0, high_inclusive=True, key="ctrw alpha")
    d = as_batch(diffusion, n, "diffusion_coefficient")
    check_diffusion(d)
    if waiting_time not in WAITING_TIMES:
        raise TemflowError(f"waiting_time: expected one of {WAITING_TIMES}, got {waiting_time!r}")
    if not wait_scale > 0:
        raise TemflowError(f"ctrw wait_scale: expected > 0, got {wait_scale:g}")
    waits = mittag_leffler_waits if waiting_time == "mittag_leffler" else pareto_waits

    def draw(a: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
        return waits(a, size, rng) if wait_scale == 1.0 else wait_scale * waits(a, size, rng)

    chunk = max(16, length // 4)
    times = np.cumsum(draw(a, chunk, rng), axis=1)
    # Keep drawing for the trajectories whose last jump is still inside the window.
    while True:
        short = times[:, -1] < length
        if not short.any():
            break
        more = times[:, -1:] + np.cumsum(draw(a, chunk, rng), axis=1)
        more[~short] = np.inf  # those rows are already complete
        times = np.concatenate([times, more], axis=1)
    counts = _jump_counts(times, length)  # (n, length), jumps up to each frame
    n_jumps = int(counts[:, -1].max())
    jumps = rng.standard_normal((n, n_jumps, 2)) * np.sqrt(2.0 * d)[:, None, None]
    walk = np.zeros((n, n_jumps + 1, 2))
    np.cumsum(jumps, axis=1, out=walk[:, 1:])
    return np.take_along_axis(walk, counts[:, :, None], axis=1)
