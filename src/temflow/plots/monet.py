"""MoNet figures: confusion matrix and predicted-vs-true alpha."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from temflow.plots import plt, save_figure


def plot_confusion(
    conf: pd.DataFrame,
    path: str | Path,
    accuracy: float,
    noisy_accuracy: float | None = None,
    dpi: int = 150,
) -> None:
    """Row-normalised confusion matrix with counts."""
    counts = conf.to_numpy()
    frac = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    labels = [c.removeprefix("true_") for c in conf.index]
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(frac, vmin=0, vmax=1, cmap="Blues")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{frac[i, j]:.2f}\n({counts[i, j]})",
                ha="center",
                va="center",
                color="white" if frac[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    title = f"MoNet accuracy {accuracy:.3f}"
    if noisy_accuracy is not None:
        title += f"\n(noisy test {noisy_accuracy:.3f})"
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    save_figure(fig, path, dpi=dpi)


def plot_alpha(
    frames: dict[str, pd.DataFrame], by_range: pd.DataFrame, path: str | Path, dpi: int = 150
) -> None:
    """Predicted vs true alpha per process (top) and MAE per alpha range (bottom)."""
    names = list(frames)
    fig, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 7), squeeze=False)
    for k, name in enumerate(names):
        f = frames[name]
        ax = axes[0, k]
        mae = float(np.mean(np.abs(f.alpha_predicted - f.alpha)))
        ax.scatter(f.alpha, f.alpha_predicted, s=4, alpha=0.4)
        lo, hi = float(f.alpha.min()), float(f.alpha.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel("true alpha")
        ax.set_ylabel("predicted alpha")
        ax.set_title(f"{name.upper()}: MAE {mae:.3f} (n={len(f)})", fontsize=9)
        ax = axes[1, k]
        rows = by_range[by_range.process == name]
        centres = (rows.alpha_low + rows.alpha_high) / 2
        widths = rows.alpha_high - rows.alpha_low
        ax.bar(centres, rows.mae, width=widths * 0.9)
        for c, m, n in zip(centres, rows.mae, rows.n, strict=True):
            ax.text(c, m, f"n={n}", ha="center", va="bottom", fontsize=7)
        ax.set_xlabel("true alpha range")
        ax.set_ylabel("MAE")
    save_figure(fig, path, dpi=dpi)


def plot_reliability(
    tables: dict[str, pd.DataFrame], eces: dict[str, float], path: str | Path, dpi: int = 150
) -> None:
    """Reliability diagram: accuracy against mean top-class probability per bin
    (:func:`temflow.evaluation.calibration.reliability_table`), one curve per test set
    (``tables``), the diagonal for a calibrated classifier, the ECE in the legend."""
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    for name, table in tables.items():
        full = table[table.n > 0]
        ax.plot(full.confidence, full.accuracy, marker="o", label=f"{name}: ECE {eces[name]:.3f}")
    ax.set_xlim(0.3, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean top-class probability")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    ax.set_title("MoNet classifier calibration (held-out tracks)", fontsize=9)
    save_figure(fig, path, dpi=dpi)
