"""The shared training loop: learning, checkpoints, exact resume, early stopping, hooks."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from temflow.errors import TemflowError
from temflow.training import TrainConfig, torch_device, train


def _data(n: int = 256, sign: float = 1.0, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = sign * (x @ torch.tensor([1.0, -2.0, 0.5, 3.0]))[:, None] + 0.05 * torch.randn(
        n, 1, generator=g
    )
    return TensorDataset(x, y)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.BatchNorm1d(16), nn.Linear(16, 1))


def _cfg(**kw) -> TrainConfig:
    base = {
        "epochs": 4,
        "batch_size": 32,
        "learning_rate": 1e-2,
        "patience": None,
        "device": "cpu",
        "seed": 3,
        "progress": False,
    }
    return TrainConfig(**{**base, **kw})


def test_loss_decreases_checkpoint_and_metrics_written(tmp_path):
    model = _model()
    augment_calls = []

    def augment(x, y, gen):
        augment_calls.append(1)
        return x + 0.01 * torch.randn(x.shape, generator=gen), y

    def metrics(out, y):
        return {"mae": float((out - y).abs().mean())}

    res = train(
        model,
        _data(),
        _data(64, seed=1),
        nn.functional.mse_loss,
        _cfg(),
        tmp_path / "work",
        tmp_path / "m.csv",
        augment=augment,
        val_metrics=metrics,
    )
    assert (tmp_path / "work" / "checkpoint.pt").is_file()
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "mae", "lr", "seconds"]
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < 0.3 * losses[0]
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    assert len(augment_calls) == 4 * 8
    assert res.best_epoch == min(range(4), key=lambda i: float(rows[i]["val_loss"])) + 1
    assert res.device == "cpu" and res.resumed_from == 0


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_resume_equals_uninterrupted_run(tmp_path, ema_decay):
    full = train(
        _model(),
        _data(),
        _data(64, seed=1),
        nn.functional.mse_loss,
        _cfg(ema_decay=ema_decay),
        tmp_path / "a",
        tmp_path / "a.csv",
    )
    first = train(
        _model(),
        _data(),
        _data(64, seed=1),
        nn.functional.mse_loss,
        _cfg(epochs=2, ema_decay=ema_decay),
        tmp_path / "b",
        tmp_path / "b.csv",
    )
    assert first.epochs_run == 2
    # "the job was killed after epoch 2": rerun asking for 4 epochs with a fresh model
    resumed = train(
        _model(),
        _data(),
        _data(64, seed=1),
        nn.functional.mse_loss,
        _cfg(ema_decay=ema_decay),
        tmp_path / "b",
        tmp_path / "b.csv",
    )
    assert resumed.resumed_from == 2 and resumed.epochs_run == 4
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    for key, value in full.best_state.items():
        torch.testing.assert_close(resumed.best_state[key], value, rtol=0, atol=0)
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]


def test_ema_is_the_exponential_average_of_the_raw_weights(tmp_path):
    # Record the raw weights before every step (the augment hook runs first in each
    # step); the raw weights after the last step are in the checkpoint. The returned
    # model must be e_1 = w_1, e_k = d e_(k-1) + (1 - d) w_k over the post-step weights.
    decay = 0.8
    model = _model()
    before_step: list[dict[str, torch.Tensor]] = []

    def record(x, y, gen):
        before_step.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return x, y

    res = train(
        model,
        _data(),
        _data(64, seed=1),
        nn.functional.mse_loss,
        _cfg(epochs=1, ema_decay=decay),
        tmp_path / "w",
        None,
        augment=record,
    )
    last = torch.load(tmp_path / "w" / "checkpoint.pt", weights_only=False)["model"]
    after_step = before_step[1:] + [last]
    assert len(after_step) == 8
    for key, value in res.best_state.items():
        if not torch.is_floating_point(value):
            continue  # BatchNorm's integer batch counter
        expected = after_step[0][key].clone()
        for weights in after_step[1:]:
            expected = decay * expected + (1 - decay) * weights[key]
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
        # ... and differs from the raw weights, which the returned model does not carry
        assert not torch.allclose(value, last[key])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, res.best_state[key], rtol=0, atol=0)


def test_ema_longer_than_the_training_is_warned_about(tmp_path, caplog):
    # 2 epochs x 8 steps against an average over ~100 steps: the log must say so
    caplog.set_level("WARNING", logger="temflow.training.loop")
    run = {"model": _model(), "train_dataset": _data(), "val_dataset": _data(64, seed=1)}
    train(**run, loss_fn=nn.functional.mse_loss, config=_cfg(epochs=2, ema_decay=0.99),
          work_dir=tmp_path / "a")  # fmt: skip
    assert "ema_decay 0.99 averages over about 100 steps, but this training has only 16" in (
        caplog.text
    )
    caplog.clear()
    run = {"model": _model(), "train_dataset": _data(), "val_dataset": _data(64, seed=1)}
    train(**run, loss_fn=nn.functional.mse_loss, config=_cfg(epochs=2, ema_decay=0.5),
          work_dir=tmp_path / "b")  # fmt: skip
    assert "ema_decay" not in caplog.text


def test_changed_config_starts_afresh(tmp_path):
    train(
        _model(),
        _data(),
        _data(64, seed=1),
        nn.functional.mse_loss,
        _cfg(epochs=1),
        tmp_path / "w",
        None,
    )
    res = train(
        _model(),
        _data(),
        _data(64, seed=1),
        nn.functional.mse_loss,
        _cfg(epochs=1, learning_rate=1e-3),
        tmp_path / "w",
        None,
    )
    assert res.resumed_from == 0 and res.epochs_run == 1


def test_early_stopping_triggers(tmp_path):
    # validation targets are the negatives of the training targets: learning makes the
    # validation loss worse every epoch, so the first epoch stays best.
    res = train(
        _model(),
        _data(),
        _data(64, sign=-1.0, seed=1),
        nn.functional.mse_loss,
        _cfg(epochs=20, patience=2),
        tmp_path / "w",
        tmp_path / "m.csv",
    )
    assert res.stopped_early and res.epochs_run == 3 and res.best_epoch == 1
    # rerunning a stopped run does no further epochs
    again = train(
        _model(),
        _data(),
        _data(64, sign=-1.0, seed=1),
        nn.functional.mse_loss,
        _cfg(epochs=20, patience=2),
        tmp_path / "w",
        tmp_path / "m.csv",
    )
    assert again.epochs_run == 3 and again.resumed_from == 3


def test_max_steps_per_epoch_limits_batches(tmp_path):
    calls = []
    train(
        _model(),
        _data(),
        _data(64, seed=1),
        nn.functional.mse_loss,
        _cfg(epochs=1, max_steps_per_epoch=3),
        tmp_path / "w",
        None,
        augment=lambda x, y, g: (calls.append(1), (x, y))[1],
    )
    assert len(calls) == 3


def test_bad_training_input():
    with pytest.raises(TemflowError, match="batch_size"):
        _cfg(batch_size=0)
    with pytest.raises(TemflowError, match="ema_decay"):
        _cfg(ema_decay=1.0)
    with pytest.raises(TemflowError, match="bogus"):
        TrainConfig.from_dict({"epochs": 1, "bogus": 2})
    with pytest.raises(TemflowError, match="device"):
        torch_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(TemflowError, match="CUDA"):
            torch_device("gpu")
    assert torch_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
