"""Segmentation data, augmentation, a tiny training run with resume, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from temflow.errors import TemflowError
from temflow.hrtem.columns import gaussian_targets
from temflow.hrtem.shards import ImageRecord, write_shard
from temflow.segmentation.card import load_segmenter, resolve_threshold
from temflow.segmentation.data import (
    ColumnImages,
    SegmentationDataset,
    centre_crop,
    dihedral_augment,
    holdout_split,
    load_column_images,
    normalise,
    subset,
)
from temflow.segmentation.detect import THRESHOLD_GRID, calibrate_threshold, detect_columns
from temflow.segmentation.evaluate import evaluation_table
from temflow.segmentation.train import class_weights, train_segmentation, weighted_mse_loss
from temflow.training import TrainConfig

CLASSES = ("Mo", "S2", "S1")


def load_segmentation_model(path, net: str, data: ColumnImages):
    """The one loader with the check against the data, as the evaluation runs it."""
    return load_segmenter(path, net, data)


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
        [[-30.0, 20.0, 70.0]] * n,
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
        class_weighting="balanced",
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
    assert card["sampling_range_A"] == [0.25, 0.25]
    weights = class_weights(train_data, "balanced")
    assert card["class_weights"] == {
        "mode": "balanced",
        "weights": dict(zip(CLASSES, weights.tolist(), strict=True)),
    }
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


def _with_counts(counts: tuple[int, ...]) -> ColumnImages:
    # Two images whose columns hold counts[k] columns of class k in total.
    labels = np.repeat(np.arange(len(counts)), counts)
    halves = np.array_split(labels, 2)
    columns = [
        pd.DataFrame({"x_A": np.ones(len(h)), "y_A": np.ones(len(h)), "class": h}) for h in halves
    ]
    return ColumnImages(np.zeros((2, 3, 8, 8), np.float32), columns, 0.1, CLASSES)


def test_class_weights_balance_the_classes() -> None:
    # Inverse to the column counts, normalised to mean 1: 1/8, 1/4, 1/2 -> 3/7 (1, 2, 4).
    w = class_weights(_with_counts((8, 4, 2)), "balanced")
    np.testing.assert_allclose(w, np.array([1.0, 2.0, 4.0]) * 3 / 7)
    # Every class's total weight (count x weight) is the same.
    np.testing.assert_allclose(np.array([8, 4, 2]) * w, 24 / 7)
    np.testing.assert_array_equal(class_weights(_with_counts((8, 4, 2)), "none"), np.ones(3))
    # A class without columns gets the largest weight of the others (1/3 vs 1/5).
    np.testing.assert_allclose(
        class_weights(_with_counts((5, 3, 0)), "balanced"), np.array([3.0, 5.0, 5.0]) * 3 / 13
    )
    with pytest.raises(TemflowError, match="hold no columns"):
        class_weights(_with_counts((0, 0, 0)), "balanced")
    with pytest.raises(TemflowError, match="class_weights.*'inverse'"):
        class_weights(_with_counts((5, 3, 1)), "inverse")


def test_weighted_mse_loss() -> None:
    torch.manual_seed(0)
    out, target = torch.randn(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    plain = torch.nn.functional.mse_loss(out, target)
    torch.testing.assert_close(weighted_mse_loss([1.0, 1.0, 1.0])(out, target), plain)
    per_class = ((out - target) ** 2).mean(dim=(0, 2, 3))
    expected = (per_class * torch.tensor([0.5, 1.0, 1.5])).mean()
    torch.testing.assert_close(weighted_mse_loss([0.5, 1.0, 1.5])(out, target), expected)
    # Errors in a class with weight 0 do not count.
    shifted = out.clone()
    shifted[:, 2] += 10.0
    w = weighted_mse_loss([1.0, 2.0, 0.0])
    torch.testing.assert_close(w(shifted, target), w(out, target))


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
    # Samplings outside the trained range (here exactly 0.25 A/px).
    off = ColumnImages(data.images, data.columns, [0.25, 0.25, 0.26], CLASSES)
    with pytest.raises(TemflowError, match=r"0.25-0.25 A/px, but 1 of 3 images .* 0.26 A/px"):
        load_segmentation_model(tmp_path / "unet.pt", "unet", off)
    with pytest.raises(TemflowError, match="one pixel size per image"):
        ColumnImages(data.images, data.columns, [0.25, 0.25], CLASSES)
    with pytest.raises(TemflowError, match="validation set is empty"):
        detect_columns(model, empty, 0.5, 2.0, 0.5)
    with pytest.raises(TemflowError, match="out of range"):
        subset(data, [3])


# --- per-image sampling -------------------------------------------------------------------


def test_centre_crop_keeps_columns_on_their_pixels() -> None:
    """A (1, 6, 8) image at 0.5 A/px cropped to (4, 4): the window starts at row 1,
    column 2, so columns shift by (-1.0, -0.5) A; those now outside are dropped."""
    image = np.arange(48, dtype=np.float32).reshape(1, 6, 8)
    cols = pd.DataFrame(
        {
            "x_A": [1.0, 2.5, 3.4, 0.5, 1.5],
            "y_A": [0.5, 2.0, 1.0, 1.0, 2.6],
            "class": [0, 1, 2, 0, 1],
        }
    )
    out, kept = centre_crop(image, cols, 0.5, (4, 4))
    np.testing.assert_array_equal(out, image[:, 1:5, 2:6])
    # (1.0, 0.5) -> (0, 0); (2.5, 2.0) -> (1.5, 1.5); x = 3.4 -> 2.4 >= 4 * 0.5; x = 0.5 -> -0.5;
    # y = 2.6 -> 2.1 >= 2.0: dropped
    np.testing.assert_allclose(kept[["x_A", "y_A"]].to_numpy(), [[0.0, 0.0], [1.5, 1.5]])
    assert kept["class"].tolist() == [0, 1]
    for x, y in kept[["x_A", "y_A"]].to_numpy():  # the same pixel value as before the crop
        i, j = round(y / 0.5), round(x / 0.5)
        assert out[0, i, j] == image[0, i + 1, j + 2]


def _record(shape: tuple[int, int], sampling: float, cols: pd.DataFrame) -> ImageRecord:
    images = np.random.default_rng(0).normal(size=(3, *shape)).astype(np.float32)
    return ImageRecord(images, cols, np.zeros((0, 3)), np.zeros(0, int), np.eye(3),
                       np.zeros((0, 3)), np.zeros(0, int), {"sampling_A": sampling})  # fmt: skip


def test_load_column_images_crops_to_common_shape(tmp_path, caplog) -> None:
    cols = pd.DataFrame({"x_A": [0.2, 3.0], "y_A": [0.3, 2.0], "class": [0, 2]})
    records = [_record((40, 44), 0.1, cols), _record((36, 40), 0.11, cols)]
    path = tmp_path / "shard_0000.h5"
    write_shard(path, records, {"sampling_A": [0.1, 0.11], "classes": list(CLASSES)})
    caplog.set_level("INFO", logger="temflow.segmentation.data")
    data = load_column_images([path])
    assert data.images.shape == (2, 3, 36, 40)
    np.testing.assert_array_equal(data.images[0], records[0].images[:, 2:38, 2:42])
    np.testing.assert_array_equal(data.images[1], records[1].images)
    np.testing.assert_allclose(data.sampling_A, [0.1, 0.11])
    assert data.sampling_range_A == (0.1, 0.11)
    # image 0: shifted by 2 px = 0.2 A; (0.2, 0.3) -> (0.0, 0.1) stays, (3.0, 2.0) -> (2.8, 1.8)
    np.testing.assert_allclose(data.columns[0][["x_A", "y_A"]], [[0.0, 0.1], [2.8, 1.8]])
    pd.testing.assert_frame_equal(data.columns[1], cols)
    assert sum("centre-cropped" in r.getMessage() for r in caplog.records) == 1
    assert subset(data, [1]).sampling_range_A == (0.1, 0.11)


def test_gaussian_targets_follow_each_images_sampling() -> None:
    """The same column in A at 0.1 and 0.125 A/px: the target peaks at the same physical
    position with the same width in A."""
    cols = pd.DataFrame({"x_A": [2.0], "y_A": [1.5], "class": [1]})
    data = ColumnImages(np.zeros((2, 3, 32, 32), np.float32), [cols, cols], [0.1, 0.125], CLASSES)
    ds = SegmentationDataset(data, target_width_A=0.4)
    for k, s in enumerate((0.1, 0.125)):
        t = ds[k][1].numpy()[1]
        i, j = np.unravel_index(np.argmax(t), t.shape)
        assert (j * s, i * s) == pytest.approx((2.0, 1.5))
        assert t[i, j] == pytest.approx(1.0)
        assert t[i, j + round(0.5 / s)] == pytest.approx(np.exp(-0.5 * (0.5 / 0.4) ** 2), rel=1e-5)


def test_detection_uses_each_images_sampling() -> None:
    """Identity 'network' on perfect class maps drawn at 0.2 and 0.3 A/px: every column is
    found and matched in A only if each image's own sampling is used."""
    cols = pd.DataFrame({"x_A": [2.0, 5.0, 6.2, 3.1], "y_A": [3.0, 5.0, 1.6, 6.9],
                         "class": [0, 1, 2, 0]})  # fmt: skip
    maps = np.stack([gaussian_targets(cols, (40, 40), s, 0.4) for s in (0.2, 0.3)])
    data = ColumnImages(maps, [cols, cols], [0.2, 0.3], CLASSES)
    dets = detect_columns(torch.nn.Identity(), data, 0.5, 1.0, 0.1, device="cpu")
    table = evaluation_table(dets, data)
    assert table["sampling_A"].tolist() == [0.2, 0.3]
    assert table["f1"].tolist() == [1.0, 1.0] and table["n_true"].tolist() == [4, 4]
    for det in dets:
        np.testing.assert_allclose(
            np.sort(det.xy_A, axis=0), np.sort(cols[["x_A", "y_A"]], axis=0), atol=0.02
        )


