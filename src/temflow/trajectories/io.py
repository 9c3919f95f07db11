"""Trajectory sets: generation from config parameters and HDF5 storage.

Data contract: ``results/trajectories/{set}.h5`` holds ``positions`` (N, L, 2) float32,
``label`` (N,) int8 (index into :data:`CLASSES`), ``alpha`` (N,) float64,
``diffusion`` (N,) float64 (per-axis D, length^2 per frame) and ``seed`` (N,) int64
(the set's seed, identical for every row); attributes: kind, classes, seed,
noise_step_std, waiting_time, software versions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from temflow.errors import TemflowError
from temflow.io import atomic_path, software_versions
from temflow.trajectories._checks import check_alpha, check_diffusion, check_length
from temflow.trajectories.blur import SUBSTEPS_PER_FRAME, exposure_average, exposure_samples
from temflow.trajectories.brownian import brownian
from temflow.trajectories.ctrw import ctrw
from temflow.trajectories.fbm import fbm

CLASSES: tuple[str, ...] = ("brownian", "fbm", "ctrw")
#: The generator parameters of the tracks beyond their class and length: what fresh
#: (resimulated) training tracks depend on.
GENERATOR_KEYS = (
    "fbm_alpha_range",
    "ctrw_alpha_range",
    "ctrw_waiting_time",
    "exposure_time_range_frames",
)
#: Tracks simulated at once with motion blur (its sub-steps multiply the memory).
BLUR_CHUNK = 256
KINDS = ("classify", "fbm", "ctrw")


@dataclass
class TrajectorySet:
    """A batch of trajectories with per-trajectory class, exponent and D."""

    positions: np.ndarray  # (N, L, 2)
    label: np.ndarray  # (N,) index into CLASSES
    alpha: np.ndarray  # (N,)
    diffusion: np.ndarray  # (N,)
    seed: int
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.positions.shape[0])


def _range(params: Mapping[str, Any], key: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in params[key])
    except (KeyError, TypeError, ValueError) as err:
        raise TemflowError(f"trajectories.{key}: expected [low, high]") from err
    if high < low:
        raise TemflowError(f"trajectories.{key}: expected low <= high, got [{low:g}, {high:g}]")
    return low, high


def exposure_range(params: Mapping[str, Any]) -> tuple[float, float]:
    """The exposure time range in frame times; [0, 0] (no motion blur) when absent."""
    if params.get("exposure_time_range_frames") is None:
        return 0.0, 0.0
    return _range(params, "exposure_time_range_frames")


def check_params(params: Mapping[str, Any]) -> None:
    """Validate the physical ranges of a ``trajectories`` config section."""
    check_length(params["length"], "trajectories.length")
    lo, hi = _range(params, "fbm_alpha_range")
    check_alpha(np.array([lo, hi]), 0.0, 2.0, False, "trajectories.fbm_alpha_range")
    lo, hi = _range(params, "ctrw_alpha_range")
    check_alpha(np.array([lo, hi]), 0.0, 1.0, True, "trajectories.ctrw_alpha_range")
    lo, hi = _range(params, "diffusion_range_px2_per_frame")
    check_diffusion(np.array([lo, hi]), "trajectories.diffusion_range_px2_per_frame")
    lo, hi = exposure_range(params)
    if not 0.0 <= lo <= hi <= 1.0:
        raise TemflowError(
            f"trajectories.exposure_time_range_frames: expected 0 <= low <= high <= 1 frame "
            f"time, got [{lo:g}, {hi:g}]"
        )
    noise = float(params.get("noise_step_std", 0.0))
    if not 0.0 <= noise <= 1.0:
        raise TemflowError(f"trajectories.noise_step_std: expected 0..1 step std, got {noise:g}")


def add_localisation_noise(
    positions: np.ndarray, diffusion: np.ndarray, step_std: float, rng: np.random.Generator
) -> np.ndarray:
    """Add Gaussian localisation noise of ``step_std`` x sqrt(2 D) to every frame."""
    if step_std <= 0:
        return positions
    scale = step_std * np.sqrt(2.0 * np.asarray(diffusion))[:, None, None]
    return positions + rng.standard_normal(positions.shape) * scale


def _simulate(
    name: str,
    n: int,
    length: int,
    alpha: np.ndarray,
    diffusion: np.ndarray,
    waiting: str,
    substeps: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n`` tracks of class ``name`` sampled ``substeps`` times per frame time:
    ``(n, length * substeps, 2)`` for ``substeps > 1`` (the process on the finer grid,
    with the same D and waiting times per frame time), ``(n, length, 2)`` for 1."""
    fine = length * substeps if substeps > 1 else length
    if name == "brownian":
        return brownian(n, fine, diffusion / substeps, rng)
    if name == "fbm":
        # MSD 2 D t^alpha on a grid of step 1/s: D per sub-step is D s^-alpha.
        return fbm(n, fine, alpha, diffusion * float(substeps) ** -alpha, rng)
    return ctrw(n, fine, alpha, diffusion, rng, waiting, wait_scale=float(substeps))


