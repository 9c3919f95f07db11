"""Training the column-segmentation networks (MSD-net, U-net) with the shared loop.

Formulation: the network outputs one linear map per column class (Mo, S2, S1); training
minimises the mean squared error, per class weighted (:func:`class_weights`), against
unit-height Gaussian maps of the true column positions (DTU practice, no background
class). The peak threshold is calibrated afterwards on held-out images
(:func:`temflow.segmentation.detect.calibrate_model`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from temflow.errors import TemflowError
from temflow.models import SEGMENTATION_NETWORKS
from temflow.segmentation.data import ColumnImages, SegmentationDataset, make_augment
from temflow.training import TrainConfig, save_model, seed_everything, sha256_file, train

log = logging.getLogger(__name__)

NORMALISATION = "per image and channel: zero mean, unit standard deviation"


def build_network(net: str, arch: Mapping[str, Any], in_channels: int, n_classes: int) -> nn.Module:
    """MSD-net or U-net from its config section (``depth``, ``width`` / ``base_width``)."""
    if net not in SEGMENTATION_NETWORKS:
        raise TemflowError(
            f"segmentation: unknown network {net!r}; "
            f"expected one of {sorted(SEGMENTATION_NETWORKS)}"
        )
    return SEGMENTATION_NETWORKS[net](in_channels=in_channels, out_channels=n_classes, **dict(arch))


#: ``segmentation.class_weights`` settings.
CLASS_WEIGHTINGS = ("balanced", "none")


def class_weights(data: ColumnImages, mode: str) -> np.ndarray:
    """Per-class weight of the squared error, normalised to mean 1.

    ``balanced``: inversely proportional to the class's number of columns in ``data``,
    so that every class contributes equally to the loss (each column adds one Gaussian
    of the same size to its map): without it the rare single-S columns (S1) hardly move
    the loss and a width-1 MSD-net does not learn them. A class without columns
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
    class_weighting: str = "none",
) -> dict:
    """Train one network with the shared loop and save it with its model card.

    Training batches are random ``crop_px`` windows (None: whole images) under random
    flips / 90-degree rotations; validation uses whole images. ``val_data`` (images held
    out of training, not the evaluation set) selects the best epoch. The card records
    the training data's sampling range (``sampling_range_A``: the range the shards drew
    it from; ``sampling_A``: its middle). ``class_weighting`` (:func:`class_weights`,
    from the training images) weights the squared error of each class map; the card
    records the weights. Returns the model card.
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
    return save_model(model_path, model, card)
