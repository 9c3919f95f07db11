"""Segmentation data, augmentation, a tiny training run with resume, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from temflow.errors import TemflowError
from temflow.segmentation.data import (
    ColumnImages,
    SegmentationDataset,
    dihedral_augment,
    normalise,
    subset,
)
from temflow.segmentation.pipeline import (
    detect_columns,
    evaluation_table,
    load_segmentation_model,
    train_segmentation,
)
from temflow.training import TrainConfig

CLASSES = ("Mo", "S2", "S1")


def synthetic(n: int, size: int = 40, sampling: float = 0.25, seed: int = 0) -> ColumnImages:
    """Columns on a jittered square grid, three channels with class-dependent contrast."""
    rng = np.random.default_rng(seed)
    images, columns = [], []
    ii, jj = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    for _ in range(n):
        g = np.arange(1.2, size * sampling - 1.0, 1.6)
        x, y = (a.ravel() for a in np.meshgrid(g, g))
        x = x + rng.uniform(-0.2, 0.2, x.shape)
        y = y + rng.uniform(-0.2, 0.2, y.shape)
        cls = rng.integers(0, 3, x.shape)
        img = np.zeros((3, size, size))
        for xi, yi, ci in zip(x, y, cls, strict=True):
            blob = np.exp(-((jj - xi / sampling) ** 2 + (ii - yi / sampling) ** 2) / 4.0)
            img += np.array([1.0, 0.6, 0.3])[ci] * np.array([1.0, -0.5, 0.8])[:, None, None] * blob
        img += rng.normal(0, 0.05, img.shape)
        images.append(img.astype(np.float32))
        columns.append(pd.DataFrame({"x_A": x, "y_A": y, "class": cls}))
    return ColumnImages(
        np.stack(images),
        columns,
        sampling,
        CLASSES,
        [("synthetic.h5", i) for i in range(n)],
        [-30.0, 20.0, 70.0],
    )


def test_dataset_items_and_normalisation() -> None:
    data = synthetic(2)
    ds = SegmentationDataset(data, target_width_A=0.4)
    x, y = ds[1]
    assert x.shape == (3, 40, 40) and y.shape == (3, 40, 40)
    assert torch.allclose(x.mean((1, 2)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std((1, 2), unbiased=False), torch.ones(3), atol=1e-4)
    # One unit-height peak per column, in its class channel.
    assert float(y.max()) <= 1.0 and float(y.max()) > 0.7
    assert np.allclose(normalise(np.ones((1, 2, 4, 4))), 0.0)


def test_dihedral_augment_consistent_and_complete() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    xa, ya = dihedral_augment(x, x.clone(), gen)
    assert torch.equal(xa, ya)
    # Each output is one of the 8 symmetries of the square of its input; all 8 occur.
    found = set()
    for i in range(64):
        ops = [
            (k, flip)
            for k in range(4)
            for flip in (False, True)
            if torch.equal(torch.rot90(x[i].flip(-1) if flip else x[i], k, (-2, -1)), xa[i])
        ]
        assert len(ops) == 1
        found.add(ops[0])
    assert len(found) == 8
    # Non-square images keep their shape.
    xr, _ = dihedral_augment(torch.randn(8, 3, 6, 9), torch.randn(8, 3, 6, 9), gen)
    assert xr.shape == (8, 3, 6, 9)


def test_tiny_training_lowers_loss_checkpoints_and_resumes(tmp_path) -> None:
    train_data, val_data = synthetic(8, seed=1), synthetic(2, seed=2)
    files = tmp_path / "shard.h5"
    files.write_bytes(b"stand-in for the data hash")
    cfg = dict(
        batch_size=4, learning_rate=0.01, patience=None, device="cpu", seed=3, progress=False
    )
    kwargs = dict(
        target_width_A=0.4,
        work_dir=tmp_path / "work",
        metrics_csv=tmp_path / "m.csv",
        model_path=tmp_path / "msdnet.pt",
        data_files={"train": [files]},
        substrate="bare",
    )
    card = train_segmentation(
        "msdnet",
        {"depth": 6, "width": 1},
        train_data,
        val_data,
        TrainConfig(epochs=3, **cfg),
        **kwargs,
    )
    hist = pd.read_csv(tmp_path / "m.csv")
    assert len(hist) == 3 and hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    assert (tmp_path / "work" / "checkpoint.pt").is_file()
    assert card["classes"] == list(CLASSES) and card["in_channels"] == 3
    assert card["architecture"] == {
        "class": "MSDNet",
        "args": {"in_channels": 3, "out_channels": 3, "depth": 6, "width": 1, "n_dilations": 10},
    }
    assert card["data"]["train"][str(files)] and card["sampling_A"] == 0.25
    # Resume: two more epochs continue from the checkpoint instead of starting over.
    card2 = train_segmentation(
        "msdnet",
        {"depth": 6, "width": 1},
        train_data,
        val_data,
        TrainConfig(epochs=5, **cfg),
        **kwargs,
    )
    hist2 = pd.read_csv(tmp_path / "m.csv")
    assert hist2["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert np.allclose(hist2["train_loss"].iloc[:3], hist["train_loss"])
    assert card2["metrics"]["epochs_run"] == 5

    model, _ = load_segmentation_model(tmp_path / "msdnet.pt", "msdnet", val_data)
    dets = detect_columns(model, val_data, 0.5, 1.0, 0.5, border_A=0.5)
    table = evaluation_table(dets, val_data)
    assert len(table) == 2 and set(table["file"]) == {"synthetic.h5"}
    assert {"f1", "f1_Mo", "precision_S2", "recall_S1"} <= set(table.columns)
    assert table["f1"].between(0, 1).all()


def test_bad_inputs(tmp_path) -> None:
    data = synthetic(3)
    f = tmp_path / "d.h5"
    f.write_bytes(b"x")
    kwargs = dict(
        target_width_A=0.4,
        work_dir=tmp_path / "w",
        metrics_csv=tmp_path / "m.csv",
        model_path=tmp_path / "unet.pt",
        data_files={"train": [f]},
    )
    cfg = TrainConfig(epochs=1, batch_size=4, device="cpu", progress=False)
    empty = subset(data, [])
    with pytest.raises(TemflowError, match="validation set is empty"):
        train_segmentation("unet", {"depth": 2, "base_width": 4}, data, empty, cfg, **kwargs)
    train_segmentation("unet", {"depth": 2, "base_width": 4}, data, data, cfg, **kwargs)
    # A checkpoint of another architecture.
    with pytest.raises(TemflowError, match="MSDNet"):
        load_segmentation_model(tmp_path / "unet.pt", "msdnet", data)
    # Classes or channel count that do not match the data.
    other = ColumnImages(data.images, data.columns, data.sampling_A, ("Mo", "S", "X"))
    with pytest.raises(TemflowError, match="classes"):
        load_segmentation_model(tmp_path / "unet.pt", "unet", other)
    two = ColumnImages(data.images[:, :2], data.columns, data.sampling_A, CLASSES)
    with pytest.raises(TemflowError, match="input channels"):
        load_segmentation_model(tmp_path / "unet.pt", "unet", two)
    model, _ = load_segmentation_model(tmp_path / "unet.pt", "unet", data)
    with pytest.raises(TemflowError, match="validation set is empty"):
        detect_columns(model, empty, 0.5, 2.0, 0.5)
    with pytest.raises(TemflowError, match="out of range"):
        subset(data, [3])
