"""``temflow segment``: atomic columns in users' focal series with a trained MSD-net / U-net.

Steps per image: register the frames of the focal series (the drift between exposures,
:func:`temflow.hrtem.registration.register_series`; skipped with ``register=False``) and
move every channel into the frame of the reference (middle) channel, the frame the
networks' labels were trained in; keep the image's pixel size when it lies inside the
range the model was trained on (the card's ``sampling_range_A``), else resample it to
the nearest end of that range (:func:`resample`, logged); normalise each channel over
the WHOLE image (zero mean, unit std — the training normalisation of
:func:`temflow.segmentation.data.normalise`), run the network over overlapping tiles,
find peaks per class map (:func:`temflow.evaluation.find_peaks_per_class`, as the
workflow's evaluation does) and report them in the input's Angstrom frame
(pixel ``[i, j]`` at ``x = j * s, y = i * s``), i.e. in the reference channel's frame.
With ``max_rotation_deg > 0`` a rotation of each frame about the image centre is measured
and undone too (:func:`temflow.hrtem.registration.register_series_rigid`; off by default,
as the training data have none; its precision grows with the field searched, at most
the central 512 px: docs/2026-12-06-registration-bound.md).
The shifts (and rotations) found are returned per image
(:attr:`SegmentResult.frame_shifts_A`, :func:`frame_shift_table`).

Tiles: the image is cut into cores of ``tile_px`` with a ``margin_px`` of context on each
side; only the core of each tile's output is kept. With a margin of at least the
network's receptive radius (the default; each network declares ``receptive_radius_px``)
every kept output pixel sees exactly the pixels it would see in a whole-image pass, so
the result does not depend on where tile borders fall. Where the network declares a
``tile_alignment_px`` above 1 (the U-net: ``2**depth``) the image is first reflect-padded
(bottom/right) to a multiple of it and tile corners lie on that grid, so pooling windows
line up with the whole-image pass too.

``confidence`` is the class map's value at the peak: the networks are trained to output
unit-height Gaussians at columns, so 1 is a perfectly predicted column and values near
the threshold are doubtful.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from temflow.apply.images import FocalSeries, resample
from temflow.errors import TemflowError
from temflow.evaluation import find_peaks_per_class
from temflow.hrtem.frames import reference_channel
from temflow.hrtem.registration import (
    MAX_SHIFT_A,
    align_series,
    register_series,
    register_series_rigid,
)
from temflow.segmentation.card import calibrated_threshold, card_sampling_range
from temflow.segmentation.data import normalise
from temflow.training import torch_device

log = logging.getLogger(__name__)


def predict_tiled(
    model: nn.Module,
    image: np.ndarray,
    device: torch.device,
    tile_px: int = 512,
    margin_px: int | None = None,
) -> np.ndarray:
    """Per-class maps (K, H, W) for one normalised image (C, H, W), tile by tile."""
    margin = model.receptive_radius_px if margin_px is None else int(margin_px)
    align = model.tile_alignment_px
    if tile_px < 1 or margin < 0:
        raise TemflowError(f"tiles: expected tile_px >= 1 and margin >= 0, got {tile_px}, {margin}")
    c, h, w = image.shape
    x = torch.from_numpy(np.ascontiguousarray(image))[None]
    ph, pw = (-h) % align, (-w) % align
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
    H, W = x.shape[-2:]
    tile = max(align, (int(tile_px) // align) * align)
    out = None
    model.to(device).eval()
    with torch.no_grad():
        for top in range(0, H, tile):
            for left in range(0, W, tile):
                bottom, right = min(top + tile, H), min(left + tile, W)
                t0 = max(0, (top - margin) // align * align)
                l0 = max(0, (left - margin) // align * align)
                t1, l1 = min(H, bottom + margin), min(W, right + margin)
                # at least 32 px of context (MSD-net's reflect padding needs > 10 px)
                t0 = max(0, min(t0, (t1 - 32) // align * align))
                l0 = max(0, min(l0, (l1 - 32) // align * align))
                t1 = min(H, t0 + -(-(t1 - t0) // align) * align)
                l1 = min(W, l0 + -(-(l1 - l0) // align) * align)
                y = model(x[..., t0:t1, l0:l1].to(device)).float().cpu()
                if out is None:
                    out = torch.empty((y.shape[1], H, W), dtype=torch.float32)
                out[:, top:bottom, left:right] = y[0, :, top - t0 : bottom - t0,
                                                    left - l0 : right - l0]  # fmt: skip
    assert out is not None
    return out[:, :h, :w].numpy()


@dataclass
class SegmentResult:
    columns: pd.DataFrame  # image, x_A, y_A, class, confidence
    maps: list[np.ndarray]  # per image (K, h, w) at the sampling it was segmented at
    resampled: list[np.ndarray]  # per image (C, h, w) as segmented (resampled or as given)
    sampling_A: list[float]  # per image: the sampling it was segmented at (A/px)
    input_sampling_A: list[float]  # per image: the input's sampling (A/px)
    sampling_range_A: tuple[float, float]  # the model's trained range (A/px)
    device: str
    #: per image (C, 2) = (dx, dy) A of each channel against the reference channel, as
    #: measured and undone (zeros where registration was skipped)
    frame_shifts_A: list[np.ndarray] | None = None
    registered: bool = True
    #: per image (C,) deg: each channel's rotation about the centre, measured and undone
    #: (zeros unless ``max_rotation_deg > 0``)
    frame_rotations_deg: list[np.ndarray] | None = None

    @property
    def n_resampled(self) -> int:
        """Images whose sampling lay outside the trained range (and were resampled)."""
        return sum(
            not np.isclose(a, b, rtol=1e-9)
            for a, b in zip(self.sampling_A, self.input_sampling_A, strict=True)
        )


def model_sampling(sampling_A: float, trained_A: tuple[float, float]) -> float:
    """The sampling to segment an image at: its own inside the trained range, else the
    nearest end of the range."""
    lo, hi = trained_A
    return float(min(max(sampling_A, lo), hi))


def segment_series(
    series: FocalSeries,
    model: nn.Module,
    card: dict,
    threshold: float | None = None,
    min_separation_A: float = 2.0,
    device: str = "auto",
    tile_px: int = 512,
    margin_px: int | None = None,
    model_path: str | Path = "model",
    register: bool = True,
    max_shift_A: float = MAX_SHIFT_A,
    max_rotation_deg: float = 0.0,
) -> SegmentResult:
    """Columns of every image of ``series``; see the module docstring.

    ``threshold`` None: the model card's calibrated peak threshold, else 0.5.
    ``register``: measure and undo the drift between the frames (search radius
    ``max_shift_A``) before inference, and with ``max_rotation_deg > 0`` a rotation of
    at most that many degrees as well.
    """
    if max_rotation_deg < 0:
        raise TemflowError(f"--max-rotation must be >= 0 deg, got {max_rotation_deg}")
    if threshold is None:
        calibrated = calibrated_threshold(card)
        threshold = 0.5 if calibrated is None else calibrated
        log.info(
            "peak threshold %.3g (%s)",
            threshold,
            "model card" if calibrated is not None else "default",
        )
    channels = int(card["in_channels"])
    for img in series.images:
        if img.shape[0] != channels:
            raise TemflowError(
                f"{series.source}: {img.shape[0]} channels, but the model "
                f"{model_path} was trained on {channels}-image focal series"
            )
    trained = card_sampling_range(card, model_path)
    images, samplings, shifts, rotations = [], [], [], []
    for n, (img, s_in) in enumerate(zip(series.images, series.sampling_A, strict=True)):
        turned = np.zeros(img.shape[0])
        if register and max_rotation_deg > 0:
            found, turned = register_series_rigid(img, s_in, max_shift_A, max_rotation_deg)
            img = align_series(img, found, s_in, turned).astype(np.float32)
        elif register:
            found = register_series(img, s_in, max_shift_A)
            if np.any(found != 0):  # no drift found: the frames stay as given
                img = align_series(img, found, s_in).astype(np.float32)
        else:
            found = np.zeros((img.shape[0], 2))
        shifts.append(found)
        rotations.append(turned)
        s = model_sampling(s_in, trained)
        if not np.isclose(s, s_in, rtol=1e-9):
            log.info(
                "image %d: %.4g A/px is outside the model's trained range [%.4g, %.4g] A/px; "
                "resampled to %.4g A/px",
                n,
                s_in,
                *trained,
                s,
            )
            img = resample(img, s_in, s)
        if min(img.shape[-2:]) <= 10:
            raise TemflowError(
                f"{series.source}: image {n} is {img.shape[-2:]} px at {s:g} A/px, "
                "too small an image"
            )
        images.append(img)
        samplings.append(s)
    dev = torch_device(device)
    rows, maps = [], []
    classes = list(card["classes"])
    for n, (img, s) in enumerate(zip(images, samplings, strict=True)):
        m = predict_tiled(model, normalise(img), dev, tile_px, margin_px)
        xy, cls = find_peaks_per_class(m, s, threshold, min_separation_A, classes)
        rc = np.clip(np.rint(xy[:, ::-1] / s).astype(int), 0, None)
        conf = m[cls, np.minimum(rc[:, 0], m.shape[1] - 1), np.minimum(rc[:, 1], m.shape[2] - 1)]
        rows.append(
            pd.DataFrame(
                {
                    "image": n,
                    "x_A": xy[:, 0],
                    "y_A": xy[:, 1],
                    "class": [classes[k] for k in cls],
                    "confidence": conf.astype(np.float64),
                }
            )
        )
        maps.append(m)
    table = pd.concat(rows, ignore_index=True).sort_values(["image", "y_A", "x_A"], kind="stable")
    return SegmentResult(
        table.reset_index(drop=True),
        maps,
        images,
        samplings,
        [float(v) for v in series.sampling_A],
        trained,
        str(dev),
        shifts,
        register,
        rotations,
    )


def frame_shift_table(result: SegmentResult) -> pd.DataFrame:
    """One row per image and channel: image, channel, reference (bool), dx_A, dy_A (the
    drift found against the reference channel and undone), rotation_deg (the rotation
    about the centre found and undone; 0 unless searched), registered (bool)."""
    rows = []
    shifts = result.frame_shifts_A or []
    turns = result.frame_rotations_deg or [np.zeros(len(found)) for found in shifts]
    for n, (found, turned) in enumerate(zip(shifts, turns, strict=True)):
        ref = reference_channel(len(found))
        for c, ((dx, dy), angle) in enumerate(zip(found, turned, strict=True)):
            rows.append(
                {
                    "image": n,
                    "channel": c,
                    "reference": c == ref,
                    "dx_A": float(dx),
                    "dy_A": float(dy),
                    "rotation_deg": float(angle),
                    "registered": result.registered,
                }
            )
    return pd.DataFrame(
        rows,
        columns=["image", "channel", "reference", "dx_A", "dy_A", "rotation_deg", "registered"],
    )


def frame_shifts_path(output: str | Path) -> Path:
    """The sidecar CSV of the frame shifts beside the columns CSV ``output``."""
    output = Path(output)
    return output.with_name(f"{output.stem}_frame_shifts.csv")