def simulate_process(
    name: str,
    alpha: np.ndarray,
    length: int,
    diffusion: np.ndarray,
    params: Mapping[str, Any],
    rng: np.random.Generator,
) -> np.ndarray:
    """Noiseless tracks ``(N, length, 2)`` of one class ``name`` with per-track ``alpha``
    (ignored for Brownian motion) and ``diffusion``; ``params['ctrw_waiting_time']``
    (default Mittag-Leffler) for CTRW.

    Motion blur (:mod:`temflow.trajectories.blur`) when
    ``params['exposure_time_range_frames']`` has a high end > 0: each track's exposure
    time is drawn uniformly from it and each frame is the mean position over it."""
    n = len(diffusion)
    waiting = params.get("ctrw_waiting_time", "mittag_leffler")
    t_lo, t_hi = exposure_range(params)
    if t_hi <= 0:
        return _simulate(name, n, length, alpha, diffusion, waiting, 1, rng)
    substeps = SUBSTEPS_PER_FRAME
    m = exposure_samples(rng.uniform(t_lo, t_hi, n), substeps)
    positions = np.empty((n, length, 2))
    for start in range(0, n, BLUR_CHUNK):
        part = slice(start, start + BLUR_CHUNK)
        fine = _simulate(
            name,
            len(diffusion[part]),
            length,
            alpha[part],
            diffusion[part],
            waiting,
            substeps,
            rng,
        )
        positions[part] = exposure_average(fine, m[part], substeps)
    return positions


def simulate_classes(
    label: np.ndarray,
    length: int,
    diffusion: np.ndarray,
    params: Mapping[str, Any],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Noiseless tracks ``(N, length, 2)`` of the classes ``label`` (indices into
    :data:`CLASSES`) with per-track ``diffusion``, and their alphas (N,): 1 for Brownian
    motion, uniform on ``params['fbm_alpha_range']`` / ``params['ctrw_alpha_range']``
    otherwise; simulated by :func:`simulate_process` (motion blur included)."""
    n = len(label)
    alpha = np.ones(n)
    positions = np.empty((n, length, 2))
    for cls, name in enumerate(CLASSES):
        sel = np.flatnonzero(label == cls)
        if sel.size == 0:
            continue
        if name != "brownian":
            lo, hi = _range(params, f"{name}_alpha_range")
            alpha[sel] = rng.uniform(lo, hi, sel.size)
        positions[sel] = simulate_process(name, alpha[sel], length, diffusion[sel], params, rng)
    return positions, alpha


def generate_set(
    kind: str, n: int, params: Mapping[str, Any], seed: int, noise_step_std: float | None = None
) -> TrajectorySet:
    """Generate ``n`` trajectories of ``kind`` (classify | fbm | ctrw) from config ``params``.

    ``classify`` is balanced over :data:`CLASSES` (counts differ by at most one) and
    shuffled; ``fbm`` / ``ctrw`` sets draw alpha uniformly from their ranges. D is drawn
    log-uniformly from ``diffusion_range_px2_per_frame``. ``noise_step_std`` overrides
    the config's localisation noise (in units of one step std).
    """
    if kind not in KINDS:
        raise TemflowError(f"trajectory set kind: expected one of {KINDS}, got {kind!r}")
    if n < 1:
        raise TemflowError(f"number of trajectories for {kind!r}: expected >= 1, got {n}")
    check_params(params)
    noise = float(params.get("noise_step_std", 0.0) if noise_step_std is None else noise_step_std)
    length = int(params["length"])
    rng = np.random.default_rng(seed)
    if kind == "classify":
        label = np.repeat(np.arange(3), [n // 3 + (i < n % 3) for i in range(3)])
        label = rng.permutation(label)
    else:
        label = np.full(n, CLASSES.index(kind))
    d_lo, d_hi = _range(params, "diffusion_range_px2_per_frame")
    diffusion = np.exp(rng.uniform(np.log(d_lo), np.log(d_hi), n))
    positions, alpha = simulate_classes(label, length, diffusion, params, rng)
    waiting = params.get("ctrw_waiting_time", "mittag_leffler")
    positions = add_localisation_noise(positions, diffusion, noise, rng)
    attrs = {"kind": kind, "noise_step_std": noise, "waiting_time": waiting, "length": length}
    attrs["exposure_time_range_frames"] = list(exposure_range(params))
    return TrajectorySet(positions, label, alpha, diffusion, int(seed), attrs)


def write_trajectories(path: str | Path, data: TrajectorySet) -> None:
    """Write a set to HDF5 (atomically) following the data contract."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("positions", data=data.positions.astype(np.float32), compression="gzip")
        f.create_dataset("label", data=data.label.astype(np.int8))
        f.create_dataset("alpha", data=data.alpha.astype(np.float64))
        f.create_dataset("diffusion", data=data.diffusion.astype(np.float64))
        f.create_dataset("seed", data=np.full(len(data), data.seed, dtype=np.int64))
        f.attrs["classes"] = json.dumps(list(CLASSES))
        f.attrs["seed"] = data.seed
        f.attrs["software_versions"] = json.dumps(software_versions())
        for key, value in data.attrs.items():
            f.attrs[key] = value


def read_trajectories(path: str | Path) -> TrajectorySet:
    """Read a set written by :func:`write_trajectories`."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise TemflowError(f"{path}: trajectory file not found")
    try:
        with h5py.File(path, "r") as f:
            classes = json.loads(f.attrs["classes"])
            if list(classes) != list(CLASSES):
                raise TemflowError(f"{path}: classes {classes}, expected {list(CLASSES)}")
            attrs = {k: f.attrs[k] for k in f.attrs if k not in ("classes", "software_versions")}
            return TrajectorySet(
                positions=f["positions"][()],
                label=f["label"][()].astype(np.int64),
                alpha=f["alpha"][()],
                diffusion=f["diffusion"][()],
                seed=int(f.attrs["seed"]),
                attrs=attrs,
            )
    except (OSError, KeyError) as err:
        raise TemflowError(f"{path}: not a temflow trajectory file ({err})") from err


def class_counts(label: Sequence[int] | np.ndarray) -> dict[str, int]:
    """Number of trajectories per class name."""
    label = np.asarray(label)
    return {name: int(np.sum(label == i)) for i, name in enumerate(CLASSES)}
