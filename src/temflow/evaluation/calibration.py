"""Calibration of class probabilities: reliability, expected calibration error and
temperature scaling (Guo, Pleiss, Sun & Weinberger, ICML 2017).

A classifier is calibrated when, of the calls it makes with probability p, a fraction p
is right. The reliability table bins the top-class probability; the expected calibration
error (ECE) is the count-weighted mean gap between accuracy and mean confidence over the
bins. Temperature scaling divides the log-probabilities by one T > 0 (fitted to minimise
the negative log-likelihood on held-out tracks) before the softmax: it changes no call,
only how sure they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from temflow.errors import TemflowError

#: Equal-width bins of the top-class probability.
N_BINS = 10
#: Temperatures searched (log-spaced bounds).
TEMPERATURE_BOUNDS = (0.05, 20.0)


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, y = np.asarray(probs, dtype=float), np.asarray(labels, dtype=int)
    if p.ndim != 2 or y.shape != (len(p),) or len(p) == 0:
        raise TemflowError(
            f"calibration: expected probabilities (N, K) and N labels, got {p.shape}, {y.shape}"
        )
    return p, y


def reliability_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """Per bin of the top-class probability: ``low``, ``high``, ``n``, ``confidence``
    (mean top probability) and ``accuracy`` (share of right calls); empty bins kept."""
    p, y = _check(probs, labels)
    conf, right = p.max(axis=1), p.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = idx == b
        rows.append(
            {
                "low": edges[b],
                "high": edges[b + 1],
                "n": int(sel.sum()),
                "confidence": float(conf[sel].mean()) if sel.any() else np.nan,
                "accuracy": float(right[sel].mean()) if sel.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS
) -> float:
    """ECE: sum over bins of n_b / N x |accuracy_b - confidence_b| (top class)."""
    table = reliability_table(probs, labels, n_bins)
    full = table[table.n > 0]
    return float((full.n * (full.accuracy - full.confidence).abs()).sum() / full.n.sum())


def apply_temperature(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities softmax(log_probs / T), (N, K)."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise TemflowError(f"calibration temperature: expected > 0, got {temperature!r}")
    return np.exp(log_softmax(np.asarray(log_probs, float) / temperature, axis=1))


def fit_temperature(log_probs: np.ndarray, labels: np.ndarray) -> float:
    """The T in :data:`TEMPERATURE_BOUNDS` that minimises the mean negative log-likelihood
    of ``labels`` under softmax(log_probs / T)."""
    lp, y = _check(log_probs, labels)
    lp = np.maximum(lp, -80.0)  # a log-probability of -inf (p underflowed) stays finite

    def nll(log_t: float) -> float:
        scaled = log_softmax(lp / np.exp(log_t), axis=1)
        return float(-scaled[np.arange(len(y)), y].mean())

    lo, hi = np.log(TEMPERATURE_BOUNDS)
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))
