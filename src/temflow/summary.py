"""The headline numbers of a workflow run, gathered into one table for the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from temflow.errors import TemflowError
from temflow.io import atomic_path

SUMMARY_COLUMNS = ["stage", "quantity", "value", "uncertainty", "n", "unit"]


def _read(path: str | Path, need: set[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise TemflowError(f"cannot read {path}: {err}") from err
    if not need <= set(df.columns):
        raise TemflowError(f"{path} lacks columns {sorted(need - set(df.columns))}")
    return df


def headline_table(
    vibrations_csv: str | Path | None = None,
    f1_summary_csv: str | Path | None = None,
    monet_summary_csv: str | Path | None = None,
) -> pd.DataFrame:
    """One row per headline number: sigma per element and coordination (MD), mean F1 per
    network and substrate (segmentation), MoNet accuracy and alpha MAE. Stages whose file
    is None are left out."""
    rows: list[dict] = []
    if vibrations_csv is not None:
        vib = _read(vibrations_csv, {"system", "element", "coordination", "sigma_xy", "sigma_z"})
        for r in vib.itertuples():
            for axis in ("xy", "z"):
                rows.append(
                    {
                        "stage": "MD",
                        "quantity": f"sigma_{axis} {r.element} CN{r.coordination} ({r.system})",
                        "value": getattr(r, f"sigma_{axis}"),
                        "uncertainty": getattr(r, f"sigma_{axis}_err", float("nan")),
                        "n": getattr(r, "n_atoms", float("nan")),
                        "unit": "A",
                    }
                )
    if f1_summary_csv is not None:
        f1 = _read(f1_summary_csv, {"network", "substrate", "mean_f1", "median_f1", "n_images"})
        for r in f1.itertuples():
            for stat in ("mean", "median"):
                rows.append(
                    {
                        "stage": "segmentation",
                        "quantity": f"{stat} F1 {r.network} {r.substrate}",
                        "value": getattr(r, f"{stat}_f1"),
                        "uncertainty": getattr(r, "std_f1", float("nan"))
                        if stat == "mean"
                        else float("nan"),
                        "n": r.n_images,
                        "unit": "",
                    }
                )
    if monet_summary_csv is not None:
        monet = _read(monet_summary_csv, {"metric", "value", "n"})
        for r in monet.itertuples():
            rows.append(
                {
                    "stage": "MoNet",
                    "quantity": r.metric,
                    "value": r.value,
                    "uncertainty": float("nan"),
                    "n": r.n,
                    "unit": "",
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def write_headline_table(table: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