def test_wrong_classes_cost_class_f1_but_not_position_f1() -> None:
    """Perfect maps with the Mo and S2 maps swapped: every column is found (F1 whatever the
    class = 1), but only the S1 one with its class (class F1 = 2 x 1 / (4 + 4))."""
    cols = pd.DataFrame({"x_A": [2.0, 5.0, 6.2, 3.1], "y_A": [3.0, 5.0, 1.6, 6.9],
                         "class": [0, 1, 2, 0]})  # fmt: skip
    maps = gaussian_targets(cols, (40, 40), 0.2, 0.4)[[1, 0, 2]][None]
    data = ColumnImages(maps, [cols], [0.2], CLASSES)
    table = evaluation_table(detect_columns(torch.nn.Identity(), data, 0.5, 1.0, 0.1), data)
    row = table.iloc[0]
    assert row["f1"] == pytest.approx(0.25) and row["tp_S1"] == 1
    assert (row["precision_any_class"], row["recall_any_class"], row["f1_any_class"]) == (1, 1, 1)


class _GaussianMaps(torch.nn.Module):
    """A stand-in "network" whose class maps are exact Gaussians of the true columns, at
    heights 0.35 (Mo), 0.6 (S2) and 0.9 (S1), plus a spurious S2 peak of height 0.28 per
    image. Off-grid column peaks reach at least 0.9 of their height on the pixels, so
    thresholds 0.3 (just above the spurious peak) is perfect."""

    def __init__(self, data: ColumnImages) -> None:
        super().__init__()
        self.data = data
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(len(self.data)):
            cols = self.data.columns[i]
            shape = self.data.images.shape[-2:]
            s = float(self.data.sampling_A[i])
            t = gaussian_targets(cols, shape, s, 0.4, 3)
            t *= np.array([0.35, 0.6, 0.9], dtype=np.float32)[:, None, None]
            t += gaussian_targets(
                pd.DataFrame({"x_A": [5.0], "y_A": [5.0], "class": [1]}), shape, s, 0.4, 3
            ) * np.float32(0.28)
            out.append(torch.from_numpy(t))
        return torch.stack(out)[: len(x)] + 0 * self.dummy


