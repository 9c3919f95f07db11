"""Frames recorded one after another: specimen drift between the exposures of a focal series.

A real focal series is three exposures taken in turn, and the specimen drifts between them
(typically 0.1-1 A/s with about 1 s between exposures). Each channel except the
*reference channel* gets its own in-plane shift, drawn per image; the reference channel
(the middle focal setting, index ``C // 2``) is never shifted, and the column labels stay
in its frame.

Sign convention: a shift ``(dx, dy)`` in A moves the channel's content by ``+dx`` along x
(image columns) and ``+dy`` along y (image rows): a column at ``(x, y)`` in the reference
channel appears at ``(x + dx, y + dy)`` in the shifted one. The shift is sub-pixel,
applied in Fourier space (:func:`scipy.ndimage.fourier_shift`) to the noise-free
intensity, so the dose noise that follows is drawn afresh in every frame (not shifted).
The simulated cell is periodic and tiled exactly by the pixels, so a Fourier shift is the
image of the shifted periodic specimen.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import fourier_shift

from temflow.errors import TemflowError


def reference_channel(n_channels: int) -> int:
    """Index of the unshifted channel whose frame the labels are in: the middle one."""
    if n_channels < 1:
        raise TemflowError(f"a focal series needs at least one channel, got {n_channels}")
    return n_channels // 2


def draw_frame_shifts(
    range_A: tuple[float, float], n_channels: int, rng: np.random.Generator
) -> np.ndarray:
    """Per-channel shifts (C, 2) = (dx, dy) in A: zero for the reference channel; each other
    channel's shift has a magnitude uniform in ``range_A`` = [lo, hi] and a uniform
    direction. ``hi == 0`` returns zeros without drawing from ``rng``."""
    lo, hi = (float(v) for v in range_A)
    shifts = np.zeros((n_channels, 2))
    if hi <= 0:
        return shifts
    ref = reference_channel(n_channels)
    for c in range(n_channels):
        if c == ref:
            continue
        magnitude = rng.uniform(lo, hi) if hi > lo else lo
        angle = rng.uniform(0.0, 2 * np.pi)
        shifts[c] = magnitude * np.cos(angle), magnitude * np.sin(angle)
    return shifts


def shift_frames(images: np.ndarray, shifts_A: np.ndarray, sampling_A: float) -> np.ndarray:
    """``images`` (C, H, W) with channel ``c`` moved by ``shifts_A[c]`` = (dx, dy) A
    (periodic, sub-pixel Fourier shift). Channels with a zero shift come back unchanged."""
    images = np.asarray(images, dtype=float)
    shifts_A = np.asarray(shifts_A, dtype=float)
    if images.ndim != 3 or shifts_A.shape != (images.shape[0], 2):
        raise TemflowError(
            f"frame shifts {shifts_A.shape} do not match a (C, H, W) series {images.shape}"
        )
    out = images.copy()
    for c, (dx, dy) in enumerate(shifts_A):
        if dx == 0 and dy == 0:
            continue
        spectrum = fourier_shift(np.fft.fft2(images[c]), (dy / sampling_A, dx / sampling_A))
        out[c] = np.real(np.fft.ifft2(spectrum))
    return out


def shift_attrs(shifts_A: np.ndarray) -> dict[str, object]:
    """What a shard stores per image: per-channel ``frame_shift_x_A`` / ``frame_shift_y_A``,
    the largest magnitude ``frame_shift_max_A`` (the F1-against-parameter value) and the
    ``reference_channel``."""
    shifts_A = np.asarray(shifts_A, dtype=float)
    return {
        "frame_shift_x_A": [float(v) for v in shifts_A[:, 0]],
        "frame_shift_y_A": [float(v) for v in shifts_A[:, 1]],
        "frame_shift_max_A": float(np.hypot(shifts_A[:, 0], shifts_A[:, 1]).max()),
        "reference_channel": reference_channel(len(shifts_A)),
    }
