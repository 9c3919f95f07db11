"""Columns from a network's class maps: prediction, peaks, matching, threshold calibration.

Columns are the local maxima of each class map above a threshold
(:mod:`temflow.evaluation.peaks`), matched to the truth within ``match_radius_A``
(:mod:`temflow.evaluation.matching`). Networks trained for different lengths peak at
different heights, so each model's threshold is calibrated on images held out of its
training (:func:`calibrate_model`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from temflow.errors import TemflowError
from temflow.evaluation import MatchResult, find_peaks_per_class, match_columns, match_positions
from temflow.segmentation.card import load_segmenter
from temflow.segmentation.data import (
    ColumnImages,
    SegmentationDataset,
    holdout_split,
    load_column_images,
)
from temflow.training import predict, save_model

log = logging.getLogger(__name__)


@dataclass
class Detection:
    """Detected columns of one image and their match against the truth by class, within
    ``match_radius_A``."""

    xy_A: np.ndarray
    class_index: np.ndarray
    true_xy_A: np.ndarray
    true_class: np.ndarray
    match: MatchResult
    match_radius_A: float

    @property
    def position_match(self) -> MatchResult:
        """The match whatever the class (:func:`match_positions`); computed on demand, as
        threshold calibration does not need it."""
        return match_positions(self.xy_A, self.true_xy_A, self.match_radius_A)


def inside_border(
    xy: np.ndarray, shape: tuple[int, int], sampling_A: float, border_A: float
) -> np.ndarray:
    h, w = shape
    x_max, y_max = (w - 1) * sampling_A - border_A, (h - 1) * sampling_A - border_A
    return (
        (xy[:, 0] >= border_A) & (xy[:, 0] <= x_max) & (xy[:, 1] >= border_A) & (xy[:, 1] <= y_max)
    )


def predict_maps(
    model: nn.Module, data: ColumnImages, batch_size: int = 8, device: str = "auto"
) -> np.ndarray:
    """Per-class output maps (N, K, H, W) of ``model`` for every normalised image."""
    if len(data) == 0:
        raise TemflowError("segmentation: the validation set is empty")
    inputs = SegmentationDataset(data, 1.0)._inputs
    return np.concatenate(
        [
            predict(model, inputs[start : start + batch_size], batch_size, device).numpy()
            for start in range(0, len(data), batch_size)
        ]
    )


def detect_in_maps(
    maps: np.ndarray,
    data: ColumnImages,
    threshold: float,
    min_separation_A: float,
    match_radius_A: float,
    border_A: float = 0.0,
) -> list[Detection]:
    """Peaks per class in precomputed ``maps`` (see :func:`predict_maps`), matched to the
    truth. Columns (true and predicted) closer than ``border_A`` to the edge are ignored."""
    shape = tuple(data.images.shape[-2:])
    out = []
    for i, m in enumerate(maps):
        s = float(data.sampling_A[i])  # separations, border and radius are in A
        cols = data.columns[i]
        xy, cls = find_peaks_per_class(m, s, threshold, min_separation_A, data.classes)
        keep = inside_border(xy, shape, s, border_A)
        xy, cls = xy[keep], cls[keep]
        txy = np.stack(
            [np.asarray(cols["x_A"], float), np.asarray(cols["y_A"], float)], axis=1
        ).reshape(-1, 2)
        tcls = np.asarray(cols["class"], dtype=np.int64)
        tkeep = inside_border(txy, shape, s, border_A)
        txy, tcls = txy[tkeep], tcls[tkeep]
        match = match_columns(xy, cls, txy, tcls, data.classes, match_radius_A)
        out.append(Detection(xy, cls, txy, tcls, match, match_radius_A))
    return out


def detect_columns(
    model: nn.Module,
    data: ColumnImages,
    threshold: float,
    min_separation_A: float,
    match_radius_A: float,
    border_A: float = 0.0,
    batch_size: int = 8,
    device: str = "auto",
) -> list[Detection]:
    """Run ``model`` on every image, find peaks per class and match them to the truth.

    Columns (true and predicted) closer than ``border_A`` to the image edge are ignored.
    """
    maps = predict_maps(model, data, batch_size, device)
    return detect_in_maps(maps, data, threshold, min_separation_A, match_radius_A, border_A)


#: Candidate peak thresholds for :func:`calibrate_threshold` (targets peak at 1).
THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(2, 19))


def calibrate_threshold(
    model: nn.Module,
    data: ColumnImages,
    min_separation_A: float,
    match_radius_A: float,
    border_A: float = 0.0,
    thresholds: Sequence[float] = THRESHOLD_GRID,
    device: str = "auto",
) -> tuple[float, dict[float, float]]:
    """The peak threshold with the highest mean per-image F1 on ``data``.

    ``data`` must be images the network was not trained on and that are not the
    evaluation set (the workflow holds some training images out). Networks trained for
    different lengths peak at different heights (an under-trained one below the targets'
    1), so a fixed threshold favours one network over another; calibrating each on
    held-out images compares them fairly. Ties go to the threshold nearest 0.5. Returns
    the threshold and the mean F1 at every candidate.
    """
    if not thresholds:
        raise TemflowError("calibrate_threshold: no candidate thresholds")
    maps = predict_maps(model, data, device=device)
    scores = {}
    for t in thresholds:
        det = detect_in_maps(maps, data, float(t), min_separation_A, match_radius_A, border_A)
        scores[float(t)] = float(np.mean([d.match.overall()[2] for d in det]))
    best = max(scores, key=lambda t: (round(scores[t], 12), -abs(t - 0.5)))
    return best, scores


def calibrate_model(
    trained_pt: str | Path,
    final_pt: str | Path,
    train_paths: Sequence[str | Path],
    training_val_images: int,
    min_separation_A: float,
    match_radius_A: float,
    border_A: float = 0.0,
    device: str = "auto",
) -> dict:
    """Calibrate the peak threshold of the trained network ``trained_pt`` and write it
    with the threshold in its card (``peak_threshold``) to ``final_pt``; return the card.

    The images are the last ``training_val_images`` of the training shards
    ``train_paths``: held out of training (:func:`holdout_split`), not the evaluation set.
    """
    _, held_out = holdout_split(load_column_images(train_paths), training_val_images)
    model, card = load_segmenter(trained_pt, data=held_out)
    threshold, scores = calibrate_threshold(
        model, held_out, min_separation_A, match_radius_A, border_A, device=device
    )
    log.info(
        "peak threshold %.2f (mean F1 %.4f on %d held-out images)",
        threshold,
        scores[threshold],
        len(held_out),
    )
    card["peak_threshold"] = {
        "value": threshold,
        "mean_f1": scores[threshold],
        "n_images": len(held_out),
        "images": "held out of training (not the evaluation set)",
        "mean_f1_by_threshold": {f"{t:.2f}": round(v, 6) for t, v in scores.items()},
    }
    return save_model(final_pt, model, card)
