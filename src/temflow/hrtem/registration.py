"""Registration of the frames of a focal series: the drift between exposures, measured.

Two traps make plain cross-correlation of the raw frames unreliable:

* **Contrast changes, and can reverse, with defocus.** In the linear (weak-phase) image the
  spectrum of each frame is the specimen's times a *real* transfer function
  ``2 sin(chi(k))`` whose sign at a given ``k`` differs between focal settings, so the
  cross-power spectrum ``G F*`` of two frames is ``|F|^2 h(k) exp(-2 pi i k.s)`` with a
  real ``h`` of either sign, and its inverse transform can anti-correlate.
  :func:`register_pair` squares it: ``(G F*)^2 / |G F*| = |F|^2 |h| exp(-2 pi i k.2s)``
  has one positive peak at **twice** the shift whatever the signs.
* **A periodic lattice makes a shift ambiguous** by a lattice vector (3.16 A for MoS2, so
  by half of it after squaring) and nearly so by the Mo-S2 vector a/sqrt(3) = 1.83 A,
  which would swap the classes. The search is therefore restricted to shifts of at most
  ``max_shift_A`` (default 0.75 A: below a quarter of the lattice vector, so no lattice
  peak of the squared correlation lies inside the window; the true peak is the largest
  in it). Vacancies, edges and noise are not periodic, so they break ties only on the
  correct peak.

Only frequencies up to ``max_frequency_per_A`` (default 1.0 1/A) enter: a 50 keV
objective aperture of 50 mrad passes 0.93 1/A, and the intensity above it is made only
of non-linear interference terms (which differ between focal settings) and noise.
Astigmatic, non-linear images show an apparent shift between focal settings with no drift
at all; registration aligns the patterns, not the atoms (the training data live with the
same apparent shifts). Measured precision against the dose-noise bound:
docs/2026-12-06-registration-bound.md.

The peak is refined to ``1 / upsample`` of a pixel (of the doubled shift) by an upsampled
DFT around it (Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 33, 156 (2008), the method of
:func:`skimage.registration.phase_cross_correlation`). Shifts follow
:mod:`temflow.hrtem.frames`: ``(dx, dy)`` in A, the content of the moving frame displaced
by ``+(dx, dy)`` relative to the reference.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter
from scipy.signal.windows import tukey

from temflow.errors import TemflowError
from temflow.hrtem.frames import reference_channel, rotate_frames, shift_frames

#: Default search radius of :func:`register_series`, A (see the module docstring).
MAX_SHIFT_A = 0.75
#: Default highest spatial frequency used, 1/A (above a 50 mrad aperture at 50 keV).
MAX_FREQUENCY_PER_A = 1.0


def _window(shape: tuple[int, int]) -> np.ndarray:
    """A Tukey window (flat centre, cosine edges over 10 % per side): real frames are not
    periodic, and their edges would otherwise add a spurious peak at zero shift."""
    return np.outer(tukey(shape[0], 0.2), tukey(shape[1], 0.2))


def _upsampled_correlation(
    spectrum: np.ndarray, centre_px: np.ndarray, half_width_px: float, upsample: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inverse DFT of ``spectrum`` on a grid of step ``1 / upsample`` px around
    ``centre_px`` (row, col): values (n, n), row and column coordinates."""
    h, w = spectrum.shape
    n = int(2 * half_width_px * upsample) + 1
    offsets = (np.arange(n) - n // 2) / upsample
    rows, cols = centre_px[0] + offsets, centre_px[1] + offsets
    ky, kx = np.fft.fftfreq(h), np.fft.fftfreq(w)
    ey = np.exp(2j * np.pi * rows[:, None] * ky[None, :])
    ex = np.exp(2j * np.pi * kx[:, None] * cols[None, :])
    return np.real(ey @ spectrum @ ex) / (h * w), rows, cols


def _register_pair(
    reference: np.ndarray,
    moving: np.ndarray,
    sampling_A: float,
    max_shift_A: float = MAX_SHIFT_A,
    upsample: int = 50,
    window: bool = True,
    max_frequency_per_A: float | None = MAX_FREQUENCY_PER_A,
) -> tuple[np.ndarray, float]:
    """:func:`register_pair`'s shift and the coherence of its correlation peak: the
    weighted mean of ``cos`` of the phase left over at every frequency (1 when the frames
    are the same pattern shifted)."""
    reference = np.asarray(reference, dtype=float)
    moving = np.asarray(moving, dtype=float)
    if reference.shape != moving.shape or reference.ndim != 2:
        raise TemflowError(f"frames to register differ in shape: {reference.shape}, {moving.shape}")
    if not max_shift_A > 0 or not sampling_A > 0:
        raise TemflowError(
            f"registration needs max_shift_A > 0 and sampling_A > 0, got {max_shift_A}, "
            f"{sampling_A}"
        )
    taper = _window(reference.shape) if window else 1.0
    f = np.fft.fft2((reference - reference.mean()) * taper)
    g = np.fft.fft2((moving - moving.mean()) * taper)
    cross = g * np.conj(f)
    magnitude = np.abs(cross)
    spectrum = np.divide(cross**2, magnitude, out=np.zeros_like(cross), where=magnitude > 0)
    if max_frequency_per_A is not None:
        ky = np.fft.fftfreq(reference.shape[0], sampling_A)
        kx = np.fft.fftfreq(reference.shape[1], sampling_A)
        spectrum[ky[:, None] ** 2 + kx[None, :] ** 2 > max_frequency_per_A**2] = 0
    corr = np.real(np.fft.ifft2(spectrum))
    h, w = corr.shape
    dy = np.fft.fftfreq(h) * h  # signed pixel lags of the doubled shift
    dx = np.fft.fftfreq(w) * w
    radius_px = 2 * max_shift_A / sampling_A
    inside = dy[:, None] ** 2 + dx[None, :] ** 2 <= radius_px**2
    # the highest local maximum inside the window: a value on the window's edge is the
    # flank of a peak outside it (a lattice or Mo-S2 vector), not a shift
    peaks = inside & (corr == maximum_filter(corr, size=3, mode="wrap"))
    if not peaks.any():
        peaks = inside
    masked = np.where(peaks, corr, -np.inf)
    i, j = np.unravel_index(int(np.argmax(masked)), corr.shape)
    fine, rows, cols = _upsampled_correlation(spectrum, np.array([dy[i], dx[j]]), 1.0, upsample)
    a, b = np.unravel_index(int(np.argmax(fine)), fine.shape)
    total = np.abs(spectrum).sum()
    coherence = float(fine[a, b] * h * w / total) if total > 0 else 0.0
    return np.array([cols[b], rows[a]]) * sampling_A / 2, coherence


def register_pair(
    reference: np.ndarray,
    moving: np.ndarray,
    sampling_A: float,
    max_shift_A: float = MAX_SHIFT_A,
    upsample: int = 50,
    window: bool = True,
    max_frequency_per_A: float | None = MAX_FREQUENCY_PER_A,
) -> np.ndarray:
    """The shift (dx, dy) in A of ``moving`` relative to ``reference`` (two (H, W) frames,
    possibly at different defocus), at most ``max_shift_A`` long (see the module
    docstring for the method). ``window=False`` skips the edge taper (periodic frames)."""
    shift, _ = _register_pair(
        reference, moving, sampling_A, max_shift_A, upsample, window, max_frequency_per_A
    )
    return shift


def register_series(
    images: np.ndarray,
    sampling_A: float,
    max_shift_A: float = MAX_SHIFT_A,
    upsample: int = 50,
    window: bool = True,
    max_frequency_per_A: float | None = MAX_FREQUENCY_PER_A,
) -> np.ndarray:
    """Shifts (C, 2) = (dx, dy) A of every channel of a focal series (C, H, W) relative to
    its reference channel (:func:`temflow.hrtem.frames.reference_channel`, zero)."""
    images = np.asarray(images, dtype=float)
    if images.ndim != 3:
        raise TemflowError(f"a focal series to register must be (C, H, W), got {images.shape}")
    ref = reference_channel(images.shape[0])
    shifts = np.zeros((images.shape[0], 2))
    for c in range(images.shape[0]):
        if c != ref:
            shifts[c] = register_pair(
                images[ref],
                images[c],
                sampling_A,
                max_shift_A,
                upsample,
                window,
                max_frequency_per_A,
            )
    return shifts


def estimate_rotation(
    reference: np.ndarray,
    moving: np.ndarray,
    sampling_A: float,
    max_angle_deg: float,
    max_shift_A: float = MAX_SHIFT_A,
    max_size_px: int = 512,
    mode: str = "reflect",
) -> float:
    """The rotation (deg, the sense of :func:`temflow.hrtem.frames.rotate_frames`) of
    ``moving`` against ``reference``, at most ``max_angle_deg``.

    ``moving`` is rotated back by every angle of a grid (a step that moves the corner of
    the frame by half a pixel) and registered to ``reference`` (:func:`register_pair`);
    the angle whose correlation peak is most coherent wins, refined by a parabola. Only
    the central square of at most ``max_size_px`` is searched: a residual rotation shows
    as a shift that grows with the distance from the centre, which a translation cannot
    undo, so the coherence falls on both sides of the true angle."""
    if not max_angle_deg > 0:
        raise TemflowError(f"rotation search needs max_angle_deg > 0, got {max_angle_deg}")
    reference = np.asarray(reference, dtype=float)
    moving = np.asarray(moving, dtype=float)
    n = min(min(reference.shape), max_size_px)
    top, left = (reference.shape[0] - n) // 2, (reference.shape[1] - n) // 2
    crop = (slice(top, top + n), slice(left, left + n))
    ref, mov = reference[crop], moving[crop]
    step = np.rad2deg(0.5 / (n / np.sqrt(2)))
    n_steps = int(np.ceil(max_angle_deg / step))
    angles = np.arange(-n_steps, n_steps + 1) * step

    def coherence(angle: float) -> float:
        back = rotate_frames(mov[None], np.array([-angle]), mode)[0]
        return _register_pair(ref, back, sampling_A, max_shift_A, 10)[1]

    scores = np.array([coherence(a) for a in angles])
    i = int(np.argmax(scores))
    best = float(angles[i])
    if 0 < i < len(angles) - 1:
        left_, mid, right = scores[i - 1 : i + 2]
        curvature = left_ - 2 * mid + right
        if curvature < 0:
            best += step * 0.5 * (left_ - right) / curvature
    return float(np.clip(best, -max_angle_deg, max_angle_deg))


def register_series_rigid(
    images: np.ndarray,
    sampling_A: float,
    max_shift_A: float = MAX_SHIFT_A,
    max_rotation_deg: float = 2.0,
    mode: str = "reflect",
) -> tuple[np.ndarray, np.ndarray]:
    """Shifts (C, 2) = (dx, dy) A and rotations (C,) deg of every channel of a focal series
    against its reference channel, in the convention of :mod:`temflow.hrtem.frames` (the
    content rotated about the centre, then shifted). Each channel's rotation is
    :func:`estimate_rotation`; the channel rotated back (``mode`` fills its corners) is
    registered by :func:`register_pair`, and that shift turned by the rotation."""
    images = np.asarray(images, dtype=float)
    if images.ndim != 3:
        raise TemflowError(f"a focal series to register must be (C, H, W), got {images.shape}")
    ref = reference_channel(images.shape[0])
    shifts = np.zeros((images.shape[0], 2))
    rotations = np.zeros(images.shape[0])
    for c in range(images.shape[0]):
        if c == ref:
            continue
        rotations[c] = estimate_rotation(
            images[ref], images[c], sampling_A, max_rotation_deg, max_shift_A, mode=mode
        )
        back = rotate_frames(images[c][None], np.array([-rotations[c]]), mode)[0]
        turned = register_pair(images[ref], back, sampling_A, max_shift_A)
        theta = np.deg2rad(rotations[c])
        turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        shifts[c] = turn @ turned
    return shifts, rotations


def align_series(
    images: np.ndarray,
    shifts_A: np.ndarray,
    sampling_A: float,
    rotations_deg: np.ndarray | None = None,
    mode: str = "reflect",
) -> np.ndarray:
    """Undo measured shifts (and rotations): every channel moved back into the reference
    channel's frame (shifted back, then rotated back; ``mode`` as in
    :func:`temflow.hrtem.frames.rotate_frames`)."""
    out = shift_frames(images, -np.asarray(shifts_A, dtype=float), sampling_A)
    if rotations_deg is not None and np.any(np.asarray(rotations_deg) != 0):
        out = rotate_frames(out, -np.asarray(rotations_deg, dtype=float), mode)
    return out
