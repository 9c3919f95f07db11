"""Figures for networks applied to users' data (``temflow classify`` / ``temflow segment``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from temflow.plots import plt, save_figure
from temflow.trajectories.io import CLASSES

COLOURS = {"brownian": "tab:gray", "fbm": "tab:blue", "ctrw": "tab:orange"}


def plot_track_classes(
    tracks: pd.DataFrame, path: str | Path, title: str = "", dpi: int = 150
) -> None:
    """Class fractions of the classified tracks (left) and alpha histograms of the FBM and
    CTRW tracks (right), as in MoNet's analysis of experimental gold-nanoparticle tracks."""
    done = tracks[tracks.status == "classified"]
    n = len(done)
    counts = [int((done.predicted_class == c).sum()) for c in CLASSES]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    ax = axes[0]
    frac = np.array(counts) / max(n, 1)
    ax.bar(CLASSES, frac, color=[COLOURS[c] for c in CLASSES])
    for i, (f, c) in enumerate(zip(frac, counts, strict=True)):
        ax.text(i, f, f"{c}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("fraction of tracks")
    skipped = len(tracks) - n
    ax.set_title(f"{n} tracks classified" + (f", {skipped} skipped" if skipped else ""), fontsize=9)
    bins = np.linspace(0, 2, 21)
    for ax, name in zip(axes[1:], ("fbm", "ctrw"), strict=True):
        alpha = done.loc[done.predicted_class == name, "alpha"].to_numpy()
        ax.hist(alpha, bins=bins, color=COLOURS[name], edgecolor="white")
        ax.set_xlabel(r"$\alpha$")
        ax.set_ylabel("tracks")
        med = f", median {np.median(alpha):.2f}" if len(alpha) else ""
        ax.set_title(f"{name}: {len(alpha)} tracks{med}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)


def plot_overlay(
    image: np.ndarray,
    columns: pd.DataFrame,
    sampling_A: float,
    path: str | Path,
    classes: list[str],
    dpi: int = 150,
) -> None:
    """The middle focal image with the detected columns marked by class."""
    ch = image[len(image) // 2]
    h, w = ch.shape
    fig, ax = plt.subplots(figsize=(6, 6 * h / max(w, 1)))
    extent = (-0.5 * sampling_A, (w - 0.5) * sampling_A, (h - 0.5) * sampling_A, -0.5 * sampling_A)
    ax.imshow(ch, cmap="gray", extent=extent)
    colours = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple"]
    for k, name in enumerate(classes):
        sel = columns[columns["class"] == name]
        ax.scatter(
            sel.x_A,
            sel.y_A,
            s=12,
            facecolors="none",
            edgecolors=colours[k % 5],
            linewidths=0.8,
            label=f"{name} ({len(sel)})",
        )
    ax.set_xlabel("x (A)")
    ax.set_ylabel("y (A)")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
    save_figure(fig, path, dpi=dpi, pdf=False)


def plot_class_fractions(
    fractions: pd.DataFrame,
    tracks: pd.DataFrame,
    path: str | Path,
    group: str = "group",
    dpi: int = 150,
) -> None:
    """Class fraction against the condition (left; 95 % Wilson intervals as error bars),
    as the MoNet paper draws it against the electron dose rate, and the alpha of the FBM
    and CTRW tracks per condition (right, box plots). ``fractions``:
    :func:`temflow.apply.conditions.group_fractions`; ``tracks``: the per-track table."""
    values = fractions[group].tolist()
    numeric = pd.to_numeric(fractions[group], errors="coerce")
    x = numeric.to_numpy(float) if numeric.notna().all() else np.arange(len(values))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    ax = axes[0]
    for c in CLASSES:
        f = fractions[f"fraction_{c}"].to_numpy()
        err = [f - fractions[f"fraction_{c}_low"], fractions[f"fraction_{c}_high"] - f]
        ax.errorbar(x, f, yerr=err, marker="o", capsize=3, color=COLOURS[c], label=c)
    ax.set_xticks(x, [str(v) for v in values], rotation=30 if len(values) > 4 else 0)
    ax.set_ylim(0, 1)
    ax.set_xlabel(group)
    ax.set_ylabel("fraction of tracks")
    ax.legend(fontsize=8)
    ax.set_title(f"{int(fractions.n_classified.sum())} tracks classified", fontsize=9)
    done = tracks[tracks.status == "classified"]
    for ax, name in zip(axes[1:], ("fbm", "ctrw"), strict=True):
        data = [
            done.loc[(done[group] == v) & (done.predicted_class == name), "alpha"].to_numpy()
            for v in values
        ]
        ax.boxplot(
            [d if len(d) else [np.nan] for d in data],
            tick_labels=[str(v) for v in values],
            patch_artist=True,
            boxprops={"facecolor": COLOURS[name]},
        )
        ax.set_xlabel(group)
        ax.set_ylabel(r"$\alpha$")
        ax.set_title(f"{name} tracks", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)
