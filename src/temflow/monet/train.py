"""Training one MoNet task with the shared loop, and its model card."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import TensorDataset

from temflow.errors import TemflowError
from temflow.evaluation.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
)
from temflow.models.monet import MoNet
from temflow.monet.data import inputs_of, split_indices, track_augment
from temflow.monet.tasks import get_task
from temflow.training import (
    TrainConfig,
    predict,
    save_model,
    seed_everything,
    sha256_file,
    train,
)
from temflow.trajectories.io import GENERATOR_KEYS, read_trajectories

log = logging.getLogger(__name__)

#: The card's ``axes`` entry: where x and y meet in the network (MoNet ``combine``).
AXES_NOTE = {
    "outputs": (
        "x and y are normalised separately and passed through the same network (shared "
        "weights); the per-axis outputs (softmax probabilities or sigmoid alphas) are "
        "averaged, as in the reference MoNet."
    ),
    "features": (
        "x and y are normalised separately and passed through the same convolutional "
        "branches (shared weights); their max-pooled branch features are averaged and one "
        "dense stack reads the mean, so the evidence of both axes is pooled before the "
        "decision."
    ),
}

NOISE_INPUT_NOTE = (
    "the network is told the localisation precision: a third input column sigma, the "
    "localisation error std of each frame in the units of x and y (temflow classify "
    "--localisation-precision); trained with sigma = the augmentation noise, 0 for "
    "noiseless tracks"
)


def train_task(
    task: str,
    train_h5: str | Path,
    model_pt: str | Path,
    metrics_csv: str | Path,
    work_dir: str | Path,
    training: Mapping[str, Any],
    val_fraction: float,
    augment_noise_step_std: float,
    seed: int,
    augment_rotate: bool = False,
    augment_noise_free_fraction: float = 0.0,
    resimulate: Mapping[str, Any] | None = None,
    combine_axes: str = "outputs",
    noise_input: bool = False,
) -> dict:
    """Train one MoNet task on ``train_h5``; write the model + card; return the card.

    ``combine_axes``: where x and y meet in the network (:class:`MoNet` ``combine``).
    ``noise_input``: the network is told each track's localisation error std
    (:class:`MoNet` ``noise_input``); augmentation noise is added to it.

    ``resimulate``: a ``trajectories`` config section; when given, every training batch
    is replaced by fresh tracks of the same classes / alphas (:func:`track_augment`).
    """
    spec = get_task(task)
    data = read_trajectories(train_h5)
    if data.positions.shape[1] < MoNet.min_length():
        raise TemflowError(
            f"trajectories.length: MoNet needs >= {MoNet.min_length()} frames "
            f"(2 x its largest kernel), {train_h5} has {data.positions.shape[1]}"
        )
    if noise_input and augment_noise_step_std <= 0 and not data.attrs.get("noise_step_std"):
        log.warning(
            "monet_%s: noise_input is on but neither the training set nor the augmentation "
            "has localisation noise: the network only ever sees sigma = 0 and cannot learn "
            "to use it (set monet.augment_noise_step_std > 0)",
            task,
        )
    x, y = inputs_of(data, noise_input), spec.targets(data)
    tr, va = split_indices(len(data), val_fraction, seed)
    cfg = TrainConfig.from_dict({**training, "seed": seed})
    seed_everything(seed)
    model = spec.build_model(combine_axes, noise_input)
    data_hash = sha256_file(train_h5)
    resimulate_key = None if resimulate is None else {k: resimulate.get(k) for k in GENERATOR_KEYS}
    result = train(
        model,
        TensorDataset(x[tr], y[tr]),
        TensorDataset(x[va], y[va]),
        spec.loss,
        cfg,
        work_dir,
        metrics_csv,
        augment=track_augment(
            augment_noise_step_std,
            augment_rotate,
            augment_noise_free_fraction,
            None if resimulate is None else (spec, resimulate),
        ),
        val_metrics=spec.metric,
        # Everything that shapes the weights and is not in TrainConfig: a checkpoint
        # trained with other augmentation or another split is not resumed.
        fingerprint={
            "data": data_hash,
            "task": task,
            "val_fraction": val_fraction,
            "augment_noise_step_std": augment_noise_step_std,
            "augment_rotate": augment_rotate,
            "augment_noise_free_fraction": augment_noise_free_fraction,
            "resimulate": resimulate_key,
            "noise_input": noise_input,
        },
    )
    best = next(h for h in result.history if h["epoch"] == result.best_epoch)
    calibration = None
    if spec.is_classifier:
        # Temperature scaling on the validation tracks (Guo et al. 2017): calls unchanged.
        log_p = predict(model, x[va], 256, cfg.device).double().numpy()
        labels = y[va].numpy()
        temperature = fit_temperature(log_p, labels)
        calibration = {
            "method": "temperature scaling on the validation split (Guo et al. 2017)",
            "temperature": temperature,
            "n_val": int(len(va)),
            "val_ece_before": expected_calibration_error(np.exp(log_p), labels),
            "val_ece_after": expected_calibration_error(
                apply_temperature(log_p, temperature), labels
            ),
        }
    card = {
        "net": f"monet_{task}",
        "task": task,
        "classes": list(spec.classes),
        "input": {
            "length_frames": int(data.positions.shape[1]),
            "units": "positions; each axis is normalised inside the network",
            "columns": ["x", "y", "sigma"] if noise_input else ["x", "y"],
            "localisation_precision": NOISE_INPUT_NOTE if noise_input else None,
        },
        "axes": AXES_NOTE[combine_axes],
        "training": {
            **cfg.to_dict(),
            "val_fraction": val_fraction,
            "augment_noise_step_std": augment_noise_step_std,
            "augment_rotate": augment_rotate,
            "augment_noise_free_fraction": augment_noise_free_fraction,
            "resimulate": resimulate_key,
            "n_train": int(len(tr)),
            "n_val": int(len(va)),
        },
        "data": {Path(train_h5).name: data_hash},
        "calibration": calibration,
        "metrics": {
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early,
            "device": result.device,
            "train_loss": best["train_loss"],
            "val_loss": best["val_loss"],
            **{
                f"val_{k}": v
                for k, v in best.items()
                if k not in ("epoch", "lr", "seconds", "train_loss", "val_loss")
            },
            "seconds": float(sum(h["seconds"] for h in result.history)),
        },
    }
    return save_model(model_pt, model, card)
