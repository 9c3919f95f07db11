"""``temflow segment``: atomic columns in users' focal series with a trained MSD-net / U-net.

Steps per image: keep the image's pixel size when it lies inside the range the model was
trained on (the card's ``sampling_range_A``; older cards: their one ``sampling_A``), else
resample it to the nearest end of that range (:func:`resample`, logged); normalise
each channel over the WHOLE image (zero mean, unit std — the training normalisation of
:func:`temflow.segmentation.data.normalise`), run the network over overlapping tiles,
find peaks per class map (:func:`temflow.evaluation.find_peaks_per_class`, as the
workflow's evaluation does) and report them in the input's Angstrom frame
(pixel ``[i, j]`` at ``x = j * s, y = i * s``).

Tiles: the image is cut into cores of ``tile_px`` with a ``margin_px`` of context on each
side; only the core of each tile's output is kept. With a margin of at least the
network's receptive-field radius (the default) every kept output pixel sees exactly the
pixels it would see in a whole-image pass, so the result does not depend on where tile
borders fall. For the U-net the image is first reflect-padded (bottom/right) to a
multiple of ``2**depth`` and tile corners lie on that grid, so pooling windows line up
with the whole-image pass too.

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
from temflow.segmentation.data import normalise
from temflow.segmentation.pipeline import NETWORKS, calibrated_threshold, card_sampling_range
from temflow.training import load_model, resolve_device

log = logging.getLogger(__name__)
CARD_KEYS = ("classes", "in_channels", "sampling_A")


def find_default_model(models_dir: str | Path) -> Path:
    """The newest (modification time) segmentation checkpoint in ``models_dir``: a
    ``*.pt`` whose ``.json`` card names an MSD-net or U-net architecture."""
    import json

    models_dir = Path(models_dir)
    found = []
    for pt in models_dir.glob("*.pt"):
        card = pt.with_suffix(".json")
        try:
            arch = json.loads(card.read_text()).get("architecture", {}).get("class")
        except (OSError, ValueError):
            continue
        if arch in {cls.__name__ for cls in NETWORKS.values()}:
            found.append(pt)
    if not found:
        raise TemflowError(
            f"{models_dir}: no trained segmentation model (msdnet_*.pt / unet_*.pt with a "
            ".json card); train one with the workflow or pass --model"
        )
    return max(found, key=lambda p: (p.stat().st_mtime, p.name))


def load_segmenter(path: str | Path) -> tuple[nn.Module, dict]:
    """Load an MSD-net or U-net checkpoint and check its card has what ``segment`` needs."""
    import json

    path = Path(path)
    card_file = path.with_suffix(".json")
    try:
        arch = json.loads(card_file.read_text())["architecture"]["class"]
    except FileNotFoundError:
        raise TemflowError(f"{card_file}: model card not found beside {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TemflowError(f"{card_file}: not a model card ({err})") from err
    classes = {cls.__name__: cls for cls in NETWORKS.values()}
    if arch not in classes:
        raise TemflowError(
            f"{path}: architecture {arch!r} is not a segmentation network "
            f"(expected one of {sorted(classes)})"
        )
    model, card = load_model(path, factory=classes[arch])
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise TemflowError(f"{card_file}: model card lacks {', '.join(missing)}")
    if int(card["in_channels"]) != int(card["architecture"]["args"].get("in_channels", -1)):
        raise TemflowError(f"{card_file}: in_channels differs from the architecture's")
    if len(card["classes"]) != int(card["architecture"]["args"].get("out_channels", -1)):
        raise TemflowError(f"{card_file}: {len(card['classes'])} classes but a different "
                           "number of output maps")  # fmt: skip
    return model, card


def receptive_radius(model: nn.Module) -> int:
    """Pixels of context on each side that one output pixel depends on (upper bound)."""
    if hasattr(model, "receptive_field") and not callable(model.receptive_field):
        return int(model.receptive_field) // 2
    if hasattr(model, "depth") and hasattr(model, "base_width"):  # U-net
        # two 3x3 convs per level on each side of the U plus pooling / up-convolutions:
        # at level k every such layer widens the field by 2**k input pixels per side.
        return 8 * 2 ** int(model.depth)
    raise TemflowError(f"{type(model).__name__}: unknown receptive field; pass --margin")


def tile_alignment(model: nn.Module) -> int:
    """Tile corners must lie on this grid (U-net: 2**depth; MSD-net: 1)."""
    if hasattr(model, "base_width"):
        return 2 ** int(model.depth)
    return 1


def predict_tiled(
    model: nn.Module,
    image: np.ndarray,
    device: torch.device,
    tile_px: int = 512,
    margin_px: int | None = None,
) -> np.ndarray:
    """Per-class maps (K, H, W) for one normalised image (C, H, W), tile by tile."""
    margin = receptive_radius(model) if margin_px is None else int(margin_px)
    align = tile_alignment(model)
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
) -> SegmentResult:
    """Columns of every image of ``series``; see the module docstring.

    ``threshold`` None: the model card's calibrated peak threshold, else 0.5.
    """
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
    images, samplings = [], []
    for n, (img, s_in) in enumerate(zip(series.images, series.sampling_A, strict=True)):
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
    dev = resolve_device(device)
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
    )


def plot_overlay(image: np.ndarray, columns: pd.DataFrame, sampling_A: float, path: str | Path,
                 classes: list[str], dpi: int = 150) -> None:  # fmt: skip
    """The middle focal image with the detected columns marked by class."""
    from temflow.plots import plt, save_figure

    ch = image[len(image) // 2]
    h, w = ch.shape
    fig, ax = plt.subplots(figsize=(6, 6 * h / max(w, 1)))
    ax.imshow(ch, cmap="gray", extent=(-0.5 * sampling_A, (w - 0.5) * sampling_A,
                                       (h - 0.5) * sampling_A, -0.5 * sampling_A))  # fmt: skip
    colours = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple"]
    for k, name in enumerate(classes):
        sel = columns[columns["class"] == name]
        ax.scatter(sel.x_A, sel.y_A, s=12, facecolors="none", edgecolors=colours[k % 5],
                   linewidths=0.8, label=f"{name} ({len(sel)})")  # fmt: skip
    ax.set_xlabel("x (A)")
    ax.set_ylabel("y (A)")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
    save_figure(fig, path, dpi=dpi, pdf=False)
