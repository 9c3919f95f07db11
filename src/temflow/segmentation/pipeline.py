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
    flips / 90-degree rotations; validation uses whole images. Returns the model card.
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
    if abs(train_data.sampling_A - val_data.sampling_A) > 1e-9:
        raise TemflowError("segmentation: training and validation sampling_A differ")
    in_channels = int(train_data.images.shape[1])
    seed_everything(config.seed)
    model = build_network(net, arch, in_channels, len(train_data.classes))
    hashes = {
        role: {str(p): sha256_file(p) for p in sorted(map(str, files))}
        for role, files in data_files.items()
    }
    log.info(
        "%s %s: %d training, %d validation images of %s px, %d parameters",
        net,
        substrate,
        len(train_data),
        len(val_data),
        train_data.images.shape[1:],
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
        "sampling_A": float(train_data.sampling_A),
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

    Raises TemflowError (naming the file) when the architecture is not ``net``'s, or the
    card's classes, input channels or sampling differ from the data.
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
    sampling = float(card.get("sampling_A", float("nan")))
    if not np.isclose(sampling, data.sampling_A, rtol=1e-6):
        raise TemflowError(
            f"{model_path}: model trained at sampling_A {sampling}, the data has {data.sampling_A}"
        )
    return model, card


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
            cols = data.columns[start + k]
            xy, cls = find_peaks_per_class(
                m, data.sampling_A, threshold, min_separation_A, data.classes
            )
            keep = _inside(xy, shape, data.sampling_A, border_A)
            xy, cls = xy[keep], cls[keep]
            txy = np.stack(
                [np.asarray(cols["x_A"], float), np.asarray(cols["y_A"], float)], axis=1
            ).reshape(-1, 2)
            tcls = np.asarray(cols["class"], dtype=np.int64)
            tkeep = _inside(txy, shape, data.sampling_A, border_A)
            txy, tcls = txy[tkeep], tcls[tkeep]
            match = match_columns(xy, cls, txy, tcls, data.classes, match_radius_A)
            out.append(Detection(xy, cls, txy, tcls, match))
    return out


def evaluation_table(detections: Sequence[Detection], data: ColumnImages) -> pd.DataFrame:
    """One row per image: source file and index, overall and per-class P/R/F1, counts."""
    rows = []
    for i, det in enumerate(detections):
        src = data.sources[i] if i < len(data.sources) else ("", i)
        rows.append(
            {"image": i, "file": Path(src[0]).name, "index": src[1], **score_table_row(det.match)}
        )
    return pd.DataFrame(rows)
