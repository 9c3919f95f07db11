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

Optionally (``hrtem.microscope.frame_rotation_deg``, off by default) each non-reference
channel is also rotated by a small angle about the image centre before its shift: a stage
or image rotation between exposures. An angle ``theta`` moves the content at ``(x, y)``
relative to the centre to ``R(theta) (x, y)`` (counter-clockwise for positive ``theta``
with x along columns and y along rows). It is a cubic-spline interpolation with periodic
edges (:func:`scipy.ndimage.rotate`): the rotated periodic cell is not periodic,
so the corners mix in the opposite edge; columns within ``border_A`` are not scored.
``temflow segment --max-rotation`` measures and undoes such rotations
(:func:`temflow.hrtem.registration.register_series_rigid`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.ndimage import fourier_shift, rotate

from temflow.errors import TemflowError


def reference_channel(n_channels: int) -> int:
    """Index of the unshifted channel whose frame the labels are in: the middle one."""
    if n_channels < 1:
        raise TemflowError(f"a focal series needs at least one channel, got {n_channels}")
    return n_channels // 2


def _draw_per_frame(
    range_: tuple[float, float],
    n_channels: int,
    rng: np.random.Generator,
    orient: Callable[[float, np.random.Generator], np.ndarray],
    width: int,
) -> np.ndarray:
    """(C, width): zero for the reference channel; each other channel ``orient(m, rng)`` for
    a magnitude ``m`` uniform in ``range_`` (drawn before its orientation, channel by
    channel). ``hi == 0`` returns zeros without drawing from ``rng``."""
    lo, hi = (float(v) for v in range_)
    out = np.zeros((n_channels, width))
    if hi <= 0:
        return out
    ref = reference_channel(n_channels)
    for c in range(n_channels):
        if c != ref:
            out[c] = orient(rng.uniform(lo, hi) if hi > lo else lo, rng)
    return out


def _in_uniform_direction(magnitude: float, rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0.0, 2 * np.pi)
    return magnitude * np.array([np.cos(angle), np.sin(angle)])


def _with_random_sign(magnitude: float, rng: np.random.Generator) -> np.ndarray:
    return np.array([magnitude if rng.random() < 0.5 else -magnitude])


def draw_frame_shifts(
    range_A: tuple[float, float], n_channels: int, rng: np.random.Generator
) -> np.ndarray:
    """Per-channel shifts (C, 2) = (dx, dy) in A: zero for the reference channel; each other
    channel's shift has a magnitude uniform in ``range_A`` = [lo, hi] and a uniform
    direction. ``hi == 0`` returns zeros without drawing from ``rng``."""
    return _draw_per_frame(range_A, n_channels, rng, _in_uniform_direction, 2)


def draw_frame_rotations(
    range_deg: tuple[float, float], n_channels: int, rng: np.random.Generator
) -> np.ndarray:
    """Per-channel rotations (C,) in degrees: zero for the reference channel; each other
    channel's magnitude uniform in ``range_deg`` = [lo, hi], its sign random. ``hi == 0``
    returns zeros without drawing from ``rng``."""
    return _draw_per_frame(range_deg, n_channels, rng, _with_random_sign, 1)[:, 0]


def rotate_frames(
    images: np.ndarray, angles_deg: np.ndarray, mode: str = "grid-wrap"
) -> np.ndarray:
    """``images`` (C, H, W) with channel ``c`` rotated by ``angles_deg[c]`` about the image
    centre (see the module docstring for the sense). Zero angles come back unchanged.
    ``mode`` fills what comes from outside the frame (:func:`scipy.ndimage.rotate`):
    ``grid-wrap`` for a periodic simulated cell, ``reflect`` for a recorded frame."""
    images = np.asarray(images, dtype=float)
    angles_deg = np.asarray(angles_deg, dtype=float)
    if images.ndim != 3 or angles_deg.shape != (images.shape[0],):
        raise TemflowError(
            f"frame rotations {angles_deg.shape} do not match a (C, H, W) series {images.shape}"
        )
    out = images.copy()
    for c, angle in enumerate(angles_deg):
        if angle != 0:
            # scipy turns counter-clockwise as displayed (y down): R(-angle) in (x, y)
            out[c] = rotate(images[c], -angle, reshape=False, order=3, mode=mode)
    return out


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


def shift_attrs(shifts_A: np.ndarray, rotations_deg: np.ndarray) -> dict[str, object]:
    """What a shard stores per image: per-channel ``frame_shift_x_A`` / ``frame_shift_y_A``
    and ``frame_rotation_deg``, the largest magnitudes ``frame_shift_max_A`` and
    ``frame_rotation_max_deg`` (F1-against-parameter values) and the ``reference_channel``."""
    shifts_A = np.asarray(shifts_A, dtype=float)
    rotations_deg = np.asarray(rotations_deg, dtype=float)
    return {
        "frame_rotation_deg": [float(v) for v in rotations_deg],
        "frame_rotation_max_deg": float(np.abs(rotations_deg).max()),
        "frame_shift_x_A": [float(v) for v in shifts_A[:, 0]],
        "frame_shift_y_A": [float(v) for v in shifts_A[:, 1]],
        "frame_shift_max_A": float(np.hypot(shifts_A[:, 0], shifts_A[:, 1]).max()),
        "reference_channel": reference_channel(len(shifts_A)),
    }
