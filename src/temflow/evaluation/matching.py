"""One-to-one matching of predicted to true columns and precision / recall / F1.

A predicted column matches a true column of the same class within ``radius_A``; the
assignment is optimal (maximum number of matches, then minimum total distance; scipy
``linear_sum_assignment``). A prediction of the wrong class is both a false positive
(for its class) and leaves a miss (for the true class).

Conventions for empty sets: precision is 1 when nothing is predicted and nothing is
true, 0 when nothing is predicted but columns exist; recall likewise; F1 is
``2 TP / (n_pred + n_true)``, and 1 when both are empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist


@dataclass(frozen=True)
class MatchResult:
    """Counts per class and the matched pairs.

    Attributes:
        classes: class names.
        tp, n_pred, n_true: per-class counts (arrays of len(classes)).
        pairs: (m, 2) indices (prediction, truth) of the matches.
    """

    classes: tuple[str, ...]
    tp: np.ndarray
    n_pred: np.ndarray
    n_true: np.ndarray
    pairs: np.ndarray

    @staticmethod
    def _prf(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
        precision = tp / n_pred if n_pred else (1.0 if n_true == 0 else 0.0)
        recall = tp / n_true if n_true else (1.0 if n_pred == 0 else 0.0)
        f1 = 2.0 * tp / (n_pred + n_true) if (n_pred + n_true) else 1.0
        return precision, recall, f1

    def overall(self) -> tuple[float, float, float]:
        """(precision, recall, F1) over all classes."""
        return self._prf(int(self.tp.sum()), int(self.n_pred.sum()), int(self.n_true.sum()))

    def per_class(self, name: str) -> tuple[float, float, float]:
        """(precision, recall, F1) of one class."""
        c = self.classes.index(name)
        return self._prf(int(self.tp[c]), int(self.n_pred[c]), int(self.n_true[c]))

    def false_positives(self) -> np.ndarray:
        """Indices of unmatched predictions."""
        return np.setdiff1d(np.arange(int(self.n_pred.sum())), self.pairs[:, 0])

    def misses(self) -> np.ndarray:
        """Indices of unmatched true columns."""
        return np.setdiff1d(np.arange(int(self.n_true.sum())), self.pairs[:, 1])


def match_columns(
    pred_xy: np.ndarray,
    pred_class: np.ndarray,
    true_xy: np.ndarray,
    true_class: np.ndarray,
    classes: Sequence[str],
    radius_A: float = 0.5,
) -> MatchResult:
    """Match predicted to true columns class by class within ``radius_A``.

    Args:
        pred_xy, true_xy: (n, 2) positions in Angstrom.
        pred_class, true_class: (n,) integer class indices into ``classes``.
        classes: class names.
        radius_A: largest distance of a match.
    """
    pred_xy = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
    true_xy = np.asarray(true_xy, dtype=np.float64).reshape(-1, 2)
    pred_class = np.asarray(pred_class, dtype=np.int64).reshape(-1)
    true_class = np.asarray(true_class, dtype=np.int64).reshape(-1)
    if len(pred_xy) != len(pred_class) or len(true_xy) != len(true_class):
        raise ValueError("positions and class arrays differ in length")
    k = len(classes)
    tp = np.zeros(k, dtype=np.int64)
    n_pred = np.bincount(pred_class, minlength=k)[:k]
    n_true = np.bincount(true_class, minlength=k)[:k]
    pairs = []
    for c in range(k):
        ip = np.flatnonzero(pred_class == c)
        it = np.flatnonzero(true_class == c)
        if len(ip) == 0 or len(it) == 0:
            continue
        dist = cdist(pred_xy[ip], true_xy[it])
        feasible = dist <= radius_A
        if not feasible.any():
            continue
        # A large cost for infeasible pairs: maximising the number of matches first.
        big = 1.0 + radius_A * (min(len(ip), len(it)) + 1)
        rows, cols = linear_sum_assignment(np.where(feasible, dist, big))
        ok = feasible[rows, cols]
        tp[c] = int(ok.sum())
        pairs.append(np.stack([ip[rows[ok]], it[cols[ok]]], axis=1))
    pairs_arr = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    return MatchResult(tuple(classes), tp, n_pred, n_true, pairs_arr)


def match_positions(pred_xy: np.ndarray, true_xy: np.ndarray, radius_A: float = 0.5) -> MatchResult:
    """Match predicted to true columns within ``radius_A`` whatever their class (one class,
    ``"any"``).

    Its F1 measures how well the columns are found; the gap to the class F1 of
    :func:`match_columns` on the same columns is what wrong classes cost.
    """
    pred_xy = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
    true_xy = np.asarray(true_xy, dtype=np.float64).reshape(-1, 2)
    return match_columns(
        pred_xy,
        np.zeros(len(pred_xy), dtype=np.int64),
        true_xy,
        np.zeros(len(true_xy), dtype=np.int64),
        ("any",),
        radius_A,
    )


def score_table_row(result: MatchResult) -> dict[str, float | int]:
    """Flat record for the evaluation CSV: overall and per-class P/R/F1 and counts."""
    p, r, f = result.overall()
    row: dict[str, float | int] = {
        "precision": p,
        "recall": r,
        "f1": f,
        "n_true": int(result.n_true.sum()),
        "n_pred": int(result.n_pred.sum()),
        "tp": int(result.tp.sum()),
    }
    for c, name in enumerate(result.classes):
        pc, rc, fc = result.per_class(name)
        row[f"precision_{name}"] = pc
        row[f"recall_{name}"] = rc
        row[f"f1_{name}"] = fc
        row[f"n_true_{name}"] = int(result.n_true[c])
        row[f"n_pred_{name}"] = int(result.n_pred[c])
        row[f"tp_{name}"] = int(result.tp[c])
    return row
