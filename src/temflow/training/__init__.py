"""The training loop shared by every temflow network, device helpers and model cards.

Typical use::

    from temflow.training import TrainConfig, train, save_model, seed_everything
    seed_everything(cfg.seed)
    model = MoNet(task="classify")
    result = train(model, train_ds, val_ds, loss_fn, cfg, work_dir, metrics_csv,
                   augment=..., val_metrics=...)
    save_model("results/models/monet_classify.pt", model, card={...})

See :mod:`temflow.training.loop` for the full contract (datasets, hooks, resume).
"""

from temflow.training.cards import load_model, save_model, sha256_file
from temflow.training.device import autocast, resolve_amp, torch_device
from temflow.training.loop import TrainConfig, TrainResult, predict, seed_everything, train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "autocast",
    "load_model",
    "predict",
    "resolve_amp",
    "torch_device",
    "save_model",
    "seed_everything",
    "sha256_file",
    "train",
]
