"""Scoring trained segmentation networks per validation image, and the detections the
figures show."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from temflow.errors import TemflowError
from temflow.evaluation import score_table_row
from temflow.segmentation import IMAGE_PARAMETERS
from temflow.segmentation.card import load_segmenter, resolve_threshold
from temflow.segmentation.data import (
    ColumnImages,
    describe_sources,
    load_column_images,
    subset,
)
from temflow.segmentation.detect import Detection, detect_columns


def image_parameters(
    paths: Sequence[str | Path], keys: Sequence[str], data: ColumnImages
) -> dict[str, np.ndarray]:
    """Per-image parameters ``keys`` (e.g. ``dose_e_per_A2``) of ``data``'s images, read
    from their shards (``paths``), in ``data``'s order. ``defocus_mean_A`` is the mean of
    the image's ``defoci_A``."""
    from temflow.hrtem.shards import open_dataset

    ds = open_dataset(paths)
    by_image = {(str(meta["shard"]), int(meta["index"])): meta for _, _, meta in ds}
    out = {}
    for key in keys:
        try:
            values = []
            for f, i in data.sources:
                meta = by_image[(str(f), int(i))]
                if key == "defocus_mean_A":
                    values.append(float(np.mean(meta["defoci_A"])))
                else:
                    values.append(float(meta[key]))
        except (KeyError, TypeError) as err:
            stored = "defoci_A" if key == "defocus_mean_A" else key
            raise TemflowError(
                f"shards {describe_sources(paths)}: no {stored!r} for every image"
            ) from err
        out[key] = np.array(values)
    return out


def evaluation_table(detections: Sequence[Detection], data: ColumnImages) -> pd.DataFrame:
    """One row per image: source file and index, its sampling (A/px), overall and
    per-class P/R/F1, counts, and P/R/F1 whatever the class (``*_any_class``)."""
    rows = []
    for i, det in enumerate(detections):
        src = data.sources[i] if i < len(data.sources) else ("", i)
        rows.append(
            {
                "image": i,
                "file": Path(src[0]).name,
                "index": src[1],
                "sampling_A": float(data.sampling_A[i]),
                **score_table_row(det.match),
                **dict(
                    zip(
                        ("precision_any_class", "recall_any_class", "f1_any_class"),
                        det.position_match.overall(),
                        strict=True,
                    )
                ),
            }
        )
    return pd.DataFrame(rows)


def evaluate_segmentation(
    model_path: str | Path,
    net: str,
    val_paths: Sequence[str | Path],
    peak_threshold: float | str,
    min_separation_A: float,
    match_radius_A: float,
    border_A: float,
    device: str = "auto",
    image_parameter_keys: Sequence[str] = IMAGE_PARAMETERS,
) -> tuple[pd.DataFrame, float]:
    """Score a trained network on validation shards: one :func:`evaluation_table` row per
    image plus its simulation parameters ``image_parameter_keys`` (see
    :func:`image_parameters`; default dose, defocus, aberrations), and the peak threshold
    used (``auto``: the model card's calibrated one)."""
    data = load_column_images(val_paths)
    model, card = load_segmenter(model_path, net, data)
    threshold = resolve_threshold(peak_threshold, card, str(model_path))
    detections = detect_columns(
        model, data, threshold, min_separation_A, match_radius_A, border_A, device=device
    )
    table = evaluation_table(detections, data)
    keys = [k for k in image_parameter_keys if k not in table.columns]  # sampling_A is there
    for key, values in image_parameters(val_paths, keys, data).items():
        table[key] = values
    return table, threshold


def figure_detections(
    models: Mapping[str, str | Path],
    val_paths: Sequence[str | Path],
    image: int,
    peak_threshold: float | str,
    min_separation_A: float,
    match_radius_A: float,
    border_A: float,
) -> tuple[ColumnImages, dict[str, Detection]]:
    """Validation image ``image`` of ``val_paths`` and each network's detections on it
    (``models``: network name -> model file), on the CPU."""
    one = subset(load_column_images(val_paths), [image])
    detections = {}
    for net, path in models.items():
        model, card = load_segmenter(path, net, one)
        threshold = resolve_threshold(peak_threshold, card, str(path))
        detections[net] = detect_columns(
            model, one, threshold, min_separation_A, match_radius_A, border_A, device="cpu"
        )[0]
    return one, detections


def read_evaluation_tables(
    paths: Sequence[str | Path], networks: Sequence[str], substrates: Sequence[str]
) -> dict[tuple[str, str], pd.DataFrame]:
    """``{(net, substrate): table}`` of per-image evaluation tables given in
    network-major order (every substrate of the first network, then the next)."""
    keys = [(net, substrate) for net in networks for substrate in substrates]
    if len(keys) != len(paths):
        raise TemflowError(
            f"evaluation tables: {len(paths)} files for {len(keys)} (network, substrate) pairs"
        )
    return {key: pd.read_csv(path) for key, path in zip(keys, paths, strict=True)}


def pool_evaluation_tables(
    groups: Mapping[str, Mapping[tuple[str, str], pd.DataFrame]],
) -> dict[tuple[str, str], pd.DataFrame]:
    """``{(net, substrate): table}`` with the rows of every group's table of that key, in
    the groups' order, each row's group name in the column ``evaluation_set`` (e.g.
    ``{"validation": ..., "robustness": ...}``, for F1 against the image parameters)."""
    pooled: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for name, group in groups.items():
        for key, table in group.items():
            pooled.setdefault(key, []).append(table.assign(evaluation_set=name))
    return {key: pd.concat(tables, ignore_index=True) for key, tables in pooled.items()}