def test_calibrate_threshold_picks_the_gap_between_true_and_spurious_peaks() -> None:
    data = synthetic(1, size=48, seed=4)
    # Move columns off the spurious peak at (5, 5) A so that it is a pure false positive.
    cols = data.columns[0]
    data.columns[0] = cols[np.hypot(cols.x_A - 5.0, cols.y_A - 5.0) > 2.5].reset_index(drop=True)
    model = _GaussianMaps(data)
    best, scores = calibrate_threshold(
        model, data, min_separation_A=1.0, match_radius_A=0.5, device="cpu"
    )
    assert set(scores) == set(THRESHOLD_GRID)
    n = len(data.columns[0])
    n_mo = int((data.columns[0]["class"] == 0).sum())
    # Above 0.35 every Mo column is missed; below 0.28 the spurious S2 peak counts.
    assert scores[0.3] == pytest.approx(1.0)
    assert scores[0.25] == pytest.approx(2 * n / (2 * n + 1))
    assert scores[0.4] == pytest.approx(2 * (n - n_mo) / (2 * n - n_mo))
    assert best == 0.3
    assert scores[0.9] < scores[0.5] < scores[0.3]


def test_holdout_split_and_threshold_resolution() -> None:
    data = synthetic(5, seed=5)
    train, held = holdout_split(data, 2)
    assert [src[1] for src in train.sources] == [0, 1, 2]
    assert [src[1] for src in held.sources] == [3, 4]
    for bad in (0, 5):
        with pytest.raises(TemflowError, match="training_val_images"):
            holdout_split(data, bad)
    assert resolve_threshold(0.4, {}, "m.pt") == 0.4
    assert resolve_threshold("auto", {"peak_threshold": {"value": 0.35}}, "m.pt") == 0.35
    with pytest.raises(TemflowError, match="m.pt: peak_threshold is auto"):
        resolve_threshold("auto", {}, "m.pt")
