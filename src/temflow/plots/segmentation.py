"""Segmentation figures: per-image F1 histograms (seeds' Fig. 2), detections (Fig. 1),
F1 against the image parameters, and the columns ``temflow segment`` found."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from temflow.evaluation.f1 import f1_correlations, f1_parameters
from temflow.plots import save_figure
from temflow.segmentation import IMAGE_PARAMETERS

NET_LABELS = {"msdnet": "MSD-net", "unet": "U-net"}
SUBSTRATE_LABELS = {"bare": "MoS$_2$", "graphene": "MoS$_2$ on graphene"}
CLASS_COLOURS = ("tab:blue", "tab:orange", "tab:green")


def plot_f1_histograms(
    tables: Mapping[tuple[str, str], pd.DataFrame], path: str | Path, dpi: int = 150
) -> None:
    """Histograms of per-image F1, one panel per substrate, one series per network,
    with the mean F1 in the legend (the seeds' Fig. 2)."""
    substrates = sorted(
        {s for _, s in tables},
        key=lambda s: list(SUBSTRATE_LABELS).index(s) if s in SUBSTRATE_LABELS else 99,
    )
    nets = sorted({n for n, _ in tables})
    all_f1 = np.concatenate([t["f1"].to_numpy() for t in tables.values()])
    lo = min(0.9, float(np.floor(all_f1.min() * 20) / 20)) if len(all_f1) else 0.0
    bins = np.linspace(lo, 1.0, 26)
    fig, axes = plt.subplots(
        1, len(substrates), figsize=(4.6 * len(substrates), 3.4), squeeze=False, sharey=True
    )
    for ax, substrate in zip(axes[0], substrates, strict=True):
        for k, net in enumerate(nets):
            t = tables.get((net, substrate))
            if t is None:
                continue
            f1 = t["f1"].to_numpy()
            ax.hist(
                f1,
                bins=bins,
                alpha=0.55,
                color=f"C{k}",
                edgecolor=f"C{k}",
                label=f"{NET_LABELS.get(net, net)} (mean F1 {f1.mean():.3f})",
            )
        ax.set_title(SUBSTRATE_LABELS.get(substrate, substrate))
        ax.set_xlabel("per-image F1")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("validation images")
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)


#: Panels per row of the F1-against-parameter figure (a substrate's parameters wrap).
PARAMETER_PANELS_PER_ROW = 6


