"""Reading users' particle tracks and cutting them into windows of the model's length.

Formats (chosen by the file suffix unless ``fmt`` is given):

* CSV (``.csv``, ``.txt``, ``.tsv``) and Parquet (``.parquet``, ``.pq``): one row per
  localisation with columns ``track_id``, ``frame``, ``x``, ``y``. trackpy's ``particle``
  is accepted for ``track_id`` as it is; other columns are ignored. Parquet needs pyarrow
  (``pip install 'temflow[io]'``).
* MATLAB ``.mat``: a numeric array (n, >= 3) with columns x, y, id as the MoNet reference
  code uses; an optional fourth column is the frame. Without a frame column the rows of one
  id are taken as consecutive frames in file order (gaps cannot be seen then). The array is
  the file's only numeric 2-D variable with >= 3 columns, or the one named by
  ``mat_variable``.

Gaps and duplicates (reported, never interpolated): a track is sorted by frame; a frame
that occurs more than once makes the whole track ``skipped`` (which localisation is the
particle cannot be decided); a gap (missing frames) splits the track into gap-free
segments, and windows never span a gap. A segment shorter than the model length is not
used; a track with no segment long enough is ``skipped`` with the reason.

Windows: a segment of ``n >= L`` frames gives windows of ``L`` frames starting at
``0, stride, 2 stride, ...``; when the last one ends before the segment does, one more
window ending on the segment's last frame is added, so every frame is classified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from temflow.errors import TemflowError

TRACK_COLUMNS = ("track_id", "frame", "x", "y")
ID_ALIASES = ("track_id", "particle")  # trackpy calls it ``particle``
TABLE_SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet"}
TABLE_SUFFIXES |= {".pq": "parquet", ".mat": "mat"}


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt and fmt != "auto":
        if fmt not in ("csv", "parquet", "mat"):
            raise TemflowError(f"track format: expected auto, csv, parquet or mat, got {fmt!r}")
        return fmt
    try:
        return TABLE_SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise TemflowError(
            f"{path}: unknown track file type {path.suffix!r}; expected one of "
            f"{sorted(TABLE_SUFFIXES)} (or pass the format explicitly)"
        ) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise TemflowError(
            f"{path}: reading Parquet needs pyarrow, which is not installed "
            "(pip install 'temflow[io]' or pyarrow)"
        ) from None
    return pd.read_parquet(path)


def _read_mat(path: Path, variable: str | None) -> pd.DataFrame:
    from scipy.io import loadmat

    data = loadmat(path)
    arrays = {
        k: np.asarray(v)
        for k, v in data.items()
        if not k.startswith("__")
        and isinstance(v, np.ndarray)
        and v.ndim == 2
        and np.issubdtype(v.dtype, np.number)
        and v.shape[1] >= 3
    }
    if variable is not None:
        if variable not in data:
            raise TemflowError(f"{path}: no variable {variable!r}; it has {sorted(data)}")
        if variable not in arrays:
            raise TemflowError(
                f"{path}: variable {variable!r} is not a numeric (n, >= 3) array "
                "with columns x, y, id[, frame]"
            )
        arr = arrays[variable]
    elif len(arrays) == 1:
        arr = next(iter(arrays.values()))
    elif not arrays:
        raise TemflowError(
            f"{path}: no numeric (n, >= 3) array with columns x, y, id[, frame] in the file"
        )
    else:
        raise TemflowError(
            f"{path}: several track arrays {sorted(arrays)}; name one with --mat-variable"
        )
    frame = pd.DataFrame({"x": arr[:, 0], "y": arr[:, 1], "track_id": arr[:, 2]})
    ids = frame["track_id"]
    if np.isfinite(ids).all() and (ids == np.round(ids)).all():
        frame["track_id"] = ids.astype(np.int64)
    if arr.shape[1] >= 4:
        frame["frame"] = arr[:, 3]
    else:
        frame["frame"] = frame.groupby("track_id", sort=False).cumcount()
    return frame


def read_tracks(
    path: str | Path,
    fmt: str | None = None,
    mat_variable: str | None = None,
    extra_columns: tuple[str, ...] = (),
    group_column: str | None = None,
) -> pd.DataFrame:
    """Read a track file into a DataFrame with columns track_id, frame (int), x, y (float),
    the numeric ``extra_columns`` (e.g. trackpy's per-localisation precision ``ep``) and
    ``group_column`` as it is (a condition: dose rate, liquid).

    Raises TemflowError naming the file for an unreadable or empty file, missing columns,
    non-integer frames and NaN or infinite positions or extra values.
    """
    path = Path(path)
    if not path.is_file():
        raise TemflowError(f"{path}: track file not found")
    if path.stat().st_size == 0:
        raise TemflowError(f"{path}: file is empty")
    kind = _format_of(path, fmt)
    try:
        if kind == "csv":
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            raw = pd.read_csv(path, sep=sep)
        elif kind == "parquet":
            raw = _read_parquet(path)
        else:
            raw = _read_mat(path, mat_variable)
    except TemflowError:
        raise
    except Exception as err:  # noqa: BLE001 - any parse failure is a bad file
        raise TemflowError(f"{path}: cannot read as {kind}: {err}") from err
    raw.columns = [str(c).strip() for c in raw.columns]
    id_col = next((c for c in ID_ALIASES if c in raw.columns), None)
    missing = [c for c in ("frame", "x", "y") if c not in raw.columns]
    if id_col is None:
        missing.insert(0, "track_id (or particle)")
    if missing:
        raise TemflowError(
            f"{path}: missing column(s) {', '.join(missing)}; expected track_id (or "
            f"trackpy's particle), frame, x, y; found {list(raw.columns)}"
        )
    if group_column is not None and group_column not in raw.columns:
        raise TemflowError(
            f"{path}: no column {group_column!r} to group by; found {list(raw.columns)}"
        )
    absent = [c for c in extra_columns if c not in raw.columns]
    if absent:
        raise TemflowError(
            f"{path}: no column {', '.join(map(repr, absent))} (asked for as a "
            f"per-localisation value); found {list(raw.columns)}"
        )
    if raw.empty:
        raise TemflowError(f"{path}: no rows (file has a header but no tracks)")
    out = pd.DataFrame({"track_id": raw[id_col].to_numpy()})
    for col in ("x", "y", "frame", *extra_columns):
        values = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise TemflowError(
                f"{path}: column {col!r} has {int(bad.sum())} NaN, infinite or non-numeric "
                f"value(s) (first at data row {row}, track {raw[id_col].iloc[row]!r})"
            )
        out[col] = values
    if group_column is not None:
        out[group_column] = raw[group_column].to_numpy()
    if (out["frame"] != np.round(out["frame"])).any():
        raise TemflowError(f"{path}: column 'frame' must hold whole frame numbers")
    out["frame"] = out["frame"].astype(np.int64)
    if out["track_id"].isna().any():
        raise TemflowError(f"{path}: column {id_col!r} has empty track ids")
    return out


@dataclass
class Window:
    """One window of ``L`` consecutive frames of a track."""

    track_id: Any
    segment: int
    index: int  # window number within the track
    frame_start: int
    frame_end: int  # inclusive
    positions: np.ndarray  # (L, 2)
    precision: np.ndarray | None = None  # (L,) per-localisation error std, if read


@dataclass
class TrackReport:
    """What happened to one track: its windows, gaps, duplicates, or why it was skipped."""

    track_id: Any
    n_frames: int  # localisations
    first_frame: int
    last_frame: int
    n_gaps: int = 0
    n_missing_frames: int = 0
    n_duplicate_frames: int = 0
    n_segments: int = 0
    longest_segment: int = 0
    windows: list[Window] = field(default_factory=list)
    reason: str = ""

    @property
    def status(self) -> str:
        return "classified" if self.windows else "skipped"


def window_starts(n: int, length: int, stride: int) -> list[int]:
    """Start indices of windows of ``length`` in ``n`` frames (last one flush with the end)."""
    if n < length:
        return []
    starts = list(range(0, n - length + 1, stride))
    if starts[-1] + length < n:
        starts.append(n - length)
    return starts


def cut_windows(
    tracks: pd.DataFrame,
    length: int,
    stride: int | None = None,
    precision_column: str | None = None,
) -> list[TrackReport]:
    """Split every track into gap-free segments and windows of ``length`` frames.

    See the module docstring for the rules; one :class:`TrackReport` per track, in order
    of first appearance in the file. ``precision_column``: each window also carries that
    column's values (:attr:`Window.precision`).
    """
    if length < 2:
        raise TemflowError(f"window length: expected >= 2 frames, got {length}")
    stride = length if stride is None else int(stride)
    if stride < 1:
        raise TemflowError(f"--stride: expected >= 1 frame, got {stride}")
    reports = []
    for track_id, group in tracks.groupby("track_id", sort=False):
        g = group.sort_values("frame", kind="stable")
        frames = g["frame"].to_numpy()
        xy = g[["x", "y"]].to_numpy(dtype=np.float64)
        ep = None if precision_column is None else g[precision_column].to_numpy(np.float64)
        rep = TrackReport(track_id, len(frames), int(frames[0]), int(frames[-1]))
        step = np.diff(frames)
        dup = step == 0
        rep.n_duplicate_frames = int(dup.sum())
        gaps = step > 1
        rep.n_gaps = int(gaps.sum())
        rep.n_missing_frames = int((step[gaps] - 1).sum())
        bounds = np.concatenate([[0], np.flatnonzero(gaps) + 1, [len(frames)]])
        seg_lengths = np.diff(bounds)
        rep.n_segments = len(seg_lengths)
        rep.longest_segment = int(seg_lengths.max())
        if rep.n_duplicate_frames:
            shown = ", ".join(str(int(f)) for f in np.unique(frames[1:][dup])[:5])
            rep.reason = f"duplicate frames ({rep.n_duplicate_frames}; e.g. frame {shown})"
            reports.append(rep)
            continue
        for seg, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            for start in window_starts(int(b - a), length, stride):
                i = int(a) + start
                rep.windows.append(
                    Window(
                        track_id,
                        seg,
                        len(rep.windows),
                        int(frames[i]),
                        int(frames[i + length - 1]),
                        xy[i : i + length],
                        None if ep is None else ep[i : i + length],
                    )
                )
        if not rep.windows:
            where = f" between {rep.n_gaps} gap(s)" if rep.n_gaps else ""
            rep.reason = (
                f"too short: longest gap-free run is {rep.longest_segment} frames{where}, "
                f"the model needs {length}"
            )
        reports.append(rep)
    return reports
