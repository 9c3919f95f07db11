"""Train and evaluate the column-segmentation networks (MSD-net, U-net).

Formulation: the network outputs one linear map per column class (Mo, S2, S1); training
minimises the mean squared error against unit-height Gaussian maps of the true column
positions (DTU practice, no background class). Columns are the local maxima of each map
above a threshold (:mod:`temflow.evaluation.peaks`), matched to the truth within
``match_radius_A`` (:mod:`temflow.evaluation.matching`).
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
from temflow.evaluation import MatchResult, find_peaks_per_class, match_columns, score_table_row
from temflow.models import MSDNet, UNet
from temflow.segmentation.data import (
    ColumnImages,
    SegmentationDataset,
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


def mse_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error between predicted and Gaussian target maps (in float32)."""
    return torch.nn.functional.mse_loss(outputs.float(), targets.float())


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
) -> dict:
    """Train one network with the shared loop and save it with its model card.

    Training batches are random ``crop_px`` windows (None: whole images) under random
    flips / 90-degree rotations; validation uses whole images. The card records the
    training data's sampling range (``sampling_range_A``: the range the shards drew it
    from; ``sampling_A``: its middle). Returns the model card.
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
        mse_loss,
        config,
        work_dir,
        metrics_csv,
        augment=make_augment(crop_px),
        fingerprint={"data": hashes, "target_width_A": target_width_A, "crop_px": crop_px},
    )
    log.info(
        "trained on %s: best val loss %.5g at epoch %d of %d%s",
        result.device,
        result.best_val_loss,
        result.best_epoch,
        result.epochs_run,
        " (early stop)" if result.stopped_early else "",
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
    """Detected columns of one image and their match against the truth."""

    xy_A: np.ndarray
    class_index: np.ndarray
    true_xy_A: np.ndarray
    true_class: np.ndarray
    match: MatchResult


def _inside(
    xy: np.ndarray, shape: tuple[int, int], sampling_A: float, border_A: float
) -> np.ndarray:
    h, w = shape
    x_max, y_max = (w - 1) * sampling_A - border_A, (h - 1) * sampling_A - border_A
    return (
        (xy[:, 0] >= border_A) & (xy[:, 0] <= x_max) & (xy[:, 1] >= border_A) & (xy[:, 1] <= y_max)
    )


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
    if len(data) == 0:
        raise TemflowError("segmentation: the validation set is empty")
    inputs = SegmentationDataset(data, 1.0)._inputs
    shape = tuple(data.images.shape[-2:])
    out = []
    for start in range(0, len(data), batch_size):
        maps = predict(model, inputs[start : start + batch_size], batch_size, device).numpy()
        for k, m in enumerate(maps):
            i = start + k
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
            out.append(Detection(xy, cls, txy, tcls, match))
    return out


def evaluation_table(detections: Sequence[Detection], data: ColumnImages) -> pd.DataFrame:
    """One row per image: source file and index, its sampling (A/px), overall and
    per-class P/R/F1, counts."""
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
            }
        )
    return pd.DataFrame(rows)
