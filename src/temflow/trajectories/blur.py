"""Motion blur: each frame records the particle's mean position over its exposure.

A camera integrates over an exposure of ``t_E`` (a fraction of the frame time dt = 1),
so a recorded position is a time average (Savin & Doyle, Biophys. J. 88:623, 2005). For
Brownian motion the per-axis MSD becomes ``2 D (n - t_E / 3) + 2 sigma^2``: the blur
acts as a negative localisation variance. The generators simulate a track on a grid of
:data:`SUBSTEPS_PER_FRAME` sub-steps per frame and average ``m`` consecutive sub-samples
(``t_E = m / SUBSTEPS_PER_FRAME``) from the start of each frame. For Brownian motion the
``m``-point average gives exactly ``MSD(n) = 2 D (n - t_E (1 - 1 / m^2) / 3)``
(:func:`brownian_blur_msd`), the formula above to 1 % for a full-frame exposure.
"""

from __future__ import annotations

import numpy as np

from temflow.errors import TemflowError

#: Sub-steps simulated per frame when blur is on (t_E is resolved to 1/10 frame).
SUBSTEPS_PER_FRAME = 10


def exposure_samples(exposure_frames: np.ndarray, substeps: int = SUBSTEPS_PER_FRAME) -> np.ndarray:
    """Sub-samples averaged per frame, ``m = round(t_E * substeps)`` clipped to
    ``1..substeps`` (``t_E = 0``: one instantaneous sample, no blur)."""
    t_e = np.asarray(exposure_frames, dtype=float)
    if np.any((t_e < 0) | (t_e > 1)) or not np.all(np.isfinite(t_e)):
        raise TemflowError("exposure time: expected 0..1 frame times")
    return np.clip(np.rint(t_e * substeps), 1, substeps).astype(np.int64)


def exposure_average(fine: np.ndarray, n_samples: np.ndarray, substeps: int) -> np.ndarray:
    """Blurred frames ``(N, L, 2)`` from sub-sampled tracks ``fine`` ``(N, L * substeps, 2)``
    (sub-sample ``j`` at time ``j / substeps``): frame ``k`` of track ``i`` is the mean of
    sub-samples ``k * substeps .. k * substeps + n_samples[i] - 1``, shifted so that the
    first frame is at the origin."""
    n, fine_len, _ = fine.shape
    length = fine_len // substeps
    if fine_len != length * substeps:
        raise TemflowError(f"motion blur: {fine_len} sub-samples is not a multiple of {substeps}")
    m = np.asarray(n_samples, dtype=np.int64)
    csum = np.zeros((n, fine_len + 1, 2))
    np.cumsum(fine, axis=1, out=csum[:, 1:])
    start = np.arange(length) * substeps
    end = start[None, :] + m[:, None]  # (N, L)
    total = np.take_along_axis(csum, end[:, :, None], axis=1) - csum[:, start]
    frames = total / m[:, None, None]
    return frames - frames[:, :1]


def brownian_blur_msd(
    lag_frames: np.ndarray, diffusion: float, n_samples: int, substeps: int = SUBSTEPS_PER_FRAME
) -> np.ndarray:
    """Exact per-axis MSD of blurred Brownian frames at ``lag_frames`` >= 1 (no noise):
    ``2 D (n - h (m^2 - 1) / (3 m))`` with ``h = 1 / substeps``; ``t_E = m h`` gives
    Savin & Doyle's ``2 D (n - t_E / 3)`` as ``m`` grows."""
    m, h = int(n_samples), 1.0 / substeps
    return 2.0 * diffusion * (np.asarray(lag_frames, float) - h * (m * m - 1) / (3.0 * m))
