"""Statistics of per-image F1: the summary per network and substrate, and rank
correlations of F1 with the conditions each image was simulated under."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from temflow.io import atomic_path

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


def f1_parameters(
    tables: Mapping[tuple[str, str], pd.DataFrame], parameters: Sequence[str]
) -> list[str]:
    """The parameters of the figure and the correlation table: all of ``parameters``
    (the workflow's :data:`temflow.segmentation.IMAGE_PARAMETERS`), once every table is
    checked to have them. Raises ValueError, naming the tables, when there is no table
    or a table lacks some of them (its ``segmentation_evaluate`` jobs need rerunning)."""
    if not tables:
        raise ValueError("F1 against image parameters: no evaluation tables")
    lacking = {
        f"{net}_{substrate}": [p for p in parameters if p not in t.columns]
        for (net, substrate), t in sorted(tables.items())
    }
    lacking = {name: missing for name, missing in lacking.items() if missing}
    if lacking:
        raise ValueError(
            "F1 against image parameters: evaluation tables without "
            + "; ".join(f"{name}: {', '.join(m)}" for name, m in lacking.items())
            + " (rerun their evaluation: snakemake -R segmentation_evaluate)"
        )
    return list(parameters)


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
    tables: Mapping[tuple[str, str], pd.DataFrame], parameters: Sequence[str], path: str | Path
) -> pd.DataFrame:
    """Write :func:`f1_correlations` over :func:`f1_parameters` as CSV (atomically) and
    return it."""
    table = f1_correlations(tables, f1_parameters(tables, parameters))
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return table