def _by_evaluation_set(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The table's rows per ``evaluation_set`` (validation first); one group without it."""
    if "evaluation_set" not in table:
        return [("validation", table)]
    return list(table.groupby("evaluation_set", sort=False))


def _set_marker(evaluation_set: str, color: str) -> dict[str, str]:
    """Filled dots for validation images, open ones for any other set (robustness)."""
    if evaluation_set == "validation":
        return {"color": color, "edgecolors": "none"}
    return {"facecolors": "none", "edgecolors": color}


def plot_f1_by_parameter(
    tables: Mapping[tuple[str, str], pd.DataFrame], path: str | Path, dpi: int = 150
) -> list[str]:
    """Per-image (class) F1 against each of :func:`f1_parameters` that varies: a block of
    rows per substrate (at most :data:`PARAMETER_PANELS_PER_ROW` parameters a row), one
    series per network, Spearman rho in the legend; rows whose ``evaluation_set`` is not
    ``validation`` (a robustness set, :func:`temflow.segmentation.evaluate.
    pool_evaluation_tables`) are drawn as open circles. A parameter with one value in every
    image (an option that is off) gets no panel; the figure's title names it with its
    value. Returns the parameters drawn."""
    every = f1_parameters(tables, list(IMAGE_PARAMETERS))
    values = {p: pd.concat([t[p] for t in tables.values()]) for p in every}
    params = [p for p in every if values[p].nunique() > 1] or every
    fixed = {p: values[p].iloc[0] for p in every if p not in params}
    substrates = sorted(
        {s for _, s in tables},
        key=lambda s: list(SUBSTRATE_LABELS).index(s) if s in SUBSTRATE_LABELS else 99,
    )
    nets = sorted({n for n, _ in tables})
    corr = f1_correlations(tables, params).set_index(["network", "substrate", "parameter"])
    ncols = min(len(params), PARAMETER_PANELS_PER_ROW)
    rows_per_substrate = -(-len(params) // ncols)
    fig, axes = plt.subplots(
        len(substrates) * rows_per_substrate,
        ncols,
        figsize=(3.1 * ncols, 2.7 * len(substrates) * rows_per_substrate),
        squeeze=False,
        sharey="row",
    )
    for r, substrate in enumerate(substrates):
        for c in range(rows_per_substrate * ncols):
            ax = axes[r * rows_per_substrate + c // ncols, c % ncols]
            if c >= len(params):
                ax.axis("off")
                continue
            param = params[c]
            for k, net in enumerate(nets):
                t = tables.get((net, substrate))
                if t is None:
                    continue
                rho = corr.loc[(net, substrate, param), "spearman_rho"]
                label = f"{NET_LABELS.get(net, net)} ($\\rho$ {rho:+.2f})"
                for name, rows in _by_evaluation_set(t):
                    ax.scatter(
                        rows[param],
                        rows["f1"],
                        s=10,
                        alpha=0.6,
                        **_set_marker(name, f"C{k}"),
                        label=label,
                    )
                    label = None
            if param == "dose_e_per_A2":
                ax.set_xscale("log")
            else:
                ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.set_xlabel(IMAGE_PARAMETERS[param], fontsize=8)
            ax.legend(loc="lower right", fontsize=7)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
        for row in range(rows_per_substrate):
            axes[r * rows_per_substrate + row, 0].set_ylabel(
                f"per-image F1\n{SUBSTRATE_LABELS.get(substrate, substrate)}", fontsize=8
            )
    title = []
    if any(name != "validation" for t in tables.values() for name, _ in _by_evaluation_set(t)):
        title.append("open circles: robustness set")
    if fixed:
        title.append(
            "the same in every image: "
            + ", ".join(f"{IMAGE_PARAMETERS[p]} {v:g}" for p, v in fixed.items())
        )
    if title:
        fig.suptitle("; ".join(title), fontsize=9)
    # Keep 0.3 inch at the top for the title.
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight() if title else 1))
    save_figure(fig, path, dpi=dpi)
    return params


def plot_detections(
    images: np.ndarray,
    sampling_A: float,
    true_xy: np.ndarray,
    true_class: np.ndarray,
    detections: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    classes: Sequence[str],
    path: str | Path,
    defoci_A: Sequence[float] | None = None,
    title: str = "",
    dpi: int = 150,
) -> None:
    """One focal series and each network's detected columns (the seeds' Fig. 1).

    Args:
        images: (3, H, W) focal series.
        sampling_A: pixel size.
        true_xy, true_class: true columns (x_A, y_A) and class ids.
        detections: ``{net: (pred_xy, pred_class, false_positive_idx, missed_true_idx)}``.
        classes: class names.
        path: PNG path.
        defoci_A: defocus of each channel (titles).
        title: figure title.
    """
    n_img = images.shape[0]
    n_panels = n_img + len(detections)
    fig, axes = plt.subplots(1, n_panels, figsize=(3.0 * n_panels, 3.3), squeeze=False)
    h, w = images.shape[1:]
    extent = (-0.5 * sampling_A, (w - 0.5) * sampling_A, (h - 0.5) * sampling_A, -0.5 * sampling_A)
    for c in range(n_img):
        ax = axes[0, c]
        ax.imshow(images[c], cmap="gray", extent=extent)
        label = f"defocus {defoci_A[c]:.0f} A" if defoci_A is not None else f"channel {c}"
        ax.set_title(label, fontsize=9)
    true_xy = np.asarray(true_xy).reshape(-1, 2)
    for ax, (net, (pxy, pcls, fp, miss)) in zip(axes[0, n_img:], detections.items(), strict=True):
        ax.imshow(images[0], cmap="gray", extent=extent)
        pxy = np.asarray(pxy).reshape(-1, 2)
        for c in range(len(classes)):
            sel = np.asarray(pcls) == c
            ax.scatter(
                pxy[sel, 0], pxy[sel, 1], s=14, color=CLASS_COLOURS[c % 3], edgecolors="none"
            )
        if len(fp):
            ax.scatter(
                pxy[fp, 0],
                pxy[fp, 1],
                s=60,
                facecolors="none",
                edgecolors="red",
                linewidths=1.2,
                marker="s",
            )
        if len(miss):
            ax.scatter(
                true_xy[miss, 0],
                true_xy[miss, 1],
                s=50,
                color="magenta",
                marker="x",
                linewidths=1.4,
            )
        ax.set_title(f"{NET_LABELS.get(net, net)}: {len(fp)} FP, {len(miss)} missed", fontsize=9)
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [
        Line2D([], [], marker="o", linestyle="", color=CLASS_COLOURS[c % 3], label=n)
        for c, n in enumerate(classes)
    ]
    handles += [
        Line2D(
            [],
            [],
            marker="s",
            linestyle="",
            markerfacecolor="none",
            markeredgecolor="red",
            label="false positive",
        ),
        Line2D([], [], marker="x", linestyle="", color="magenta", label="missed"),
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=len(handles),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, -0.04),
    )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)
