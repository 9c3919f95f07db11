"""Brownian motion: independent Gaussian increments."""

from __future__ import annotations

import numpy as np

from temflow.trajectories._checks import as_batch, check_diffusion, check_length


def brownian(
    n: int, length: int, diffusion: float | np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``n`` 2-D Brownian trajectories of ``length`` frames, shape (n, length, 2).

    Each axis has increments N(0, 2 D) per frame (time step 1), so MSD(t) = 2 D t per axis.
    """
    length = check_length(length)
    d = as_batch(diffusion, n, "diffusion_coefficient")
    check_diffusion(d)
    steps = rng.standard_normal((n, length - 1, 2)) * np.sqrt(2.0 * d)[:, None, None]
    out = np.zeros((n, length, 2))
    np.cumsum(steps, axis=1, out=out[:, 1:])
    return out
