"""Classification and regression metrics for trajectory networks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(true, int), np.asarray(predicted, int)), 1)
    return out


def accuracy(true: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.asarray(true) == np.asarray(predicted)))


def mae_by_range(true: np.ndarray, predicted: np.ndarray, edges: Sequence[float]) -> pd.DataFrame:
    """MAE of ``predicted`` in bins of ``true`` (left-closed, last bin closed)."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    rows = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = i == len(edges) - 2
        sel = (true >= lo) & ((true <= hi) if last else (true < hi))
        err = np.abs(predicted[sel] - true[sel])
        rows.append(
            {
                "alpha_low": lo,
                "alpha_high": hi,
                "n": int(sel.sum()),
                "mae": float(err.mean()) if sel.any() else float("nan"),
            }
        )
    return pd.DataFrame(rows)
