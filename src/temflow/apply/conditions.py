"""Class fractions per condition: several track files, or a grouping column.

A user classifies tracks recorded under several conditions (dose rate, temperature,
liquid). The condition of a track is its file (``group = file name``) or the value of a
column of the track file (``--group-by COLUMN``, constant along a track). Per group:
the number of classified tracks, per class the count, the fraction with its 95 % Wilson
score interval (:func:`scipy.stats.binomtest`) and the quartiles of alpha; the alphas
themselves are in the per-track table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from temflow.errors import TemflowError
from temflow.trajectories.io import CLASSES

#: Confidence level of the class-fraction intervals.
CONFIDENCE = 0.95


def track_groups(table: pd.DataFrame, column: str, source: str) -> pd.Series:
    """The value of ``column`` for each track of a localisation ``table`` (indexed by
    track id); TemflowError naming ``source`` when the column is absent, empty somewhere
    or changes along a track."""
    if column not in table.columns:
        raise TemflowError(
            f"{source}: no column {column!r} to group by; found {list(table.columns)}"
        )
    if table[column].isna().any():
        raise TemflowError(f"{source}: column {column!r} is empty for some localisations")
    per_track = table.groupby("track_id", sort=False)[column]
    varying = per_track.nunique() > 1
    if varying.any():
        tid = varying.index[varying.to_numpy()][0]
        tid = tid.item() if isinstance(tid, np.generic) else tid
        raise TemflowError(
            f"{source}: column {column!r} changes along track {tid!r}; a group is one "
            "condition per track"
        )
    return per_track.first()


def _sort_key(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    return numeric if numeric.notna().all() else values.astype(str)


def group_fractions(tracks: pd.DataFrame, group: str = "group") -> pd.DataFrame:
    """One row per group of the per-track table ``tracks`` (columns ``group``, ``status``,
    ``predicted_class``, ``alpha``), sorted by group (numerically when every value is a
    number): ``n_classified``, and per class ``n_{c}``, ``fraction_{c}``,
    ``fraction_{c}_low`` / ``_high`` (Wilson interval) and ``alpha_{c}_q25`` / ``median``
    / ``q75``. TemflowError for a group without any classified track."""
    rows = []
    for value, sel in tracks.groupby(group, sort=False):
        done = sel[sel.status == "classified"]
        if done.empty:
            raise TemflowError(
                f"group {value!r}: none of its {len(sel)} track(s) could be classified "
                f"(e.g. {sel.reason.iloc[0]})"
            )
        row = {group: value, "n_tracks": len(sel), "n_classified": len(done)}
        for c in CLASSES:
            k = int((done.predicted_class == c).sum())
            ci = binomtest(k, len(done)).proportion_ci(CONFIDENCE, method="wilson")
            alpha = done.loc[done.predicted_class == c, "alpha"].to_numpy()
            q = np.quantile(alpha, [0.25, 0.5, 0.75]) if len(alpha) else [np.nan] * 3
            row |= {f"n_{c}": k, f"fraction_{c}": k / len(done)}
            row |= {f"fraction_{c}_low": ci.low, f"fraction_{c}_high": ci.high}
            row |= {f"alpha_{c}_q25": q[0], f"alpha_{c}_median": q[1], f"alpha_{c}_q75": q[2]}
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.sort_values(group, key=_sort_key, kind="stable").reset_index(drop=True)
