"""The one training loop used by every temflow network (MoNet, MSD-net, U-net).

Contract
--------
* ``train_dataset`` / ``val_dataset``: any ``torch.utils.data.Dataset`` whose items are
  ``(inputs, targets)`` pairs of tensors (or nested tuples/lists/dicts of tensors); the
  default collate stacks them into batches. The model is called as ``model(inputs)``.
* ``loss_fn(outputs, targets) -> scalar tensor``, the MEAN over the batch. Validation loss
  is the batch-size weighted mean of it over the whole validation set.
* ``augment(inputs, targets, generator) -> (inputs, targets)``: optional, applied to each
  training batch on the CPU before it moves to the device. Draw all randomness from
  ``generator`` (a ``torch.Generator``) so runs are reproducible and resumable.
* ``val_metrics``: optional extra validation metrics, either a callable
  ``(outputs, targets) -> dict[str, float]`` called once per epoch on all validation
  outputs/targets concatenated on the CPU, or an object with ``reset()``,
  ``update(outputs, targets)`` (per batch, CPU tensors) and ``compute() -> dict`` for
  outputs too large to keep (segmentation maps). Their keys become CSV columns.
* Outputs: ``work_dir/checkpoint.pt`` after every epoch (atomic), ``metrics_csv`` after every
  epoch (atomic; columns epoch, train_loss, val_loss, <extra metrics>, lr, seconds), and a
  :class:`TrainResult` whose ``best_state`` (lowest validation loss) is also loaded into
  ``model`` on return.
* ``ema_decay``: when set, an exponential moving average of the weights (and buffers, so
  BatchNorm statistics match them) is kept after every optimizer step with
  :class:`torch.optim.swa_utils.AveragedModel`, and it is the averaged model that is
  validated, selected as best, and returned. Small, noisy batches make the raw weights
  wander from step to step; the average does not, so the held-out loss that drives early
  stopping, learning-rate decay and model selection measures the model, not the noise.

Resume: rerun :func:`train` with the same arguments (the number of epochs may grow) and it
continues after the last completed epoch with the saved model, optimizer, LR-scheduler and
grad-scaler state. Every epoch reseeds its shuffling, augmentation and global torch RNG
from ``(seed, epoch)``, so on CPU an interrupted-and-resumed run gives exactly the same
weights as an uninterrupted one. A checkpoint from a different configuration (anything in
:class:`TrainConfig` except epochs/patience/device/num_workers/progress, the model's
parameter shapes, or ``fingerprint`` — pass e.g. the sha256 of the training data) is not
resumed: training starts afresh and says so in the log.

Seed the model's initial weights yourself (``torch.manual_seed(seed)`` before building
it); :func:`seed_everything` does that.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from temflow.errors import TemflowError
from temflow.io import atomic_path
from temflow.seeding import derive_seed
from temflow.training.device import autocast as _autocast
from temflow.training.device import resolve_amp, torch_device

log = logging.getLogger(__name__)

# TrainConfig fields that may differ between an interrupted run and its resumption.
_RESUMABLE_CHANGES = {"epochs", "patience", "device", "num_workers", "progress"}


@dataclass
class TrainConfig:
    """Training hyper-parameters (all plain values, stored in checkpoints and model cards)."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int | None = 5  # epochs without a better val loss before stopping; None: never
    device: str = "auto"  # auto | cpu | cuda | gpu
    amp: str = "none"  # none | bf16 | fp16 (autocast on GPU only)
    seed: int = 0
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    weight_decay: float = 0.0
    lr_decay_patience: int | None = None  # ReduceLROnPlateau on val loss; None: constant LR
    lr_decay_factor: float = 0.5
    grad_clip_norm: float | None = None
    ema_decay: float | None = None  # validate/keep an EMA of the weights; None: raw weights
    deterministic: bool = True  # cudnn deterministic, no benchmark autotuning
    progress: bool = True  # tqdm bars (to stderr -> the rule log)

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "patience": self.patience is None or self.patience >= 1,
            "seed": self.seed >= 0,
            "num_workers": self.num_workers >= 0,
            "max_steps_per_epoch": self.max_steps_per_epoch is None
            or self.max_steps_per_epoch >= 1,
            "weight_decay": self.weight_decay >= 0,
            "lr_decay_patience": self.lr_decay_patience is None or self.lr_decay_patience >= 1,
            "lr_decay_factor": 0 < self.lr_decay_factor < 1,
            "grad_clip_norm": self.grad_clip_norm is None or self.grad_clip_norm > 0,
            "ema_decay": self.ema_decay is None or 0 < self.ema_decay < 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise TemflowError(f"training.{key}: invalid value {getattr(self, key)!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a config mapping; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TemflowError(f"training config: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_loss: float
    history: list[dict[str, float]]
    epochs_run: int  # last completed epoch
    stopped_early: bool
    device: str
    resumed_from: int = 0  # epochs already done when this call started (0: fresh)
    extra: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy's legacy global RNG."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code may use the global RNG


def _to(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(o, device) for o in obj)
    if isinstance(obj, Mapping):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def _batch_size(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return int(obj.shape[0])
    if isinstance(obj, Mapping):
        return _batch_size(next(iter(obj.values())))
    return _batch_size(obj[0])


def _cat(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if isinstance(first, Mapping):
        return {k: _cat([p[k] for p in parts]) for k in first}
    return type(first)(_cat(list(group)) for group in zip(*parts, strict=True))


class _Concatenating:
    """Adapts a plain ``(outputs, targets) -> dict`` callable to reset/update/compute."""

    def __init__(self, fn: Callable[[Any, Any], Mapping[str, float]]) -> None:
        self.fn = fn
        self.reset()

    def reset(self) -> None:
        self.outputs: list[Any] = []
        self.targets: list[Any] = []

    def update(self, outputs: Any, targets: Any) -> None:
        self.outputs.append(outputs)
        self.targets.append(targets)

    def compute(self) -> Mapping[str, float]:
        return self.fn(_cat(self.outputs), _cat(self.targets))


def _fingerprint(model: nn.Module, config: TrainConfig, extra: Mapping[str, Any] | None) -> dict:
    cfg = {k: v for k, v in config.to_dict().items() if k not in _RESUMABLE_CHANGES}
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    # Constructor arguments too: some (MSD-net dilations, MoNet's combine) leave every
    # parameter shape unchanged but make another network.
    hparams = getattr(model, "hparams", None)
    return {"config": cfg, "shapes": shapes, "hparams": hparams, "extra": dict(extra or {})}


def _write_csv(path: Path, history: list[dict[str, float]]) -> None:
    columns: list[str] = ["epoch", "train_loss", "val_loss"]
    for row in history:
        columns += [k for k in row if k not in columns and k not in ("lr", "seconds")]
    columns += ["lr", "seconds"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def _differing_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the entries that differ between two fingerprints (``config.lr``)."""
    diffs: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs += _differing_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}")
    return diffs


def _load_checkpoint(path: Path, fingerprint: dict) -> dict | None:
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - a corrupt checkpoint is discarded, not fatal
        log.warning("checkpoint %s unreadable (%s): starting afresh", path, err)
        return None
    if ckpt.get("fingerprint") != fingerprint:
        diffs = _differing_keys(ckpt.get("fingerprint", {}), fingerprint)
        log.warning(
            "checkpoint %s is from a different run (%s differ): starting afresh",
            path,
            ", ".join(diffs) or "format",
        )
        return None
    return ckpt


def train(
    model: nn.Module,
    train_dataset: Dataset,
    val_dataset: Dataset,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    config: TrainConfig,
    work_dir: str | Path,
    metrics_csv: str | Path | None = None,
    augment: Callable[[Any, Any, torch.Generator], tuple[Any, Any]] | None = None,
    val_metrics: Any = None,
    fingerprint: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` with Adam and early stopping on validation loss; see the module doc."""
    if len(train_dataset) == 0 or len(val_dataset) == 0:  # type: ignore[arg-type]
        raise TemflowError("training: the training and validation sets must not be empty")
    device = torch_device(config.device)
    amp_dtype = resolve_amp(config.amp, device)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = config.deterministic
        torch.backends.cudnn.benchmark = not config.deterministic
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = work_dir / "checkpoint.pt"
    metrics_csv = Path(metrics_csv) if metrics_csv else work_dir / "metrics.csv"
    metrics = val_metrics
    if metrics is not None and not hasattr(metrics, "compute"):
        metrics = _Concatenating(metrics)

    model.to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = None
    if config.lr_decay_patience:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.lr_decay_factor, patience=config.lr_decay_patience
        )
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    fp = _fingerprint(model, config, fingerprint)
    ema = None
    if config.ema_decay:
        ema = torch.optim.swa_utils.AveragedModel(
            model,
            multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay),
            use_buffers=True,
        )
        steps_per_epoch = math.ceil(len(train_dataset) / config.batch_size)  # type: ignore[arg-type]
        if config.max_steps_per_epoch:
            steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
        horizon = 1.0 / (1.0 - config.ema_decay)
        if config.epochs * steps_per_epoch < 3 * horizon:
            log.warning(
                "ema_decay %g averages over about %d steps, but this training has only %d: "
                "the averaged weights stay close to the initial ones (lower ema_decay or "
                "set it to null)",
                config.ema_decay,
                round(horizon),
                config.epochs * steps_per_epoch,
            )
    # the network that is validated, selected and returned: the average when there is one
    judged = ema.module if ema is not None else model

    start, best_val, best_epoch, bad_epochs, stopped = 1, math.inf, 0, 0, False
    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    history: list[dict[str, float]] = []
    ckpt = _load_checkpoint(ckpt_path, fp)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start = ckpt["epoch"] + 1
        best_val, best_epoch = ckpt["best_val_loss"], ckpt["best_epoch"]
        bad_epochs, stopped = ckpt["bad_epochs"], ckpt["stopped"]
        best_state, history = ckpt["best_state"], ckpt["history"]
        log.info(
            "resuming from %s after epoch %d (best val loss %.5g at epoch %d)",
            ckpt_path,
            ckpt["epoch"],
            best_val,
            best_epoch,
        )
    resumed_from = start - 1
    if stopped:
        log.info("checkpoint says training stopped early at epoch %d", resumed_from)

    from tqdm.auto import tqdm

    epoch = resumed_from
    for epoch in range(start, config.epochs + 1):
        if stopped:
            break
        t0 = time.perf_counter()
        epoch_seed = derive_seed(config.seed, "epoch", epoch)
        torch.manual_seed(epoch_seed)
        shuffle_gen = torch.Generator().manual_seed(epoch_seed)
        aug_gen = torch.Generator().manual_seed(derive_seed(config.seed, "augment", epoch))
        loader = DataLoader(
            train_dataset,
            batch_size=config.batch_size,
            shuffle=True,
            generator=shuffle_gen,
            num_workers=config.num_workers,
            pin_memory=device.type == "cuda",
        )
        n_steps = len(loader)
        if config.max_steps_per_epoch:
            n_steps = min(n_steps, config.max_steps_per_epoch)
        model.train()
        total, count = 0.0, 0
        bar = tqdm(
            total=n_steps,
            desc=f"epoch {epoch}/{config.epochs}",
            disable=not config.progress,
            mininterval=2.0,
        )
        for step, (inputs, targets) in enumerate(loader):
            if step >= n_steps:
                break
            if augment is not None:
                inputs, targets = augment(inputs, targets, aug_gen)
            inputs, targets = _to(inputs, device), _to(targets, device)
            with _autocast(device, amp_dtype):
                outputs = model(inputs)
                loss = loss_fn(outputs, targets)
            if not torch.isfinite(loss):
                raise TemflowError(
                    f"training: loss became {loss.item()} at epoch {epoch} step {step}; "
                    "lower training.learning_rate or check the data"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip_norm:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update_parameters(model)
            n = _batch_size(targets)
            total += float(loss.detach()) * n
            count += n
            bar.update(1)
            bar.set_postfix(loss=f"{total / count:.4g}", refresh=False)
        bar.close()
        train_loss = total / max(count, 1)

        val_loss, extra = _validate(
            judged, val_dataset, loss_fn, config, device, amp_dtype, metrics
        )
        lr = optimizer.param_groups[0]["lr"]
        if val_loss < best_val:
            best_val, best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = {k: v.detach().cpu().clone() for k, v in judged.state_dict().items()}
        else:
            bad_epochs += 1
        if scheduler is not None:
            scheduler.step(val_loss)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            **extra,
            "lr": lr,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        history.append(row)
        stopped = config.patience is not None and bad_epochs >= config.patience
        log.info(
            "epoch %d: train %.5g val %.5g %s(%.1f s)%s",
            epoch,
            train_loss,
            val_loss,
            "".join(f"{k} {v:.4g} " for k, v in extra.items()),
            row["seconds"],
            " -> early stop" if stopped else "",
        )
        state = {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "best_val_loss": best_val,
            "best_epoch": best_epoch,
            "bad_epochs": bad_epochs,
            "stopped": stopped,
            "best_state": best_state,
            "history": history,
            "fingerprint": fp,
            "config": config.to_dict(),
        }
        with atomic_path(ckpt_path) as tmp:
            torch.save(state, tmp)
        _write_csv(metrics_csv, history)

    if history and not metrics_csv.is_file():
        _write_csv(metrics_csv, history)
    model.load_state_dict(best_state)
    last = history[-1]["epoch"] if history else 0
    return TrainResult(
        best_state=best_state,
        best_epoch=best_epoch,
        best_val_loss=best_val,
        history=history,
        epochs_run=int(last),
        stopped_early=stopped,
        device=str(device),
        resumed_from=resumed_from,
    )


@torch.no_grad()
def _validate(model, dataset, loss_fn, config, device, amp_dtype, metrics):
    model.eval()
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=False,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
    )
    if metrics is not None:
        metrics.reset()
    total, count = 0.0, 0
    for inputs, targets in loader:
        inputs_d, targets_d = _to(inputs, device), _to(targets, device)
        with _autocast(device, amp_dtype):
            outputs = model(inputs_d)
            loss = loss_fn(outputs, targets_d)
        n = _batch_size(targets)
        total += float(loss) * n
        count += n
        if metrics is not None:
            metrics.update(_to(outputs, torch.device("cpu")), targets)
    extra = {k: float(v) for k, v in metrics.compute().items()} if metrics is not None else {}
    return total / count, extra


def predict(
    model: nn.Module, inputs: torch.Tensor, batch_size: int = 256, device: str = "auto"
) -> torch.Tensor:
    """Model outputs for a tensor of inputs, in batches, on the CPU (eval mode, no grad)."""
    dev = torch_device(device)
    model.to(dev).eval()
    out = []
    with torch.no_grad():
        for i in range(0, inputs.shape[0], batch_size):
            out.append(model(inputs[i : i + batch_size].to(dev)).float().cpu())
    return torch.cat(out)
