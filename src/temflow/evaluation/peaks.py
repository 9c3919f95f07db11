"""Atomic-column peaks in per-class network maps, refined to sub-pixel precision.

Coordinates: :func:`find_peaks` reports array indices ``(row, col)`` of a map ``m[row,
col]`` in (sub-)pixels. :func:`find_peaks_per_class` reports Angstrom positions in the
temflow HR-TEM image frame (temflow.hrtem.columns): pixel ``[i, j]`` samples
``x = j * sampling_A, y = i * sampling_A``, so a peak at ``(row, col)`` is at
``(x_A, y_A) = (col * sampling_A, row * sampling_A)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.feature import peak_local_max


def refine_subpixel(image: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Refine integer peak positions by a parabola through log-values along each axis.

    The logarithm of a Gaussian is a parabola, so for Gaussian-shaped peaks the fit
    through the maximum and its two neighbours is exact; where a neighbour is not
    positive the parabola is fitted to the values themselves. Offsets are clipped to
    +-0.5 px; peaks on the border keep the integer coordinate along that axis.

    Args:
        image: 2-D map.
        peaks: integer positions, shape (n, 2).

    Returns:
        Float positions, shape (n, 2).
    """
    image = np.asarray(image, dtype=np.float64)
    peaks = np.asarray(peaks, dtype=np.intp).reshape(-1, 2)
    out = peaks.astype(np.float64)
    for axis in (0, 1):
        n = image.shape[axis]
        inner = (peaks[:, axis] > 0) & (peaks[:, axis] < n - 1)
        if not inner.any():
            continue
        p = peaks[inner]
        lo, hi = p.copy(), p.copy()
        lo[:, axis] -= 1
        hi[:, axis] += 1
        f0 = image[p[:, 0], p[:, 1]]
        fm = image[lo[:, 0], lo[:, 1]]
        fp = image[hi[:, 0], hi[:, 1]]
        positive = (f0 > 0) & (fm > 0) & (fp > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            l0 = np.where(positive, np.log(np.where(positive, f0, 1.0)), f0)
            lm = np.where(positive, np.log(np.where(positive, fm, 1.0)), fm)
            lp = np.where(positive, np.log(np.where(positive, fp, 1.0)), fp)
            denom = lm - 2.0 * l0 + lp
            offset = np.where(denom < 0, 0.5 * (lm - lp) / denom, 0.0)
        out[inner, axis] += np.clip(np.nan_to_num(offset), -0.5, 0.5)
    return out


def find_peaks(
    image: np.ndarray,
    threshold: float,
    min_separation_px: float,
) -> np.ndarray:
    """Local maxima of ``image`` above ``threshold``, refined to sub-pixel precision.

    Args:
        image: 2-D map.
        threshold: absolute minimum peak height.
        min_separation_px: peaks closer than this (in pixels, per axis) are merged into
            the highest one (scikit-image ``peak_local_max`` ``min_distance``).

    Returns:
        Positions in pixels, shape (n, 2), sorted by decreasing peak height.
    """
    if image.ndim != 2:
        raise ValueError(f"find_peaks expects a 2-D map, got shape {image.shape}")
    min_distance = max(1, int(np.floor(min_separation_px)))
    idx = peak_local_max(
        np.asarray(image, dtype=np.float64),
        min_distance=min_distance,
        threshold_abs=threshold,
        exclude_border=False,
    )
    if len(idx) == 0:
        return np.zeros((0, 2))
    return refine_subpixel(image, idx)


def find_peaks_per_class(
    maps: np.ndarray,
    sampling_A: float,
    threshold: float,
    min_separation_A: float,
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of every class map, in Angstrom.

    Args:
        maps: (C, H, W) per-class maps (network output).
        sampling_A: pixel size in Angstrom.
        threshold: absolute peak threshold (Gaussian targets have height 1).
        min_separation_A: minimum distance between peaks of the same class.
        classes: class names (only used for the error message).

    Returns:
        ``(xy_A, class_index)``: (n, 2) float positions ``(x_A, y_A)`` and (n,) int
        class ids.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"expected per-class maps (C, H, W), got shape {maps.shape}")
    if classes is not None and len(classes) != maps.shape[0]:
        raise ValueError(f"{maps.shape[0]} maps for {len(classes)} classes {list(classes)}")
    positions, labels = [], []
    for c in range(maps.shape[0]):
        pk = find_peaks(maps[c], threshold, min_separation_A / sampling_A)
        positions.append(pk[:, ::-1] * sampling_A)
        labels.append(np.full(len(pk), c, dtype=np.int64))
    return np.concatenate(positions), np.concatenate(labels)
