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
by the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from temflow.apply.tracks import TrackReport, cut_windows, read_tracks
from temflow.errors import TemflowError
from temflow.io import atomic_path
from temflow.models.monet import increments_and_std, noise_ratio, with_precision
from temflow.monet.card import load_monet
from temflow.monet.tasks import TASKS
from temflow.training import predict
from temflow.trajectories.io import CLASSES

log = logging.getLogger(__name__)

MODEL_TASKS = tuple(TASKS)
#: process -> the task that regresses its alpha
REGRESSOR_OF = {t.process: t.name for t in TASKS.values() if t.process}
TRACK_COLUMNS = (
    ["track_id", "status", "reason", "n_frames", "first_frame", "last_frame"]
    + ["n_gaps", "n_missing_frames", "n_duplicate_frames", "n_segments", "longest_segment"]
    + ["n_windows"]
    + [f"p_{c}" for c in CLASSES]
    + ["predicted_class", "alpha", "alpha_std", "window_agreement"]
)


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


def check_localisation_precision(monet: MoNetModels, precision: float | None) -> None:
    """A noise-aware network needs the localisation precision (>= 0, finite)."""
    if precision is not None and not (np.isfinite(precision) and precision >= 0):
        raise TemflowError(
            f"localisation precision: expected a finite value >= 0 (the localisation "
            f"error std in the units of x and y), got {precision!r}"
        )
    for task, model in monet.models.items():
        if getattr(model, "noise_input", False) and precision is None:
            raise TemflowError(
                f"{monet.paths[task]}: this network was trained with the localisation "
                "precision as an input; give it (--localisation-precision: the localisation "
                "error std, in the units of x and y)"
            )


def warn_inconsistent_precision(windows: torch.Tensor, precision: float) -> int:
    """Log a warning for windows whose given precision exceeds what their scatter allows.

    With localisation noise sigma the increments of each axis have std >= sqrt(2) sigma,
    so sigma / std(increments) > 1/sqrt(2) means the precision is overstated (or the
    particle is stuck); a noise-aware MoNet never saw such a ratio in training (it clips
    it at 1). Returns the number of such windows."""
    _, inc_std = increments_and_std(windows.double())
    sigma = torch.full(windows.shape[:2], float(precision), dtype=torch.float64)
    bad = int((noise_ratio(sigma, inc_std) > 2**-0.5).any(dim=1).sum())
    if bad:
        log.warning(
            "%d of %d windows: the localisation precision %g exceeds what the scatter of "
            "their positions allows (increment std / sqrt 2); it is overstated there, or "
            "the particle does not move",
            bad,
            len(windows),
            precision,
        )
    return bad


def _inputs(model: torch.nn.Module, x: torch.Tensor, precision: float | None) -> torch.Tensor:
    """Windows (N, L, 2), with the localisation-precision column for a noise-aware MoNet."""
    if not getattr(model, "noise_input", False):
        return x
    return with_precision(x, precision)


def classify_reports(
    reports: list[TrackReport],
    monet: MoNetModels,
    device: str = "auto",
    batch_size: int = 256,
    localisation_precision: float | None = None,
) -> ClassifyResult:
    """Run the three networks on every window and aggregate per track.

    ``localisation_precision``: localisation error std in the units of the positions;
    required by noise-aware networks (:func:`check_localisation_precision`)."""
    check_localisation_precision(monet, localisation_precision)
    windows = [w for r in reports for w in r.windows]
    n_cls = len(CLASSES)
    if windows:
        x = torch.from_numpy(np.stack([w.positions for w in windows]).astype(np.float32))

        def run(task: str) -> np.ndarray:
            model = monet.models[task]
            inputs = _inputs(model, x, localisation_precision)
            return predict(model, inputs, batch_size, device).numpy().astype(np.float64)

        if localisation_precision is not None and any(
            getattr(m, "noise_input", False) for m in monet.models.values()
        ):
            warn_inconsistent_precision(x, localisation_precision)
        probs = np.exp(run("classify"))
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
                "alpha": float(a.mean()),
                "alpha_std": float(a.std()),
                "window_agreement": float((pred[start : start + n] == k).mean()),
            }
        rows.append(row)
        start += n
    tracks = pd.DataFrame(rows).reindex(columns=TRACK_COLUMNS)
    return ClassifyResult(tracks, win, monet.length)


def classify_file(
    tracks_path: str | Path,
    monet: MoNetModels,
    stride: int | None = None,
    device: str = "auto",
    batch_size: int = 256,
    fmt: str | None = None,
    mat_variable: str | None = None,
    localisation_precision: float | None = None,
) -> ClassifyResult:
    """Read ``tracks_path``, cut windows of the models' length, classify.

    A file in which no track has a gap-free run of the trained length does not match the
    models: TemflowError naming both.
    """
    check_localisation_precision(monet, localisation_precision)
    table = read_tracks(tracks_path, fmt, mat_variable)
    reports = cut_windows(table, monet.length, stride)
    if not any(r.windows for r in reports):
        longest = max((r.longest_segment for r in reports if not r.n_duplicate_frames), default=0)
        raise TemflowError(
            f"{tracks_path}: no track can be classified: the models "
            f"({monet.paths['classify']}) were trained on {monet.length}-frame tracks and the "
            f"longest gap-free run without duplicate frames here is {longest} frames"
        )
    return classify_reports(reports, monet, device, batch_size, localisation_precision)


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
    gaps = int((t.n_gaps > 0).sum())
    dups = int((t.n_duplicate_frames > 0).sum())
    if gaps or dups:
        lines.append(
            f"  {gaps} track(s) with frame gaps (split there), "
            f"{dups} with duplicate frames (skipped)"
        )
    return lines
