"""Vibration tables: per-run group statistics, aggregation over runs, per-atom lookup."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from temflow.errors import TemflowError

log = logging.getLogger(__name__)

#: (element, coordination, nearest) fallbacks already logged by :func:`lookup_sigmas` in
#: this process (one line each, not one per image).
_REPORTED_FALLBACKS: set[tuple[str, int, int]] = set()

RUN_COLUMNS = [
    "system",
    "run",
    "element",
    "coordination",
    "sigma_xy",
    "sigma_z",
    "n_atoms",
    "n_frames",
    "temperature_K",
    "atom_steps_per_s",
]
TABLE_COLUMNS = [
    "system",
    "element",
    "coordination",
    "sigma_xy",
    "sigma_z",
    "sigma_xy_err",
    "sigma_z_err",
    "n_runs",
    "n_atoms",
    "n_frames",
    "temperature_K",
]


def group_by_environment(
    system: str,
    run: int,
    symbols: Sequence[str],
    coordination: np.ndarray,
    sigma_xy_A: np.ndarray,
    sigma_z_A: np.ndarray,
    n_frames: int,
    temperature_K: float,
    atom_steps_per_s: float,
) -> pd.DataFrame:
    """Mean per-atom sigma (A, per Cartesian direction) for each (element, coordination)."""
    df = pd.DataFrame(
        {
            "element": np.asarray(symbols),
            "coordination": np.asarray(coordination, dtype=int),
            "sigma_xy": sigma_xy_A,
            "sigma_z": sigma_z_A,
        }
    )
    g = df.groupby(["element", "coordination"], sort=True)
    out = g[["sigma_xy", "sigma_z"]].mean()
    out["n_atoms"] = g.size()
    out = out.reset_index()
    out.insert(0, "run", run)
    out.insert(0, "system", system)
    out["n_frames"] = n_frames
    out["temperature_K"] = temperature_K
    out["atom_steps_per_s"] = atom_steps_per_s
    return out[RUN_COLUMNS]


def aggregate_runs(runs: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Combine per-run tables: mean over runs, error = std over runs (0 for one run)."""
    if not runs:
        raise TemflowError("no MD runs to aggregate")
    df = pd.concat(runs, ignore_index=True)
    missing = set(RUN_COLUMNS) - set(df.columns)
    if missing:
        raise TemflowError(f"MD run table lacks columns {sorted(missing)}")
    temps = df["temperature_K"].unique()
    if len(temps) != 1:
        raise TemflowError(f"MD runs at different temperatures cannot be combined: {temps}")
    g = df.groupby(["system", "element", "coordination"], sort=True)
    out = g[["sigma_xy", "sigma_z"]].mean()
    err = g[["sigma_xy", "sigma_z"]].std(ddof=1).fillna(0.0)
    out["sigma_xy_err"] = err["sigma_xy"]
    out["sigma_z_err"] = err["sigma_z"]
    out["n_runs"] = g["run"].nunique()
    out["n_atoms"] = g["n_atoms"].sum()
    out["n_frames"] = g["n_frames"].sum()
    out["temperature_K"] = temps[0]
    return out.reset_index()[TABLE_COLUMNS]


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write a table with fixed float formatting (byte-identical for identical numbers)."""
    from temflow.io import atomic_path

    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def read_vibrations(path: str | Path) -> pd.DataFrame:
    """Read ``vibrations.csv``; raise TemflowError naming the file if it is unusable."""
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise TemflowError(f"cannot read vibration table {path}: {err}") from err
    need = {"element", "coordination", "sigma_xy", "sigma_z", "n_atoms"}
    if not need <= set(df.columns):
        raise TemflowError(f"vibration table {path} lacks columns {sorted(need - set(df.columns))}")
    return df


def lookup_sigmas(
    table: pd.DataFrame,
    symbols: Sequence[str],
    coordination: np.ndarray,
    systems: Sequence[str] | None = None,
) -> np.ndarray:
    """Per-atom anisotropic sigmas (N, 3) = (sigma_xy, sigma_xy, sigma_z) in A.

    Entries of the same element and coordination are averaged over ``systems`` (all by
    default), weighted by atom count. A coordination the table lacks falls back to the
    nearest one of that element (ties: the higher; logged once per process for each
    (element, coordination -> nearest)); an element it lacks is an error.
    """
    t = table if systems is None else table[table["system"].isin(systems)]
    w = t.assign(wxy=t.sigma_xy * t.n_atoms, wz=t.sigma_z * t.n_atoms)
    g = w.groupby(["element", "coordination"])[["wxy", "wz", "n_atoms"]].sum()
    sig = {key: (row.wxy / row.n_atoms, row.wz / row.n_atoms) for key, row in g.iterrows()}
    by_element: dict[str, list[int]] = {}
    for element, cn in sig:
        by_element.setdefault(element, [])
        by_element[element].append(cn)
    out = np.empty((len(symbols), 3))
    for i, (element, cn) in enumerate(zip(symbols, np.asarray(coordination), strict=True)):
        if element not in by_element:
            raise TemflowError(f"vibration table has no entry for element {element!r}")
        key = (element, int(cn))
        if key not in sig:
            # Ties go to the higher (more bulk-like) coordination.
            known = np.sort(np.asarray(by_element[element]))[::-1]
            nearest = int(known[np.argmin(np.abs(known - cn))])
            if (element, int(cn), nearest) not in _REPORTED_FALLBACKS:
                log.info(
                    "no sigma for %s with coordination %d; using coordination %d",
                    element,
                    cn,
                    nearest,
                )
                _REPORTED_FALLBACKS.add((element, int(cn), nearest))
            key = (element, nearest)
        sxy, sz = sig[key]
        out[i] = (sxy, sxy, sz)
    return out
