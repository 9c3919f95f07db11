"""``temflow classify``: MoNet class and anomalous exponent for users' particle tracks.

Three trained networks are used: the classifier (brownian / fbm / ctrw) and the FBM and
CTRW alpha regressors (``results/models/monet_{classify,fbm_alpha,ctrw_alpha}.pt``). They
are loaded with :func:`temflow.monet.card.load_monet`, which checks each card; MoNet itself
normalises every axis of every window (see :mod:`temflow.models.monet`), so positions may
be in any unit (pixels, nm).

Each track is cut into windows of the trained length (:mod:`temflow.apply.tracks`). Per
window: class probabilities, the predicted class, and alpha from the regressor of that
class (Brownian: alpha = 1 by definition). Per track: the mean of its windows' probabilities,
the class with the highest mean probability, and alpha = the mean over the windows of the
prediction of that class's regressor (``alpha_std``: its spread over windows);
``window_agreement`` is the fraction of windows whose own class equals the track's.

A noise-aware network (card ``architecture.args.noise_input``, see
:class:`temflow.models.MoNet`) is also told the localisation precision: the std of the
localisation error, in the units of x and y (``localisation_precision``; temflow
classify ``--localisation-precision``). It is required for such a network and ignored
by the others. It is a number, a per-localisation column of the track file (trackpy's
``ep``), or estimated from the tracks (``auto``: one value pooled over the file;
``auto-track``: one per track) by the covariance-based estimator of
:mod:`temflow.trajectories.precision`, told the camera's exposure time; the per-track
CSV reports the value used (``localisation_precision``, the rms over the track's
frames).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from temflow.apply.conditions import track_groups
from temflow.apply.tracks import TrackReport, cut_windows, read_tracks
from temflow.errors import TemflowError
from temflow.evaluation.calibration import apply_temperature
from temflow.io import atomic_path
from temflow.models.monet import increments_and_std, noise_ratio
from temflow.monet.card import load_monet
from temflow.monet.evaluate import card_temperature
from temflow.monet.tasks import TASKS
from temflow.training import predict
from temflow.trajectories.io import CLASSES
from temflow.trajectories.precision import blur_coefficient, cve_moments, cve_variance

log = logging.getLogger(__name__)

MODEL_TASKS = tuple(TASKS)
#: process -> the task that regresses its alpha
REGRESSOR_OF = {t.process: t.name for t in TASKS.values() if t.process}
TRACK_COLUMNS = (
    ["track_id", "status", "reason", "n_frames", "first_frame", "last_frame"]
    + ["n_gaps", "n_missing_frames", "n_duplicate_frames", "n_segments", "longest_segment"]
    + ["n_windows"]
    + [f"p_{c}" for c in CLASSES]
    + ["predicted_class", "ambiguous", "alpha", "alpha_std", "window_agreement"]
    + ["localisation_precision"]
)
#: A track's call is ambiguous when its (calibrated) top probability is below this: the
#: classifier then expects more than 2 in 5 such calls to be wrong.
AMBIGUOUS_BELOW = 0.6
#: ``--localisation-precision`` values that estimate it from the tracks.
PRECISION_MODES = ("auto", "auto-track")


@dataclass(frozen=True)
class PrecisionSource:
    """Where ``temflow classify`` takes the localisation precision from: a ``value``, a
    ``column`` of the track file, or an estimate (``mode`` auto / auto-track) for a
    camera exposure of ``exposure_frames`` frame times."""

    value: float | None = None
    column: str | None = None
    mode: str | None = None
    exposure_frames: float = 0.0

    def describe(self) -> str:
        if self.value is not None:
            return f"{self.value:g} (given)"
        if self.column is not None:
            return f"column {self.column!r}"
        return f"{self.mode} (exposure {self.exposure_frames:g} frames)"


def parse_precision(
    text: str | float | None, exposure_frames: float = 0.0
) -> PrecisionSource | None:
    """``--localisation-precision``: a number, ``auto``, ``auto-track`` or a column name."""
    blur_coefficient(exposure_frames)  # 0..1 frame times, one clear error otherwise
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return PrecisionSource(value=float(text), exposure_frames=exposure_frames)
    if text in PRECISION_MODES:
        return PrecisionSource(mode=text, exposure_frames=exposure_frames)
    try:
        return PrecisionSource(value=float(text), exposure_frames=exposure_frames)
    except ValueError:
        return PrecisionSource(column=str(text), exposure_frames=exposure_frames)


@dataclass
class MoNetModels:
    """The three loaded networks, their cards and the common trained track length."""

    models: dict[str, torch.nn.Module]
    cards: dict[str, dict]
    paths: dict[str, Path]
    length: int


def default_model_paths(models_dir: str | Path) -> dict[str, Path]:
    """``{task: models_dir/monet_{task}.pt}`` for the three MoNet tasks."""
    return {task: Path(models_dir) / f"monet_{task}.pt" for task in MODEL_TASKS}


def load_monet_models(paths: dict[str, str | Path]) -> MoNetModels:
    """Load and check the classifier and both regressors; they must share one track length."""
    models, cards, lengths = {}, {}, {}
    for task in MODEL_TASKS:
        path = Path(paths[task])
        model, card = load_monet(path, task)
        length = card["input"]["length_frames"]
        models[task], cards[task], lengths[task] = model, card, length
    if len(set(lengths.values())) != 1:
        detail = ", ".join(f"{paths[t]}: {n}" for t, n in lengths.items())
        raise TemflowError(f"MoNet models were trained on different track lengths ({detail})")
    return MoNetModels(models, cards, {t: Path(p) for t, p in paths.items()}, lengths["classify"])


@dataclass
class ClassifyResult:
    tracks: pd.DataFrame  # one row per track (TRACK_COLUMNS)
    windows: pd.DataFrame  # one row per window
    length: int
    precision: PrecisionEstimate | None = None
    drift: pd.DataFrame | None = None  # the subtracted ensemble drift x, y per frame


def _as_source(precision: float | PrecisionSource | None) -> PrecisionSource | None:
    if precision is None or isinstance(precision, PrecisionSource):
        return precision
    return PrecisionSource(value=float(precision))


def check_localisation_precision(
    monet: MoNetModels, precision: float | PrecisionSource | None
) -> None:
    """A noise-aware network needs the localisation precision (a given one >= 0, finite)."""
    source = _as_source(precision)
    value = None if source is None else source.value
    if value is not None and not (np.isfinite(value) and value >= 0):
        raise TemflowError(
            f"localisation precision: expected a finite value >= 0 (the localisation "
            f"error std in the units of x and y), got {value!r}"
        )
    for task, model in monet.models.items():
        if getattr(model, "noise_input", False) and precision is None:
            raise TemflowError(
                f"{monet.paths[task]}: this network was trained with the localisation "
                "precision as an input; give it (--localisation-precision: the localisation "
                "error std, in the units of x and y)"
            )


def warn_inconsistent_precision(windows: torch.Tensor, precision: float | np.ndarray) -> int:
    """Log a warning for windows whose given precision exceeds what their scatter allows.

    With localisation noise sigma the increments of each axis have std >= sqrt(2) sigma,
    so sigma / std(increments) > 1/sqrt(2) means the precision is overstated (or the
    particle is stuck); a noise-aware MoNet never saw such a ratio in training (it clips
    it at 1). ``precision``: one value, or one per window and frame (N, L). Returns the
    number of such windows."""
    _, inc_std = increments_and_std(windows.double())
    sigma = torch.from_numpy(np.array(np.broadcast_to(precision, windows.shape[:2]), np.float64))
    shown = f"{float(precision):g}" if np.ndim(precision) == 0 else "given"
    bad = int((noise_ratio(sigma, inc_std) > 2**-0.5).any(dim=1).sum())
    if bad:
        log.warning(
            "%d of %d windows: the localisation precision %s exceeds what the scatter of "
            "their positions allows (increment std / sqrt 2); it is overstated there, or "
            "the particle does not move",
            bad,
            len(windows),
            shown,
        )
    return bad


def _inputs(model: torch.nn.Module, x: torch.Tensor, sigma: np.ndarray | None) -> torch.Tensor:
    """Windows (N, L, 2), with the localisation-precision column (``sigma`` (N, L)) for a
    noise-aware MoNet."""
    if not getattr(model, "noise_input", False):
        return x
    return torch.cat([x, torch.from_numpy(sigma.astype(np.float32))[..., None]], dim=-1)


@dataclass
class PrecisionEstimate:
    """The precision of every window and frame, and what it came from."""

    sigma: np.ndarray  # (N windows, L)
    source: PrecisionSource
    pooled: float | None = None  # the file's estimate (auto)
    negative_windows: int = 0  # windows whose own variance estimate was < 0


def window_precision(
    windows: np.ndarray,
    track_of_window: np.ndarray,
    source: PrecisionSource,
    columns: np.ndarray | None = None,
) -> PrecisionEstimate:
    """Per-window, per-frame precision ``(N, L)`` for windows ``(N, L, 2)``: the given
    value, the column values ``columns`` (N, L), or the covariance-based estimate pooled
    over all windows (``auto``) or over the windows of each track (``auto-track``, the
    track of each window in ``track_of_window``); a negative variance estimate gives 0."""
    n, length = windows.shape[:2]
    if source.value is not None:
        return PrecisionEstimate(np.full((n, length), source.value), source)
    if source.column is not None:
        if columns is None or columns.shape != (n, length):
            raise TemflowError(f"column {source.column!r}: no per-localisation values read")
        if np.any(columns < 0):
            raise TemflowError(
                f"column {source.column!r}: localisation precision must be >= 0, "
                f"got {columns.min():g}"
            )
        return PrecisionEstimate(columns.astype(np.float64), source)
    var = cve_variance(cve_moments(windows), source.exposure_frames)
    negative = int((var < 0).sum())
    if source.mode == "auto":
        pooled = float(np.sqrt(max(var.mean(), 0.0)))
        return PrecisionEstimate(np.full((n, length), pooled), source, pooled, negative)
    _, inverse = np.unique(track_of_window, return_inverse=True)
    per_track = np.bincount(inverse, var) / np.bincount(inverse)
    sigma = np.sqrt(np.clip(per_track[inverse], 0.0, None))
    return PrecisionEstimate(np.repeat(sigma[:, None], length, axis=1), source, None, negative)


def classify_reports(
    reports: list[TrackReport],
    monet: MoNetModels,
    device: str = "auto",
    batch_size: int = 256,
    localisation_precision: float | PrecisionSource | None = None,
) -> ClassifyResult:
    """Run the three networks on every window and aggregate per track.

    ``localisation_precision``: localisation error std in the units of the positions, or
    where to take it from (:class:`PrecisionSource`, :func:`window_precision`);
    required by noise-aware networks (:func:`check_localisation_precision`)."""
    check_localisation_precision(monet, localisation_precision)
    source = _as_source(localisation_precision)
    windows = [w for r in reports for w in r.windows]
    n_cls = len(CLASSES)
    estimate, sigma = None, None
    if windows:
        xy = np.stack([w.positions for w in windows])
        x = torch.from_numpy(xy.astype(np.float32))
        if source is not None:
            track_of = np.repeat(np.arange(len(reports)), [len(r.windows) for r in reports])
            columns = None
            if source.column is not None:
                columns = np.stack([w.precision for w in windows])
            estimate = window_precision(xy, track_of, source, columns)
            sigma = estimate.sigma
            if estimate.negative_windows:
                log.warning(
                    "%d of %d windows: the precision estimate of the window alone is "
                    "negative (too few frames, or not Brownian at short lags)",
                    estimate.negative_windows,
                    len(windows),
                )

        def run(task: str) -> np.ndarray:
            model = monet.models[task]
            inputs = _inputs(model, x, sigma)
            return predict(model, inputs, batch_size, device).numpy().astype(np.float64)

        if sigma is not None and any(
            getattr(m, "noise_input", False) for m in monet.models.values()
        ):
            warn_inconsistent_precision(x, source.value if source.value is not None else sigma)
        probs = apply_temperature(run("classify"), card_temperature(monet.cards["classify"]))
        alphas = {name: run(task) for name, task in REGRESSOR_OF.items()}
    else:
        probs, alphas = np.zeros((0, n_cls)), {name: np.zeros(0) for name in REGRESSOR_OF}
    alphas["brownian"] = np.ones(len(windows))
    pred = probs.argmax(1) if len(windows) else np.zeros(0, dtype=int)
    win = pd.DataFrame(
        {
            "track_id": [w.track_id for w in windows],
            "segment": [w.segment for w in windows],
            "window": [w.index for w in windows],
            "frame_start": [w.frame_start for w in windows],
            "frame_end": [w.frame_end for w in windows],
        }
    )
    for i, name in enumerate(CLASSES):
        win[f"p_{name}"] = probs[:, i]
    win["predicted_class"] = [CLASSES[k] for k in pred]
    win["alpha"] = np.array([alphas[CLASSES[k]][j] for j, k in enumerate(pred)])
    for name in REGRESSOR_OF:
        win[f"alpha_{name}_regressor"] = alphas[name]

    rows: list[dict[str, Any]] = []
    start = 0
    for rep in reports:
        n = len(rep.windows)
        row: dict[str, Any] = {
            "track_id": rep.track_id,
            "status": rep.status,
            "reason": rep.reason,
            "n_frames": rep.n_frames,
            "first_frame": rep.first_frame,
            "last_frame": rep.last_frame,
            "n_gaps": rep.n_gaps,
            "n_missing_frames": rep.n_missing_frames,
            "n_duplicate_frames": rep.n_duplicate_frames,
            "n_segments": rep.n_segments,
            "longest_segment": rep.longest_segment,
            "n_windows": n,
        }
        if n:
            p = probs[start : start + n].mean(0)
            k = int(p.argmax())
            a = alphas[CLASSES[k]][start : start + n]
            row |= {f"p_{c}": float(p[i]) for i, c in enumerate(CLASSES)}
            row |= {
                "predicted_class": CLASSES[k],
                "ambiguous": bool(p[k] < AMBIGUOUS_BELOW),
                "alpha": float(a.mean()),
                "alpha_std": float(a.std()),
                "window_agreement": float((pred[start : start + n] == k).mean()),
            }
            if sigma is not None:
                rms = np.sqrt(np.mean(sigma[start : start + n] ** 2))
                row["localisation_precision"] = float(rms)
        rows.append(row)
        start += n
    tracks = pd.DataFrame(rows).reindex(columns=TRACK_COLUMNS)
    if sigma is not None:
        win["localisation_precision"] = np.sqrt(np.mean(sigma**2, axis=1))
    return ClassifyResult(tracks, win, monet.length, estimate)


def classify_file(
    tracks_path: str | Path,
    monet: MoNetModels,
    stride: int | None = None,
    device: str = "auto",
    batch_size: int = 256,
    fmt: str | None = None,
    mat_variable: str | None = None,
    localisation_precision: float | PrecisionSource | None = None,
    group_by: str | None = None,
    subtract_drift: bool = False,
    drift_smoothing_frames: int = 0,
) -> ClassifyResult:
    """Read ``tracks_path``, cut windows of the models' length, classify.

    ``group_by``: a column of the file that holds each track's condition; it is added to
    the per-track table (:func:`temflow.apply.conditions.track_groups`).
    ``subtract_drift``: remove the file's ensemble drift first
    (:func:`temflow.apply.drift.subtract_ensemble_drift`; it is kept in the result).

    A file in which no track has a gap-free run of the trained length does not match the
    models: TemflowError naming both.
    """
    check_localisation_precision(monet, localisation_precision)
    source = _as_source(localisation_precision)
    column = None if source is None else source.column
    extra = () if column is None else (column,)
    table = read_tracks(tracks_path, fmt, mat_variable, extra, group_by)
    groups = None if group_by is None else track_groups(table, group_by, str(tracks_path))
    drift = None
    if subtract_drift:
        from temflow.apply.drift import subtract_ensemble_drift

        table, drift = subtract_ensemble_drift(table, drift_smoothing_frames)
    reports = cut_windows(table, monet.length, stride, column)
    if not any(r.windows for r in reports):
        longest = max((r.longest_segment for r in reports if not r.n_duplicate_frames), default=0)
        raise TemflowError(
            f"{tracks_path}: no track can be classified: the models "
            f"({monet.paths['classify']}) were trained on {monet.length}-frame tracks and the "
            f"longest gap-free run without duplicate frames here is {longest} frames"
        )
    result = classify_reports(reports, monet, device, batch_size, localisation_precision)
    result.drift = drift
    if groups is not None:
        result.tracks.insert(1, group_by, groups.loc[result.tracks.track_id].to_numpy())
    return result


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def summary_lines(result: ClassifyResult) -> list[str]:
    """Human-readable summary (printed by the CLI)."""
    t = result.tracks
    done = t[t.status == "classified"]
    lines = [
        f"{len(done)} of {len(t)} tracks classified over {len(result.windows)} windows of "
        f"{result.length} frames; {len(t) - len(done)} skipped"
    ]
    for name in CLASSES:
        sel = done[done.predicted_class == name]
        if len(sel):
            lines.append(
                f"  {name:9s} {len(sel):5d} ({len(sel) / len(done):.0%})  "
                f"median alpha {sel.alpha.median():.2f}"
            )
    est = result.precision
    if est is not None:
        used = done.localisation_precision
        line = f"  localisation precision: {est.source.describe()}"
        if est.pooled is not None:
            line += f", estimated {est.pooled:.4g} (pooled over {len(result.windows)} windows)"
        elif len(used):
            line += (
                f", per track median {used.median():.4g} (range {used.min():.4g}-{used.max():.4g})"
            )
        lines.append(line)
    if result.drift is not None:
        d = result.drift
        end = d.iloc[-1]
        lines.append(
            f"  ensemble drift subtracted over {len(d)} frames: net ({end.x:.4g}, {end.y:.4g}), "
            f"largest |drift| {float(np.hypot(d.x, d.y).max()):.4g} (units of x and y)"
        )
    gaps = int((t.n_gaps > 0).sum())
    dups = int((t.n_duplicate_frames > 0).sum())
    if gaps or dups:
        lines.append(
            f"  {gaps} track(s) with frame gaps (split there), "
            f"{dups} with duplicate frames (skipped)"
        )
    return lines
