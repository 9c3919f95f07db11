"""Train and evaluate the column-segmentation networks (MSD-net, U-net).

Formulation: the network outputs one linear map per column class (Mo, S2, S1); training
minimises the mean squared error, per class weighted (:func:`class_weights`), against
unit-height Gaussian maps of the true column positions (DTU practice, no background
class). Columns are the local maxima of each map above a threshold
(:mod:`temflow.evaluation.peaks`), matched to the truth within ``match_radius_A``
(:mod:`temflow.evaluation.matching`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from temflow.errors import TemflowError
from temflow.evaluation import (
    MatchResult,
    find_peaks_per_class,
    match_columns,
    match_positions,
    score_table_row,
)
from temflow.models import MSDNet, UNet
from temflow.segmentation import IMAGE_PARAMETERS
from temflow.segmentation.data import (
    ColumnImages,
    SegmentationDataset,
    describe_sources,
    load_column_images,
    make_augment,
)
from temflow.training import (
    TrainConfig,
    load_model,
    predict,
    save_model,
    seed_everything,
    sha256_file,
    train,
)

log = logging.getLogger(__name__)

#: Network name in the workflow -> model class.
NETWORKS: dict[str, type[nn.Module]] = {"msdnet": MSDNet, "unet": UNet}

NORMALISATION = "per image and channel: zero mean, unit standard deviation"


def build_network(net: str, arch: Mapping[str, Any], in_channels: int, n_classes: int) -> nn.Module:
    """MSD-net or U-net from its config section (``depth``, ``width`` / ``base_width``)."""
    if net not in NETWORKS:
        raise TemflowError(
            f"segmentation: unknown network {net!r}; expected one of {sorted(NETWORKS)}"
        )
    return NETWORKS[net](in_channels=in_channels, out_channels=n_classes, **dict(arch))


#: ``segmentation.class_weights`` settings.
CLASS_WEIGHTINGS = ("balanced", "none")


def class_weights(data: ColumnImages, mode: str) -> np.ndarray:
    """Per-class weight of the squared error, normalised to mean 1.

    ``balanced``: inversely proportional to the class's number of columns in ``data``,
    so that every class contributes equally to the loss (each column adds one Gaussian
    of the same size to its map). Without it the rare single-S columns (S1, about 5 %
    of the columns) hardly move the loss and a width-1 MSD-net never learns them (its
    S1 map stayed near 0 at true S1 columns; BENCHMARKS.md). A class without columns
    (a small set may hold no S1) gets the largest weight of the others, with a warning.
    ``none``: all ones. Raises TemflowError for an unknown mode or, when balancing, a set
    without any columns.
    """
    n_classes = len(data.classes)
    if mode == "none":
        return np.ones(n_classes)
    if mode != "balanced":
        raise TemflowError(
            f"segmentation.class_weights: expected one of {list(CLASS_WEIGHTINGS)}, got {mode!r}"
        )
    labels = [np.asarray(c["class"], dtype=np.int64) for c in data.columns]
    counts = np.bincount(np.concatenate(labels or [np.zeros(0, np.int64)]), minlength=n_classes)
    counts = counts[:n_classes].astype(float)
    if not counts.any():
        raise TemflowError(
            "segmentation.class_weights: balanced, but the training images hold no columns"
        )
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = 1.0 / counts[present]
    if not present.all():
        log.warning(
            "class_weights: the training images hold no %s columns; that map gets the "
            "largest weight of the other classes",
            ", ".join(data.classes[k] for k in np.flatnonzero(~present)),
        )
        weights[~present] = weights[present].max()
    return weights / weights.mean()


def weighted_mse_loss(weights: Sequence[float]):
    """Mean squared error (in float32) between predicted and Gaussian target maps, the
    squared error of class map ``k`` scaled by ``weights[k]`` (all ones: plain MSE)."""
    w = torch.as_tensor(np.asarray(weights, dtype=np.float32)).view(1, -1, 1, 1)

    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        err = (outputs.float() - targets.float()).square()
        return (err * w.to(err.device)).mean()

    return loss


def train_segmentation(
    net: str,
    arch: Mapping[str, Any],
    train_data: ColumnImages,
    val_data: ColumnImages,
    config: TrainConfig,
    target_width_A: float,
    work_dir: str | Path,
    metrics_csv: str | Path,
    model_path: str | Path,
    data_files: Mapping[str, Sequence[str | Path]],
    substrate: str = "",
    crop_px: int | None = None,
    detection: Mapping[str, float] | None = None,
    class_weighting: str = "none",
) -> dict:
    """Train one network with the shared loop and save it with its model card.

    Training batches are random ``crop_px`` windows (None: whole images) under random
    flips / 90-degree rotations; validation uses whole images. ``val_data`` (images held
    out of training, not the evaluation set) selects the best epoch and, when
    ``detection`` (``min_separation_A``, ``match_radius_A``, ``border_A``) is given,
    calibrates the peak threshold (:func:`calibrate_threshold`), stored in the card as
    ``peak_threshold``. The card records the training data's sampling range
    (``sampling_range_A``: the range the shards drew it from; ``sampling_A``: its
    middle). ``class_weighting`` (:func:`class_weights`, from the training images)
    weights the squared error of each class map; the card records the weights. Returns
    the model card.
    """
    if len(train_data) == 0:
        raise TemflowError("segmentation: the training set is empty")
    if len(val_data) == 0:
        raise TemflowError("segmentation: the validation set is empty")
    if tuple(train_data.classes) != tuple(val_data.classes):
        raise TemflowError(
            f"segmentation: training classes {train_data.classes} differ from "
            f"validation classes {val_data.classes}"
        )
    in_channels = int(train_data.images.shape[1])
    weights = class_weights(train_data, class_weighting)
    seed_everything(config.seed)
    model = build_network(net, arch, in_channels, len(train_data.classes))
    hashes = {
        role: {str(p): sha256_file(p) for p in sorted(map(str, files))}
        for role, files in data_files.items()
    }
    lo, hi = train_data.sampling_range_A
    log.info(
        "%s %s: %d training, %d validation images of %s px at %.4g-%.4g A/px, %d parameters",
        net,
        substrate,
        len(train_data),
        len(val_data),
        train_data.images.shape[1:],
        lo,
        hi,
        sum(p.numel() for p in model.parameters()),
    )
    result = train(
        model,
        SegmentationDataset(train_data, target_width_A),
        SegmentationDataset(val_data, target_width_A),
        weighted_mse_loss(weights),
        config,
        work_dir,
        metrics_csv,
        augment=make_augment(crop_px),
        # the image counts change with segmentation.training_val_images (same files)
        fingerprint={
            "data": hashes,
            "target_width_A": target_width_A,
            "crop_px": crop_px,
            "class_weights": [round(float(w), 9) for w in weights],
            "n_train": len(train_data),
            "n_val": len(val_data),
        },
    )
    log.info(
        "trained on %s: best val loss %.5g at epoch %d of %d%s",
        result.device,
        result.best_val_loss,
        result.best_epoch,
        result.epochs_run,
        " (early stop)" if result.stopped_early else "",
    )
    calibration = None
    if detection is not None:
        threshold, scores = calibrate_threshold(
            model,
            val_data,
            detection["min_separation_A"],
            detection["match_radius_A"],
            detection.get("border_A", 0.0),
            device=config.device,
        )
        calibration = {
            "value": threshold,
            "mean_f1": scores[threshold],
            "n_images": len(val_data),
            "images": "held out of training (not the evaluation set)",
            "mean_f1_by_threshold": {f"{t:.2f}": round(v, 6) for t, v in scores.items()},
        }
        log.info(
            "peak threshold %.2f (mean F1 %.4f on %d held-out images)",
            threshold,
            scores[threshold],
            len(val_data),
        )
    card = {
        "network": net,
        "substrate": substrate,
        "classes": list(train_data.classes),
        "in_channels": in_channels,
        "sampling_range_A": [lo, hi],
        "sampling_A": (lo + hi) / 2,
        "target_width_A": float(target_width_A),
        "train_crop_px": crop_px,
        "normalisation": NORMALISATION,
        "output": "linear per-class maps fitted to unit-height Gaussians (MSE)",
        "class_weights": {
            "mode": class_weighting,
            "weights": dict(zip(train_data.classes, map(float, weights), strict=True)),
        },
        "training": config.to_dict(),
        "data": hashes,
        "metrics": {
            "best_val_loss": result.best_val_loss,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early,
            "final_train_loss": result.history[-1]["train_loss"] if result.history else None,
            "device": result.device,
        },
    }
    if calibration is not None:
        card["peak_threshold"] = calibration
    return save_model(model_path, model, card)


def load_segmentation_model(
    model_path: str | Path, net: str, data: ColumnImages
) -> tuple[nn.Module, dict]:
    """Load a trained network and check that it fits ``data``.

    Raises TemflowError (naming the file) when the architecture is not ``net``'s, the
    card's classes or input channels differ from the data's, or an image's sampling lies
    outside the card's trained range.
    """
    if net not in NETWORKS:
        raise TemflowError(f"segmentation: unknown network {net!r}")
    cls = NETWORKS[net]
    model, card = load_model(
        model_path, expected={"architecture": {"class": cls.__name__}}, factory=cls
    )
    if list(card.get("classes", [])) != list(data.classes):
        raise TemflowError(
            f"{model_path}: model classes {card.get('classes')} do not match "
            f"the data's classes {list(data.classes)}"
        )
    if int(card.get("in_channels", -1)) != int(data.images.shape[1]):
        raise TemflowError(
            f"{model_path}: model expects {card.get('in_channels')} input "
            f"channels, the data has {data.images.shape[1]}"
        )
    lo, hi = card_sampling_range(card, model_path)
    s = np.asarray(data.sampling_A, dtype=float)
    outside = np.flatnonzero((s < lo * (1 - 1e-6)) | (s > hi * (1 + 1e-6)))
    if len(outside):
        k = int(outside[0])
        raise TemflowError(
            f"{model_path}: model trained at sampling_A {lo:.6g}-{hi:.6g} A/px, but "
            f"{len(outside)} of {len(s)} images lie outside that range (image {k}: "
            f"{s[k]:.6g} A/px)"
        )
    return model, card


def card_sampling_range(
    card: Mapping[str, Any], source: str | Path = "model card"
) -> tuple[float, float]:
    """The pixel-size range (A/px) a model was trained on: the card's ``sampling_range_A``,
    or ``(sampling_A, sampling_A)`` for cards written before per-image sampling."""
    try:
        if "sampling_range_A" in card:
            lo, hi = (float(v) for v in card["sampling_range_A"])
        else:
            lo = hi = float(card["sampling_A"])
    except (KeyError, TypeError, ValueError):
        raise TemflowError(
            f"{source}: model card has no valid sampling_range_A [min, max] or sampling_A"
        ) from None
    if not 0 < lo <= hi:
        raise TemflowError(
            f"{source}: model card sampling range [{lo}, {hi}] is not 0 < min <= max"
        )
    return lo, hi


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


def _inside(
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
        keep = _inside(xy, shape, s, border_A)
        xy, cls = xy[keep], cls[keep]
        txy = np.stack(
            [np.asarray(cols["x_A"], float), np.asarray(cols["y_A"], float)], axis=1
        ).reshape(-1, 2)
        tcls = np.asarray(cols["class"], dtype=np.int64)
        tkeep = _inside(txy, shape, s, border_A)
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


def calibrated_threshold(card: Mapping[str, Any]) -> float | None:
    """The peak threshold calibrated at training time (model card), or None."""
    calibrated = card.get("peak_threshold")
    if isinstance(calibrated, Mapping) and "value" in calibrated:
        return float(calibrated["value"])
    return None


def resolve_threshold(setting: float | str, card: Mapping[str, Any], model_path: str) -> float:
    """``auto`` -> the threshold calibrated at training time (from the model card)."""
    if setting != "auto":
        return float(setting)
    value = calibrated_threshold(card)
    if value is None:
        raise TemflowError(
            f"{model_path}: peak_threshold is auto but the model card has no calibrated "
            "threshold (retrain the model, or set segmentation.peak_threshold to a number)"
        )
    return value


def image_parameters(
    paths: Sequence[str | Path], keys: Sequence[str], data: ColumnImages
) -> dict[str, np.ndarray]:
    """Per-image parameters ``keys`` (e.g. ``dose_e_per_A2``) of ``data``'s images, read
    from their shards (``paths``), in ``data``'s order. ``defocus_mean_A`` is the mean of
    the image's ``defoci_A``."""
    from temflow.hrtem.shards import open_dataset

    ds = open_dataset(paths)
    by_image = {(str(meta["shard"]), int(meta["index"])): meta for _, _, meta in ds}
    out = {}
    for key in keys:
        try:
            values = []
            for f, i in data.sources:
                meta = by_image[(str(f), int(i))]
                if key == "defocus_mean_A":
                    values.append(float(np.mean(meta["defoci_A"])))
                else:
                    values.append(float(meta[key]))
        except (KeyError, TypeError) as err:
            stored = "defoci_A" if key == "defocus_mean_A" else key
            raise TemflowError(
                f"shards {describe_sources(paths)}: no {stored!r} for every image"
            ) from err
        out[key] = np.array(values)
    return out


