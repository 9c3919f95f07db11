"""HR-TEM figures: focal series with the labelled columns overlaid by class."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from temflow.hrtem.columns import CLASSES
from temflow.plots import save_figure

CLASS_COLOURS = {"Mo": "tab:red", "S2": "tab:cyan", "S1": "gold"}


def plot_examples(
    examples: Mapping[str, tuple[np.ndarray, pd.DataFrame, dict[str, Any]]],
    path: str | Path,
    dpi: int = 150,
) -> None:
    """One row per dataset: the focal series (channels) with columns marked by class.

    ``examples`` maps a dataset name to one ``open_dataset(...)[i]`` item; each image is
    drawn in A at its own ``meta["sampling_A"]``.
    """
    n_rows = len(examples)
    n_cols = max(images.shape[0] for images, _, _ in examples.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols, 3.4 * n_rows), squeeze=False)
    for row, (name, (images, columns, meta)) in enumerate(examples.items()):
        h, w = images.shape[-2:]
        sampling_A = float(meta["sampling_A"])
        extent = (
            -0.5 * sampling_A,
            (w - 0.5) * sampling_A,
            (h - 0.5) * sampling_A,
            -0.5 * sampling_A,
        )
        for c, ax in enumerate(axes[row]):
            if c >= images.shape[0]:
                ax.axis("off")
                continue
            ax.imshow(images[c], cmap="gray", extent=extent)
            for k, cls in enumerate(CLASSES):
                sel = columns[columns["class"] == k]
                ax.scatter(
                    sel["x_A"],
                    sel["y_A"],
                    s=6,
                    c=CLASS_COLOURS[cls],
                    label=cls if (row, c) == (0, 0) else None,
                    linewidths=0,
                )
            ax.set_title(
                f"{name}: defocus {meta['defoci_A'][c]:.0f} A, {sampling_A:.4g} A/px", fontsize=8
            )
            ax.set_xlabel("x (A)", fontsize=7)
            ax.set_ylabel("y (A)", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.legend(loc="lower center", ncol=len(CLASSES), fontsize=8, markerscale=3)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    save_figure(fig, path, dpi=dpi)
