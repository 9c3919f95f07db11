"""Focal series + Gaussian column targets as a torch Dataset, and dihedral augmentation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from temflow.errors import TemflowError
from temflow.hrtem.columns import gaussian_targets

log = logging.getLogger(__name__)


@dataclass
class ColumnImages:
    """Focal series with their column tables, all in memory.

    Attributes:
        images: (N, C, H, W) float32 focal series (one common shape; see
            :func:`load_column_images`).
        columns: per image a table with ``x_A, y_A, class`` (class: index into classes),
            in the image's frame (pixel ``[i, j]`` at ``x = j * s, y = i * s``).
        sampling_A: (N,) pixel size of every image, A (a number is used for all).
        classes: column class names.
        sources: (file, index in file) of every image.
        defoci_A: per image the defocus of each channel (A), if known.
        sampling_range_A: the range ``(min, max)`` the images' samplings were drawn from
            (the shards' configured range; default: the samplings' own min and max).
    """

    images: np.ndarray
    columns: list[pd.DataFrame]
    sampling_A: np.ndarray
    classes: tuple[str, ...]
    sources: list[tuple[str, int]] = field(default_factory=list)
    defoci_A: list[list[float]] | None = None
    sampling_range_A: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        s = np.asarray(self.sampling_A, dtype=float)
        if s.ndim == 0:
            s = np.full(len(self.images), float(s))
        if s.shape != (len(self.images),):
            raise TemflowError(
                f"sampling_A: expected one pixel size per image ({len(self.images)}), "
                f"got shape {s.shape}"
            )
        if len(s) and not np.all(s > 0):
            raise TemflowError(f"sampling_A: pixel sizes must be > 0, got {s.min()}")
        self.sampling_A = s
        if self.sampling_range_A is None:
            lo, hi = (float(s.min()), float(s.max())) if len(s) else (np.nan, np.nan)
            self.sampling_range_A = (lo, hi)
        else:
            self.sampling_range_A = (
                float(self.sampling_range_A[0]),
                float(self.sampling_range_A[1]),
            )

    def __len__(self) -> int:
        return len(self.images)


def centre_crop(
    image: np.ndarray, columns: pd.DataFrame, sampling_A: float, shape: tuple[int, int]
) -> tuple[np.ndarray, pd.DataFrame]:
    """The central ``shape`` (h, w) window of ``image`` (..., H, W) and its columns.

    The window starts at row ``(H - h) // 2``, column ``(W - w) // 2``; column positions
    shift by that many pixels times ``sampling_A`` into the window's frame, and columns
    whose centre falls outside ``[0, w * s) x [0, h * s)`` are dropped (the convention of
    :func:`temflow.hrtem.columns.find_columns`).
    """
    height, width = image.shape[-2:]
    h, w = shape
    if h > height or w > width:
        raise TemflowError(f"cannot crop a {(height, width)} px image to {(h, w)} px")
    top, left = (height - h) // 2, (width - w) // 2
    x = np.asarray(columns["x_A"], dtype=float) - left * sampling_A
    y = np.asarray(columns["y_A"], dtype=float) - top * sampling_A
    keep = (x >= 0) & (x < w * sampling_A) & (y >= 0) & (y < h * sampling_A)
    cropped = columns.assign(x_A=x, y_A=y)[keep].reset_index(drop=True)
    return image[..., top : top + h, left : left + w], cropped


def normalise(images: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation per image and channel (last two axes)."""
    images = np.asarray(images, dtype=np.float32)
    mean = images.mean(axis=(-2, -1), keepdims=True)
    std = images.std(axis=(-2, -1), keepdims=True)
    return (images - mean) / np.maximum(std, 1e-6)


class SegmentationDataset(Dataset):
    """Items ``(normalised focal series (C, H, W), Gaussian targets (K, H, W))``.

    Args:
        data: the images and column tables.
        target_width_A: standard deviation of the Gaussian target of one column.
    """

    def __init__(self, data: ColumnImages, target_width_A: float) -> None:
        if target_width_A <= 0:
            raise TemflowError(f"segmentation.target_width_A must be > 0, got {target_width_A}")
        self.data = data
        self.target_width_A = target_width_A
        self._inputs = torch.from_numpy(normalise(data.images))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = self.data.images.shape[-2:]
        target = gaussian_targets(  # the target width is in A: each image's own sampling
            self.data.columns[i],
            shape,
            float(self.data.sampling_A[i]),
            self.target_width_A,
            len(self.data.classes),
        )
        return self._inputs[i], torch.from_numpy(target)


