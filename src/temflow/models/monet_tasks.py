"""MoNet's three tasks on trajectory sets: training (with the shared loop) and evaluation.

Tasks: ``classify`` (brownian / fbm / ctrw, trained on ``classify_train``), ``fbm_alpha``
and ``ctrw_alpha`` (alpha regression on ``fbm_train`` / ``ctrw_train``). The network sees
positions in units of one step std (positions / sqrt(2 D)); MoNet normalises each track
anyway, so this only fixes the scale of the localisation-noise augmentation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from temflow.errors import TemflowError
from temflow.evaluation.classification import accuracy, confusion_matrix, mae_by_range
from temflow.models.monet import MoNet, with_precision
from temflow.training import (
    TrainConfig,
    load_model,
    predict,
    save_model,
    seed_everything,
    sha256_file,
    train,
)
from temflow.trajectories.ctrw import ctrw
from temflow.trajectories.fbm import fbm
from temflow.trajectories.io import CLASSES, TrajectorySet, read_trajectories, simulate_classes

log = logging.getLogger(__name__)

TASKS: dict[str, dict[str, Any]] = {
    "classify": {"model": {"task": "classify", "n_classes": 3}, "classes": list(CLASSES)},
    # FBM alpha lies in (0, 2); CTRW alpha in (0, 1]: the sigmoid head spans that range.
    "fbm_alpha": {"model": {"task": "regress", "alpha_max": 2.0}, "classes": ["alpha"]},
    "ctrw_alpha": {"model": {"task": "regress", "alpha_max": 1.0}, "classes": ["alpha"]},
}
ALPHA_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0, 2.0)
AXES_NOTE = {
    "outputs": (
        "x and y are normalised separately and passed through the same network (shared "
        "weights); the per-axis outputs (softmax probabilities or sigmoid alphas) are "
        "averaged, as in the reference MoNet: the two axes of isotropic motion are "
        "statistically identical, so weight sharing doubles the evidence per trajectory "
        "and keeps the reference's ~248k parameters (248,163 without noise_input; the "
        "card's n_parameters is this network's count)."
    ),
    "features": (
        "x and y are normalised separately and passed through the same convolutional "
        "branches (shared weights); their max-pooled branch features are averaged and one "
        "dense stack reads the mean. The axes share H, D and the noise level, so the "
        "evidence of both is pooled before the decision, as in a likelihood ratio (the "
        "reference averages per-axis outputs instead; BENCHMARKS.md compares the two). "
        "Same ~248k parameters (248,163 without noise_input; see n_parameters)."
    ),
}

NOISE_INPUT_NOTE = (
    "the network is told the localisation precision: a third input column sigma, the "
    "localisation error std of each frame in the units of x and y (temflow classify "
    "--localisation-precision); trained with sigma = the augmentation noise, 0 for "
    "noiseless tracks"
)


def check_task(task: str) -> dict[str, Any]:
    if task not in TASKS:
        raise TemflowError(f"monet task: expected one of {sorted(TASKS)}, got {task!r}")
    return TASKS[task]


def inputs_of(data: TrajectorySet, noise_input: bool = False) -> torch.Tensor:
    """Positions (N, L, 2) in units of one step std, float32; with ``noise_input`` a third
    column holds the set's localisation error std in the same unit (its
    ``noise_step_std``: what a noise-aware MoNet is told, see :class:`MoNet`)."""
    scale = np.sqrt(2.0 * data.diffusion)[:, None, None]
    x = torch.from_numpy((data.positions / scale).astype(np.float32))
    if not noise_input:
        return x
    return with_precision(x, float(data.attrs.get("noise_step_std", 0.0)))


def targets_of(data: TrajectorySet, task: str) -> torch.Tensor:
    if task == "classify":
        return torch.from_numpy(data.label.astype(np.int64))
    return torch.from_numpy(data.alpha.astype(np.float32))


def build_model(task: str, combine_axes: str = "outputs", noise_input: bool = False) -> MoNet:
    return MoNet(**check_task(task)["model"], combine=combine_axes, noise_input=noise_input)


def loss_for(task: str):
    """NLL on MoNet's log-probabilities for classification, L1 (= MAE) for alpha."""
    return F.nll_loss if task == "classify" else F.l1_loss


def val_metrics_for(task: str):
    if task == "classify":
        return lambda out, y: {"accuracy": float((out.argmax(1) == y).float().mean())}
    return lambda out, y: {"mae": float((out - y).abs().mean())}