def evaluation_table(detections: Sequence[Detection], data: ColumnImages) -> pd.DataFrame:
    """One row per image: source file and index, its sampling (A/px), overall and
    per-class P/R/F1, counts, and P/R/F1 whatever the class (``*_any_class``)."""
    rows = []
    for i, det in enumerate(detections):
        src = data.sources[i] if i < len(data.sources) else ("", i)
        rows.append(
            {
                "image": i,
                "file": Path(src[0]).name,
                "index": src[1],
                "sampling_A": float(data.sampling_A[i]),
                **score_table_row(det.match),
                **dict(
                    zip(
                        ("precision_any_class", "recall_any_class", "f1_any_class"),
                        det.position_match.overall(),
                        strict=True,
                    )
                ),
            }
        )
    return pd.DataFrame(rows)


def evaluate_segmentation(
    model_path: str | Path,
    net: str,
    val_paths: Sequence[str | Path],
    peak_threshold: float | str,
    min_separation_A: float,
    match_radius_A: float,
    border_A: float,
    device: str = "auto",
    image_parameter_keys: Sequence[str] = IMAGE_PARAMETERS,
) -> tuple[pd.DataFrame, float]:
    """Score a trained network on validation shards: one :func:`evaluation_table` row per
    image plus its simulation parameters ``image_parameter_keys`` (see
    :func:`image_parameters`; default dose, defocus, aberrations), and the peak threshold
    used (``auto``: the model card's calibrated one)."""
    data = load_column_images(val_paths)
    model, card = load_segmentation_model(model_path, net, data)
    threshold = resolve_threshold(peak_threshold, card, str(model_path))
    detections = detect_columns(
        model, data, threshold, min_separation_A, match_radius_A, border_A, device=device
    )
    table = evaluation_table(detections, data)
    for key, values in image_parameters(val_paths, image_parameter_keys, data).items():
        table[key] = values
    return table, threshold
