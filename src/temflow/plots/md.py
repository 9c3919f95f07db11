"""MD figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from temflow.plots import save_figure

SYSTEM_LABELS = {
    "mos2_sheet": "MoS$_2$ sheet",
    "mos2_flake": "MoS$_2$ flake",
    "graphene": "graphene",
}


def plot_vibrations(table: pd.DataFrame, path: str | Path, dpi: int = 150) -> None:
    """sigma_xy and sigma_z against coordination, one panel per element, one series per
    system, error bars = std over independent runs."""
    elements = sorted(table["element"].unique())
    fig, axes = plt.subplots(
        2, len(elements), figsize=(3.6 * len(elements), 6.0), squeeze=False, sharex="col"
    )
    markers = dict(zip(SYSTEM_LABELS, "osD", strict=True))
    for col, element in enumerate(elements):
        sub = table[table["element"] == element]
        for row, (key, label) in enumerate(
            (("sigma_xy", "in-plane $\\sigma_{xy}$"), ("sigma_z", "out-of-plane $\\sigma_z$"))
        ):
            ax = axes[row, col]
            for k, (system, s) in enumerate(sub.groupby("system")):
                s = s.sort_values("coordination")
                offset = 0.08 * (k - 1)  # keeps error bars of different systems apart
                ax.errorbar(
                    s["coordination"] + offset,
                    s[key],
                    yerr=s[f"{key}_err"],
                    marker=markers.get(system, "o"),
                    capsize=3,
                    linestyle="-",
                    label=SYSTEM_LABELS.get(system, system),
                )
            ax.set_ylabel(f"{label} (Å)")
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(element)
            else:
                ax.set_xlabel("coordination number")
            cns = np.sort(sub["coordination"].unique())
            ax.set_xticks(cns)
        axes[0, col].legend(fontsize=8)
    temperature = table["temperature_K"].iloc[0]
    fig.suptitle(f"Thermal vibration amplitudes from asap3 Langevin MD at {temperature:g} K")
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)
