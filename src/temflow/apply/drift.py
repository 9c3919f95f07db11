"""Ensemble drift of one movie: stage drift and liquid flow move every particle together.

:func:`subtract_ensemble_drift` uses trackpy's ``compute_drift`` (the mean displacement,
between consecutive frames, of the particles seen in both, summed over frames; optionally
a forward rolling mean over ``smoothing_frames``) and subtracts it from every
localisation. A frame in which no particle is seen in the frame before keeps the drift of
the last frame that has one (trackpy's ``subtract_drift`` would subtract nothing there).
The mean motion of the particles themselves is removed with it: with ``N`` particles per
frame that is 1/N of their own MSD, so the correction needs many particles per frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from temflow.errors import TemflowError


def ensemble_drift(table: pd.DataFrame, smoothing_frames: int = 0) -> pd.DataFrame:
    """Drift ``x``, ``y`` per frame (index: every frame from the first to the last of
    ``table``, zero at the first) of a localisation table with columns track_id, frame,
    x, y."""
    import trackpy

    if smoothing_frames < 0:
        raise TemflowError(f"--drift-smoothing-frames: expected >= 0, got {smoothing_frames}")
    # trackpy tells particles apart by differencing its particle column: integer codes.
    codes = pd.factorize(table["track_id"])[0]
    traj = pd.DataFrame(
        {"x": table["x"].to_numpy(), "y": table["y"].to_numpy(), "frame": table["frame"]}
    )
    traj["particle"] = codes
    drift = trackpy.compute_drift(traj, smoothing=int(smoothing_frames), pos_columns=["x", "y"])
    frames = np.arange(int(table["frame"].min()), int(table["frame"].max()) + 1)
    out = drift.reindex(frames)
    out.iloc[0] = 0.0
    return out.ffill().rename_axis("frame")


def subtract_ensemble_drift(
    table: pd.DataFrame, smoothing_frames: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(table with the drift subtracted from x and y, the drift)``; the table keeps its
    rows, their order and its other columns. TemflowError when no particle is seen in two
    consecutive frames (no drift can be measured)."""
    drift = ensemble_drift(table, smoothing_frames)
    if len(drift) > 1 and drift.iloc[1:].isna().all().all():
        raise TemflowError("drift: no particle is seen in two consecutive frames")
    out = table.copy()
    for col in ("x", "y"):
        out[col] = table[col].to_numpy() - drift[col].reindex(table["frame"]).to_numpy()
    return out, drift
