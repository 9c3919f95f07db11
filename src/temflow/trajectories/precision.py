"""Localisation precision from the tracks themselves: the covariance-based estimator.

Vestergaard, Blainey & Flyvbjerg (Phys. Rev. E 89:022726, 2014): for Brownian motion
with localisation noise sigma and motion blur coefficient ``R`` (``t_E / 6`` for an
exposure of ``t_E`` frame times with constant illumination; 0 without blur), the
increments ``dx`` of one axis give, without any fit,

    sigma^2 = R <dx_n^2> + (2 R - 1) <dx_n dx_(n+1)>,
    D       = <dx_n^2> / 2 + <dx_n dx_(n+1)>       (per frame).

The moments are averaged over both axes; per track, or pooled over many tracks (a
weighted mean of the per-track moments, one sigma shared by them all). The estimate is
unbiased for Brownian motion; for FBM and CTRW it is not (their increments are
correlated or bursty), see docs/2026-12-02-monet-real-tracks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from temflow.errors import TemflowError


def blur_coefficient(exposure_frames: float) -> float:
    """Motion blur coefficient ``R = t_E / 6`` of a uniform exposure of ``t_E`` frames."""
    if not 0.0 <= exposure_frames <= 1.0:
        raise TemflowError(f"exposure time: expected 0..1 frame times, got {exposure_frames:g}")
    return exposure_frames / 6.0


@dataclass
class CveMoments:
    """Per-track increment moments: ``<dx^2>``, ``<dx_n dx_n+1>`` and their counts."""

    msd1: np.ndarray  # (N,) mean squared increment over both axes
    cov1: np.ndarray  # (N,) mean product of neighbouring increments over both axes
    n_increments: np.ndarray  # (N,) increments per axis


def cve_moments(positions: np.ndarray) -> CveMoments:
    """The moments of tracks ``(N, L >= 3, 2)`` (one gap-free run of frames each)."""
    x = np.asarray(positions, dtype=float)
    if x.ndim != 3 or x.shape[2] != 2 or x.shape[1] < 3:
        raise TemflowError(
            f"localisation precision: expected positions (N, L >= 3, 2), got {x.shape}"
        )
    dx = np.diff(x, axis=1)
    msd1 = np.mean(dx**2, axis=(1, 2))
    cov1 = np.mean(dx[:, 1:] * dx[:, :-1], axis=(1, 2))
    return CveMoments(msd1, cov1, np.full(len(x), dx.shape[1]))


def cve_variance(moments: CveMoments, exposure_frames: float = 0.0) -> np.ndarray:
    """Per-track estimate of sigma^2 (N,); can be < 0 for a track of few frames."""
    r = blur_coefficient(exposure_frames)
    return r * moments.msd1 + (2.0 * r - 1.0) * moments.cov1


def cve_diffusion(moments: CveMoments) -> np.ndarray:
    """Per-track estimate of the per-axis D (length^2 per frame), (N,)."""
    return moments.msd1 / 2.0 + moments.cov1


def localisation_precision(
    positions: np.ndarray, exposure_frames: float = 0.0, pooled: bool = False
) -> np.ndarray:
    """Localisation error std of tracks ``(N, L, 2)``: per track (N,), or one value shared
    by all (shape (1,)) with ``pooled``; a negative variance estimate gives 0."""
    moments = cve_moments(positions)
    var = cve_variance(moments, exposure_frames)
    if pooled:
        w = moments.n_increments.astype(float)
        var = np.array([np.sum(w * var) / np.sum(w)])
    return np.sqrt(np.clip(var, 0.0, None))
