"""Argument checks shared by the generators (one clear TemflowError per bad value)."""

from __future__ import annotations

import numpy as np

from temflow.errors import TemflowError


def as_batch(value: float | np.ndarray, n: int, key: str) -> np.ndarray:
    """Broadcast a scalar or per-trajectory array to shape (n,) float64."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise TemflowError(f"{key}: expected a number or {n} values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise TemflowError(f"{key}: expected finite values")
    return arr


def check_length(length: int, key: str = "length") -> int:
    if int(length) != length or length < 2:
        raise TemflowError(f"{key}: expected an integer >= 2 frames, got {length}")
    return int(length)


def check_diffusion(d: np.ndarray, key: str = "diffusion_coefficient") -> None:
    if np.any(d <= 0):
        raise TemflowError(f"{key}: the diffusion coefficient must be > 0, got {d.min():g}")


def check_alpha(alpha: np.ndarray, low: float, high: float, high_inclusive: bool, key: str) -> None:
    bad = (alpha <= low) | ((alpha > high) if high_inclusive else (alpha >= high))
    if np.any(bad):
        bracket = "]" if high_inclusive else ")"
        raise TemflowError(
            f"{key}: alpha must lie in ({low:g}, {high:g}{bracket}, got {alpha[bad][0]:g}"
        )
