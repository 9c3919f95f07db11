"""Loading a trained segmentation network (MSD-net / U-net) with its model-card checks.

One loader serves the workflow's evaluation and ``temflow segment``: :func:`load_segmenter`
checks the card itself, :func:`check_fits` checks it against a set of images.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from temflow.errors import TemflowError
from temflow.models import SEGMENTATION_NETWORKS
from temflow.segmentation.data import ColumnImages
from temflow.training import load_model

#: Card entries every segmentation model must have.
CARD_KEYS = ("classes", "in_channels", "sampling_range_A")
ARCHITECTURES = {cls.__name__: cls for cls in SEGMENTATION_NETWORKS.values()}


def load_segmenter(
    path: str | Path, net: str | None = None, data: ColumnImages | None = None
) -> tuple[nn.Module, dict]:
    """The MSD-net / U-net saved at ``path`` and its card, in eval mode.

    ``net`` (``msdnet`` / ``unet``) additionally requires that architecture, ``data``
    that the model fits those images (:func:`check_fits`). Raises
    TemflowError naming the file when the card beside it is missing or unreadable, its
    architecture is not a segmentation network (or not ``net``'s), it lacks
    :data:`CARD_KEYS`, or its channels and classes disagree with the architecture's.
    """
    path = Path(path)
    card_file = path.with_suffix(".json")
    try:
        arch = json.loads(card_file.read_text())["architecture"]["class"]
    except FileNotFoundError:
        raise TemflowError(f"{card_file}: model card not found beside {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TemflowError(f"{card_file}: not a model card ({err})") from err
    if arch not in ARCHITECTURES:
        raise TemflowError(
            f"{path}: architecture {arch!r} is not a segmentation network "
            f"(expected one of {sorted(ARCHITECTURES)})"
        )
    if net is not None:
        if net not in SEGMENTATION_NETWORKS:
            raise TemflowError(
                f"segmentation: unknown network {net!r}; "
                f"expected one of {sorted(SEGMENTATION_NETWORKS)}"
            )
        if arch != SEGMENTATION_NETWORKS[net].__name__:
            raise TemflowError(
                f"{path}: card.architecture.class: expected "
                f"{SEGMENTATION_NETWORKS[net].__name__!r}, card has {arch!r}"
            )
    model, card = load_model(path, ARCHITECTURES)
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise TemflowError(f"{card_file}: model card lacks {', '.join(missing)}")
    args = card["architecture"]["args"]
    if int(card["in_channels"]) != int(args.get("in_channels", -1)):
        raise TemflowError(f"{card_file}: in_channels differs from the architecture's")
    if len(card["classes"]) != int(args.get("out_channels", -1)):
        raise TemflowError(
            f"{card_file}: {len(card['classes'])} classes but a different number of output maps"
        )
    card_sampling_range(card, path)
    if data is not None:
        check_fits(card, data, path)
    return model, card


def check_fits(card: Mapping[str, Any], data: ColumnImages, model_path: str | Path) -> None:
    """TemflowError (naming the file) unless the card's classes and input channels are the
    data's and every image's sampling lies in the card's trained range."""
    if list(card["classes"]) != list(data.classes):
        raise TemflowError(
            f"{model_path}: model classes {card['classes']} do not match "
            f"the data's classes {list(data.classes)}"
        )
    if int(card["in_channels"]) != int(data.images.shape[1]):
        raise TemflowError(
            f"{model_path}: model expects {card['in_channels']} input "
            f"channels, the data has {data.images.shape[1]}"
        )
    lo, hi = card_sampling_range(card, model_path)
    s = np.asarray(data.sampling_A, dtype=float)
    outside = np.flatnonzero((s < lo * (1 - 1e-6)) | (s > hi * (1 + 1e-6)))
    if len(outside):
        k = int(outside[0])
        raise TemflowError(
            f"{model_path}: model trained at sampling_A {lo:.6g}-{hi:.6g} A/px, but "
            f"{len(outside)} of {len(s)} images lie outside that range (image {k}: "
            f"{s[k]:.6g} A/px)"
        )


def card_sampling_range(
    card: Mapping[str, Any], source: str | Path = "model card"
) -> tuple[float, float]:
    """The pixel-size range (A/px) a model was trained on: the card's ``sampling_range_A``."""
    try:
        lo, hi = (float(v) for v in card["sampling_range_A"])
    except (KeyError, TypeError, ValueError):
        raise TemflowError(
            f"{source}: model card has no valid sampling_range_A [min, max]"
        ) from None
    if not 0 < lo <= hi:
        raise TemflowError(
            f"{source}: model card sampling range [{lo}, {hi}] is not 0 < min <= max"
        )
    return lo, hi


def calibrated_threshold(card: Mapping[str, Any]) -> float | None:
    """The peak threshold calibrated on held-out images (model card), or None."""
    calibrated = card.get("peak_threshold")
    if isinstance(calibrated, Mapping) and "value" in calibrated:
        return float(calibrated["value"])
    return None


def resolve_threshold(setting: float | str, card: Mapping[str, Any], model_path: str) -> float:
    """``auto`` -> the threshold calibrated on held-out images (from the model card)."""
    if setting != "auto":
        return float(setting)
    value = calibrated_threshold(card)
    if value is None:
        raise TemflowError(
            f"{model_path}: peak_threshold is auto but the model card has no calibrated "
            "threshold (calibrate the model, or set segmentation.peak_threshold to a number)"
        )
    return value


def find_default_model(models_dir: str | Path) -> Path:
    """The newest (modification time) segmentation checkpoint in ``models_dir``: a
    ``*.pt`` whose ``.json`` card names an MSD-net or U-net architecture."""
    models_dir = Path(models_dir)
    found = []
    for pt in models_dir.glob("*.pt"):
        try:
            card = json.loads(pt.with_suffix(".json").read_text())
            arch = card.get("architecture", {}).get("class")
        except (OSError, ValueError, AttributeError):
            continue
        if arch in ARCHITECTURES:
            found.append(pt)
    if not found:
        raise TemflowError(
            f"{models_dir}: no trained segmentation model (msdnet_*.pt / unet_*.pt with a "
            ".json card); train one with the workflow or pass --model"
        )
    return max(found, key=lambda p: (p.stat().st_mtime, p.name))
