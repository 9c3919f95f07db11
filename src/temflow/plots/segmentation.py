"""Segmentation figures: per-image F1 histograms (seeds' Fig. 2), detections (Fig. 1),
and the F1 summary table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from scipy.stats import spearmanr

from temflow.io import atomic_path
from temflow.plots import save_figure

NET_LABELS = {"msdnet": "MSD-net", "unet": "U-net"}
SUBSTRATE_LABELS = {"bare": "MoS$_2$", "graphene": "MoS$_2$ on graphene"}
CLASS_COLOURS = ("tab:blue", "tab:orange", "tab:green")


#: Dose bins (e/A^2, [lo, hi)) of the summary's dose-resolved mean F1.
DOSE_BINS_E_PER_A2 = ((0, 300), (300, 1000), (1000, 3000), (3000, float("inf")))


def f1_summary(tables: Mapping[tuple[str, str], pd.DataFrame]) -> pd.DataFrame:
    """Mean, median, std, min of per-image F1 per (network, substrate), plus per class.

    Args:
        tables: ``{(net, substrate): per-image evaluation table}`` with column ``f1``
            and optionally ``f1_<class>``.
    """
    rows = []
    for (net, substrate), t in sorted(tables.items()):
        row: dict[str, object] = {
            "network": net,
            "substrate": substrate,
            "n_images": len(t),
            "mean_f1": float(t["f1"].mean()),
            "median_f1": float(t["f1"].median()),
            "std_f1": float(t["f1"].std(ddof=1)) if len(t) > 1 else 0.0,
            "min_f1": float(t["f1"].min()),
            "mean_precision": float(t["precision"].mean()),
            "mean_recall": float(t["recall"].mean()),
        }
        for col in t.columns:
            if col.startswith("f1_"):
                row[f"mean_{col}"] = float(t[col].mean())
        if "dose_e_per_A2" in t.columns:
            # Detection is dose-limited: the mean over a log-uniform dose range hides that.
            for lo, hi in DOSE_BINS_E_PER_A2:
                sel = t["f1"][(t["dose_e_per_A2"] >= lo) & (t["dose_e_per_A2"] < hi)]
                row[f"mean_f1_dose_{lo:g}_{hi:g}"] = float(sel.mean()) if len(sel) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def write_summary(tables: Mapping[tuple[str, str], pd.DataFrame], path: str | Path) -> None:
    """Write :func:`f1_summary` as CSV (atomically)."""
    with atomic_path(path) as tmp:
        f1_summary(tables).to_csv(tmp, index=False, float_format="%.6g")


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


#: Image parameters (evaluation-table columns) that F1 is read against, with axis labels;
#: dose on a log axis (it is drawn log-uniformly).
F1_PARAMETERS = {
    "dose_e_per_A2": "dose (e/A$^2$)",
    "defocus_mean_A": "mean defocus of the focal series (A)",
    "astigmatism_A": "astigmatism (A)",
    "focal_spread_A": "focal spread (A)",
    "Cs_A": "C$_s$ (A)",
    "sampling_A": "pixel size (A)",
}


def f1_parameters(tables: Mapping[tuple[str, str], pd.DataFrame]) -> list[str]:
    """The parameters of the figure and the correlation table: all of
    :data:`F1_PARAMETERS`, once every table is checked to have them. Raises ValueError,
    naming the tables, when there is no table or a table lacks some of them (an
    evaluation table written by an older temflow: its ``segmentation_evaluate`` jobs need
    rerunning)."""
    if not tables:
        raise ValueError("F1 against image parameters: no evaluation tables")
    lacking = {
        f"{net}_{substrate}": [p for p in F1_PARAMETERS if p not in t.columns]
        for (net, substrate), t in sorted(tables.items())
    }
    lacking = {name: missing for name, missing in lacking.items() if missing}
    if lacking:
        raise ValueError(
            "F1 against image parameters: evaluation tables without "
            + "; ".join(f"{name}: {', '.join(m)}" for name, m in lacking.items())
            + " (rerun their evaluation: snakemake -R segmentation_evaluate)"
        )
    return list(F1_PARAMETERS)


def f1_correlations(
    tables: Mapping[tuple[str, str], pd.DataFrame], parameters: Sequence[str]
) -> pd.DataFrame:
    """Spearman rank correlation of per-image (class) F1 with each image parameter, per
    (network, substrate): which microscope conditions a network fails under.

    Columns: network, substrate, parameter, n_images, spearman_rho, p_value (two-sided),
    mean_f1_low and mean_f1_high (mean F1 of the images at or below and above the
    parameter's median). Images whose parameter or F1 is not finite are left out
    (``n_images`` counts the rest); fewer than 3 images, or a constant parameter or F1,
    give rho and p NaN.
    """
    rows = []
    for (net, substrate), t in sorted(tables.items()):
        for param in parameters:
            x, f1 = t[param].to_numpy(float), t["f1"].to_numpy(float)
            finite = np.isfinite(x) & np.isfinite(f1)
            x, f1 = x[finite], f1[finite]
            constant = len(x) < 3 or np.ptp(x) == 0 or np.ptp(f1) == 0
            rho, p = (np.nan, np.nan) if constant else spearmanr(x, f1)
            low = x <= np.median(x) if len(x) else np.zeros(0, bool)
            rows.append(
                {
                    "network": net,
                    "substrate": substrate,
                    "parameter": param,
                    "n_images": len(x),
                    "spearman_rho": float(rho),
                    "p_value": float(p),
                    "mean_f1_low": float(f1[low].mean()) if low.any() else np.nan,
                    "mean_f1_high": float(f1[~low].mean()) if (~low).any() else np.nan,
                }
            )
    return pd.DataFrame(rows)


def write_f1_correlations(
    tables: Mapping[tuple[str, str], pd.DataFrame], path: str | Path
) -> pd.DataFrame:
    """Write :func:`f1_correlations` over :func:`f1_parameters` as CSV (atomically) and
    return it."""
    table = f1_correlations(tables, f1_parameters(tables))
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return table


def plot_f1_by_parameter(
    tables: Mapping[tuple[str, str], pd.DataFrame], path: str | Path, dpi: int = 150
) -> None:
    """Per-image (class) F1 against each of :func:`f1_parameters`: one row per substrate,
    one series per network, Spearman rho in the legend."""
    params = f1_parameters(tables)
    substrates = sorted(
        {s for _, s in tables},
        key=lambda s: list(SUBSTRATE_LABELS).index(s) if s in SUBSTRATE_LABELS else 99,
    )
    nets = sorted({n for n, _ in tables})
    corr = f1_correlations(tables, params).set_index(["network", "substrate", "parameter"])
    fig, axes = plt.subplots(
        len(substrates),
        len(params),
        figsize=(3.1 * len(params), 2.7 * len(substrates)),
        squeeze=False,
        sharey="row",
    )
    for r, substrate in enumerate(substrates):
        for c, param in enumerate(params):
            ax = axes[r, c]
            for k, net in enumerate(nets):
                t = tables.get((net, substrate))
                if t is None:
                    continue
                rho = corr.loc[(net, substrate, param), "spearman_rho"]
                ax.scatter(
                    t[param],
                    t["f1"],
                    s=10,
                    alpha=0.6,
                    color=f"C{k}",
                    edgecolors="none",
                    label=f"{NET_LABELS.get(net, net)} ($\\rho$ {rho:+.2f})",
                )
            if param == "dose_e_per_A2":
                ax.set_xscale("log")
            else:
                ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.set_xlabel(F1_PARAMETERS[param], fontsize=8)
            ax.legend(loc="lower right", fontsize=7)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
        axes[r, 0].set_ylabel(
            f"per-image F1\n{SUBSTRATE_LABELS.get(substrate, substrate)}", fontsize=8
        )
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)


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