def dihedral_augment(
    inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flip / 90-degree rotation per sample, the same on inputs and targets.

    Square images get one of the 8 symmetries of the square; others one of the 4 that
    keep the shape (identity, two flips, 180-degree rotation).
    """
    square = inputs.shape[-1] == inputs.shape[-2]
    ops = torch.randint(0, 8 if square else 4, (inputs.shape[0],), generator=generator)
    xs, ys = [], []
    for x, y, op in zip(inputs, targets, ops.tolist(), strict=True):
        if not square:
            op = (0, 2, 4, 6)[op]  # identity, rot180, flip, flip+rot180
        k, flip = op % 4, op >= 4
        if flip:
            x, y = x.flip(-1), y.flip(-1)
        if k:
            x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
        xs.append(x)
        ys.append(y)
    return torch.stack(xs).contiguous(), torch.stack(ys).contiguous()


def random_crop(
    inputs: torch.Tensor, targets: torch.Tensor, crop_px: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``crop_px`` x ``crop_px`` window of inputs and targets, per sample.

    Images no larger than ``crop_px`` along an axis are kept whole along it.
    """
    h, w = inputs.shape[-2:]
    ch, cw = min(crop_px, h), min(crop_px, w)
    n = inputs.shape[0]
    top = torch.randint(0, h - ch + 1, (n,), generator=generator).tolist()
    left = torch.randint(0, w - cw + 1, (n,), generator=generator).tolist()
    xs = [x[:, t : t + ch, lf : lf + cw] for x, t, lf in zip(inputs, top, left, strict=True)]
    ys = [y[:, t : t + ch, lf : lf + cw] for y, t, lf in zip(targets, top, left, strict=True)]
    return torch.stack(xs), torch.stack(ys)


def make_augment(crop_px: int | None = None):
    """Training augmentation: optional random crop, then :func:`dihedral_augment`."""

    def augment(
        inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if crop_px:
            inputs, targets = random_crop(inputs, targets, crop_px, generator)
        return dihedral_augment(inputs, targets, generator)

    return augment


def load_column_images(paths: Sequence[str | Path]) -> ColumnImages:
    """Read HR-TEM shards (temflow.hrtem.shards) into memory.

    Images of different shapes (a per-image sampling gives each its own) are centre-cropped
    to the smallest common (H, W) (:func:`centre_crop`; logged once). Raises TemflowError
    for no files, an empty set, or images with differing channel counts.
    """
    from temflow.hrtem.shards import open_dataset

    paths = [Path(p) for p in paths]
    if not paths:
        raise TemflowError("segmentation: no HR-TEM shard files given")
    ds = open_dataset(paths)
    if len(ds) == 0:
        raise TemflowError(f"segmentation: the shards {describe_sources(paths)} hold no images")
    images, columns, sources, samplings = [], [], [], []
    defoci: list[list[float]] = []
    for img, cols, meta in ds:
        if images and img.shape[0] != images[0].shape[0]:
            raise TemflowError(
                f"{meta['shard']}: image {meta['index']} has {img.shape[0]} channels, "
                f"expected {images[0].shape[0]}"
            )
        images.append(np.asarray(img, dtype=np.float32))
        columns.append(cols)
        samplings.append(float(meta["sampling_A"]))
        sources.append((str(meta["shard"]), int(meta["index"])))
        if "defoci_A" in meta:
            defoci.append([float(d) for d in np.ravel(meta["defoci_A"])])
    shapes = {img.shape[-2:] for img in images}
    if len(shapes) > 1:
        common = (min(h for h, _ in shapes), min(w for _, w in shapes))
        n_crop = sum(img.shape[-2:] != common for img in images)
        log.info(
            "%d of %d images centre-cropped to the smallest common shape %s px (shapes %s to %s)",
            n_crop,
            len(images),
            common,
            min(shapes),
            max(shapes),
        )
        for k, (img, s) in enumerate(zip(images, samplings, strict=True)):
            images[k], columns[k] = centre_crop(img, columns[k], s, common)
    return ColumnImages(
        np.stack(images),
        columns,
        np.asarray(samplings),
        tuple(ds.classes),
        sources,
        defoci if len(defoci) == len(images) else None,
        sampling_range_A=ds.sampling_range_A,
    )


def check_classes(expected: Sequence[str], actual: Sequence[str], what: str) -> None:
    """Raise TemflowError unless the class lists are identical."""
    if list(expected) != list(actual):
        raise TemflowError(f"{what}: classes {list(actual)} do not match {list(expected)}")


def describe_sources(paths: Sequence[str | Path]) -> list[str]:
    """Sorted string paths (for logs and model cards)."""
    return sorted(str(p) for p in paths)


def subset(data: ColumnImages, indices: Sequence[int]) -> ColumnImages:
    """The images ``indices`` of ``data`` (TemflowError if one is out of range)."""
    for i in indices:
        if not 0 <= i < len(data):
            raise TemflowError(f"image index {i} out of range: the set has {len(data)} images")
    idx = list(indices)
    return ColumnImages(
        images=data.images[idx],
        columns=[data.columns[i] for i in idx],
        sampling_A=data.sampling_A[idx],
        classes=data.classes,
        sources=[data.sources[i] for i in idx] if data.sources else [],
        defoci_A=[data.defoci_A[i] for i in idx] if data.defoci_A else None,
        sampling_range_A=data.sampling_range_A,
    )


def holdout_split(data: ColumnImages, n_holdout: int) -> tuple[ColumnImages, ColumnImages]:
    """(first N - n_holdout images, last n_holdout images): training and held-out sets.

    TemflowError unless 1 <= n_holdout < N (both parts must be non-empty).
    """
    n = len(data)
    if not 1 <= n_holdout < n:
        raise TemflowError(
            f"segmentation.training_val_images={n_holdout} must be at least 1 and less than "
            f"the {n} training images (they are held out of training)"
        )
    return subset(data, range(n - n_holdout)), subset(data, range(n - n_holdout, n))