def rotate_tracks(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Rotate each 2-D track ``(N, L, 2)`` about the origin by its own uniform random
    angle. Brownian motion, FBM with independent axes and CTRW with isotropic Gaussian
    jumps are all invariant under rotation, so the rotated track is an exact new sample
    of the same process; the network, which reads x and y separately, sees new
    projections every epoch."""
    angle = torch.rand(x.shape[0], generator=gen, dtype=x.dtype) * (2 * math.pi)
    cos, sin = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    px, py = x[..., 0], x[..., 1]
    return torch.stack((cos * px - sin * py, sin * px + cos * py), dim=-1)


def resimulate_tracks(
    task: str, y: torch.Tensor, length: int, params: Mapping[str, Any], rng: np.random.Generator
) -> torch.Tensor:
    """Fresh tracks ``(N, length, 2)`` in step units for the targets ``y`` of ``task``.

    ``classify``: a new track of each item's class (label), with a new alpha drawn
    uniformly from ``params['fbm_alpha_range']`` / ``params['ctrw_alpha_range']``, as the
    training sets were drawn. ``fbm_alpha`` / ``ctrw_alpha``: a new FBM / CTRW track with
    the item's own alpha (the target is unchanged). D = 0.5 px^2/frame, i.e. one step
    has std 1: the unit of :func:`inputs_of`. ``params`` is a ``trajectories`` config
    section (``ctrw_waiting_time`` too).
    """
    check_task(task)
    n = int(y.shape[0])
    waiting = params.get("ctrw_waiting_time", "mittag_leffler")
    if task == "classify":
        out, _ = simulate_classes(y.numpy(), length, np.full(n, 0.5), params, rng)
    elif task == "fbm_alpha":
        out = fbm(n, length, y.double().numpy(), 0.5, rng)
    else:
        out = ctrw(n, length, y.double().numpy(), 0.5, rng, waiting)
    return torch.from_numpy(out.astype(np.float32))


def track_augment(
    max_step_std: float,
    rotate: bool = False,
    noise_free_fraction: float = 0.0,
    resimulate: tuple[str, Mapping[str, Any]] | None = None,
):
    """Training augmentation, per batch, in this order:

    1. ``resimulate=(task, trajectories params)``: replace every track by a fresh
       realisation of its process (:func:`resimulate_tracks`). The reference MoNet draws
       its training data fresh at every step; this does the same while the stored set
       fixes the classes / alphas, the split and the validation tracks. It removes the
       overfitting to a finite training set.
    2. ``rotate``: :func:`rotate_tracks`.
    3. Gaussian localisation noise with std ~ U(0, ``max_step_std``) step std per track,
       except a random ``noise_free_fraction`` of the tracks, which stay noiseless.
       The classifier approximates the Bayes rule for the noise prior it was trained on;
       the share of noiseless tracks in that prior sets its trade-off between noiseless
       and noisy accuracy (BENCHMARKS.md).

    ``None`` when all are off.
    """
    if max_step_std < 0:
        raise TemflowError(f"monet.augment_noise_step_std: expected >= 0, got {max_step_std:g}")
    if not 0.0 <= noise_free_fraction <= 1.0:
        raise TemflowError(
            f"monet.augment_noise_free_fraction: expected in [0, 1], got {noise_free_fraction:g}"
        )
    if resimulate is not None:
        check_task(resimulate[0])

    def augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator):
        # x: (N, L, 2) positions, or (N, L, 3) with the localisation error std column of
        # a noise-aware MoNet, which is kept true to the noise the positions carry.
        sigma = x[..., 2:] if x.shape[-1] == 3 else None
        x = x[..., :2]
        if resimulate is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=gen))
            task, params = resimulate
            x = resimulate_tracks(task, y, x.shape[1], params, np.random.default_rng(seed))
            sigma = None if sigma is None else torch.zeros_like(sigma)
        if rotate:
            x = rotate_tracks(x, gen)
        if max_step_std > 0:
            std = torch.rand(x.shape[0], 1, 1, generator=gen) * max_step_std
            if noise_free_fraction > 0:
                noisy = torch.rand(x.shape[0], 1, 1, generator=gen) >= noise_free_fraction
                std = std * noisy
            x = x + std * torch.randn(x.shape, generator=gen)
            if sigma is not None:
                sigma = torch.sqrt(sigma**2 + std**2)
        return (x if sigma is None else torch.cat([x, sigma], dim=-1)), y

    return augment if (max_step_std > 0 or rotate or resimulate is not None) else None


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train/validation split (at least one trajectory in each)."""
    if not 0 < val_fraction < 1:
        raise TemflowError(f"monet.val_fraction: expected in (0, 1), got {val_fraction}")
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n_val >= n:
        raise TemflowError(
            f"monet.val_fraction: {val_fraction} of {n} trajectories leaves an "
            "empty training or validation set"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_val:], perm[:n_val]


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
    spec = check_task(task)
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
    x, y = inputs_of(data, noise_input), targets_of(data, task)
    tr, va = split_indices(len(data), val_fraction, seed)
    cfg = TrainConfig.from_dict({**training, "seed": seed})
    seed_everything(seed)
    model = build_model(task, combine_axes, noise_input)
    data_hash = sha256_file(train_h5)
    # What a resimulated training set depends on: the generator's parameters.
    resimulate_key = (
        None
        if resimulate is None
        else {
            k: resimulate.get(k)
            for k in ("fbm_alpha_range", "ctrw_alpha_range", "ctrw_waiting_time")
        }
    )
    result = train(
        model,
        TensorDataset(x[tr], y[tr]),
        TensorDataset(x[va], y[va]),
        loss_for(task),
        cfg,
        work_dir,
        metrics_csv,
        augment=track_augment(
            augment_noise_step_std,
            augment_rotate,
            augment_noise_free_fraction,
            None if resimulate is None else (task, resimulate),
        ),
        val_metrics=val_metrics_for(task),
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
    card = {
        "net": f"monet_{task}",
        "task": task,
        "classes": spec["classes"],
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


def evaluate_task(
    task: str,
    model_pt: str | Path,
    test_h5: str | Path,
    out_csv: str | Path,
    device: str = "auto",
    batch_size: int = 256,
) -> pd.DataFrame:
    """Predictions on a held-out set, one row per trajectory, written to ``out_csv``."""
    from temflow.io import atomic_path

    spec = check_task(task)
    model, _ = load_model(
        model_pt,
        expected={
            "architecture": {"class": "MoNet", "args": spec["model"]},
            "classes": spec["classes"],
        },
    )
    data = read_trajectories(test_h5)
    x = inputs_of(data, model.noise_input)
    out = predict(model, x, batch_size=batch_size, device=device).numpy()
    frame = pd.DataFrame(
        {
            "index": np.arange(len(data)),
            "label": data.label,
            "class": [CLASSES[i] for i in data.label],
            "alpha": data.alpha,
        }
    )
    if task == "classify":
        probs = np.exp(out)
        for i, name in enumerate(CLASSES):
            frame[f"p_{name}"] = probs[:, i]
        frame["predicted"] = probs.argmax(1)
        frame["predicted_class"] = [CLASSES[i] for i in frame["predicted"]]
    else:
        frame["alpha_predicted"] = out
    with atomic_path(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def summarise(
    classify: pd.DataFrame | None,
    noisy: pd.DataFrame | None,
    fbm: pd.DataFrame | None,
    ctrw: pd.DataFrame | None,
) -> tuple[pd.DataFrame, ...]:
    """(summary rows metric/value, confusion matrix table, MAE by alpha range table)."""
    rows, conf, ranges = [], pd.DataFrame(), []
    if classify is not None:
        rows.append(
            {
                "metric": "accuracy",
                "value": accuracy(classify.label, classify.predicted),
                "n": len(classify),
            }
        )
        cm = confusion_matrix(classify.label, classify.predicted, len(CLASSES))
        conf = pd.DataFrame(
            cm, index=[f"true_{c}" for c in CLASSES], columns=[f"pred_{c}" for c in CLASSES]
        )
    if noisy is not None:
        rows.append(
            {
                "metric": "accuracy_noisy",
                "value": accuracy(noisy.label, noisy.predicted),
                "n": len(noisy),
            }
        )
    for name, frame in (("fbm", fbm), ("ctrw", ctrw)):
        if frame is None:
            continue
        err = np.abs(frame.alpha_predicted - frame.alpha)
        rows.append({"metric": f"{name}_alpha_mae", "value": float(err.mean()), "n": len(frame)})
        table = mae_by_range(frame.alpha, frame.alpha_predicted, ALPHA_EDGES)
        table.insert(0, "process", name)
        ranges.append(table[table.n > 0])
    by_range = pd.concat(ranges, ignore_index=True) if ranges else pd.DataFrame()
    return pd.DataFrame(rows), conf, by_range
