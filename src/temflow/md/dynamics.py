"""Langevin molecular dynamics with asap3 and per-atom vibration statistics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.optimize import FIRE

from temflow.errors import TemflowError

log = logging.getLogger(__name__)

#: KIM model for MoS2 (Stillinger-Weber, Wen, Shirodkar, Plechac 2017), Debian openkim-models.
MOS2_KIM_MODEL = "SW_MX2_WenShirodkarPlechac_2017_MoS__MO_201919462778_001"


def check_kim_model(name: str) -> None:
    """Raise TemflowError unless asap3 has OpenKIM and the KIM model ``name`` is installed."""
    import asap3

    if not asap3.OpenKIMsupported:
        raise TemflowError("asap3 was built without OpenKIM support; rerun scripts/setup.sh")
    try:
        asap3.OpenKIMcalculator(name)
    except Exception as err:  # asap3 raises a bare RuntimeError/AsapError
        raise TemflowError(
            f"KIM model {name!r} is not installed or cannot be loaded ({err}); "
            "install Debian 'openkim-models' or the model with kim-api-collections-management"
        ) from err


def make_calculator(atoms: Atoms, kim_model: str = MOS2_KIM_MODEL):
    """asap3 calculator for ``atoms``: Brenner for pure carbon, the KIM model otherwise."""
    import asap3

    elements = set(atoms.get_chemical_symbols())
    if elements <= {"C", "H"}:
        return asap3.BrennerPotential()
    if elements <= {"Mo", "S"}:
        check_kim_model(kim_model)
        return asap3.OpenKIMcalculator(kim_model)
    raise TemflowError(f"no asap3 potential configured for elements {sorted(elements)}")


@dataclass
class VibrationStats:
    """Per-atom thermal displacement statistics from an MD run.

    ``sigma_A[:, k]`` is the standard deviation of atom positions about their mean along
    Cartesian direction k (x, y, z), centre-of-mass drift removed, periodic images unwrapped.
    """

    sigma_A: np.ndarray  # (N, 3)
    n_frames: int
    atom_steps_per_s: float
    #: (T, N, 3) float32 velocities every ``velocity_interval_fs`` (ASE units; only their
    #: spectrum is used, :func:`temflow.md.vibrations.zero_point_factors`)
    velocities: np.ndarray | None = None
    velocity_interval_fs: float | None = None

    @property
    def sigma_xy_A(self) -> np.ndarray:
        """In-plane std per Cartesian direction: sqrt of the mean of the x and y variances."""
        return np.sqrt(0.5 * (self.sigma_A[:, 0] ** 2 + self.sigma_A[:, 1] ** 2))

    @property
    def sigma_z_A(self) -> np.ndarray:
        return self.sigma_A[:, 2]


#: Nyquist wavenumber the velocity sampling must reach, 1/cm. Far above graphene's highest
#: mode (about 1600 cm^-1): under the Langevin thermostat every mode is a Lorentzian of
#: width ~friction, and a coarser sampling folds its tail onto low frequencies, where the
#: 1/omega^2 weight makes it count. Graphene's in-plane factor at 10, 4, 2 and 1 fs:
#: 1.04, 1.15, 1.22, 1.25 (docs/2026-12-02-focal-series-and-zero-point.md).
MAX_WAVENUMBER_PER_CM = 16000.0


def velocity_interval(timestep_fs: float) -> int:
    """MD steps between velocity samples: the most whose Nyquist wavenumber is at least
    :data:`MAX_WAVENUMBER_PER_CM` (every step at 1 fs, every second at 0.5 fs)."""
    speed_of_light_cm_per_fs = 2.99792458e-5
    interval_fs = 1.0 / (2 * speed_of_light_cm_per_fs * MAX_WAVENUMBER_PER_CM)
    return max(1, int(interval_fs // timestep_fs))


def relax(atoms: Atoms, fmax_eV_per_A: float, max_steps: int = 2000) -> Atoms:
    """Relax positions with FIRE (cell fixed); returns the same, now relaxed, atoms."""
    if fmax_eV_per_A <= 0:
        raise TemflowError(f"relax fmax must be positive, got {fmax_eV_per_A}")
    FIRE(atoms, logfile=None).run(fmax=fmax_eV_per_A, steps=max_steps)
    return atoms


class _DisplacementAccumulator:
    """Running sums of unwrapped, drift-corrected displacements (no trajectory in memory)."""

    def __init__(self, atoms: Atoms):
        self.atoms = atoms
        self.reference = atoms.get_positions().copy()
        self.periodic = np.asarray(atoms.pbc, dtype=bool)
        self.cell = np.asarray(atoms.cell)
        self.inverse_cell = np.linalg.pinv(self.cell) if self.periodic.any() else None
        self.sum = np.zeros_like(self.reference)
        self.sum_sq = np.zeros_like(self.reference)
        self.n = 0

    def displacement(self) -> np.ndarray:
        d = self.atoms.get_positions() - self.reference
        if self.inverse_cell is not None:
            # Minimum image along periodic directions (atoms move far less than half a cell).
            scaled = d @ self.inverse_cell
            scaled[:, self.periodic] -= np.round(scaled[:, self.periodic])
            d = scaled @ self.cell
        return d - d.mean(axis=0)  # remove centre-of-mass (unweighted) drift

    def __call__(self) -> None:
        d = self.displacement()
        self.sum += d
        self.sum_sq += d * d
        self.n += 1

    def sigma(self) -> np.ndarray:
        mean = self.sum / self.n
        var = np.maximum(self.sum_sq / self.n - mean * mean, 0.0)
        return np.sqrt(var)


def run_langevin(
    atoms: Atoms,
    temperature_K: float,
    timestep_fs: float,
    friction_per_fs: float,
    equilibration_steps: int,
    production_steps: int,
    sample_interval_steps: int,
    seed: int,
    progress: bool = False,
    velocity_interval_steps: int | None = None,
) -> VibrationStats:
    """Thermalise ``atoms`` (calculator attached) with asap3's C++ Langevin integrator and
    return per-atom displacement statistics sampled every ``sample_interval_steps``, with
    the velocities every ``velocity_interval_steps`` (default :func:`velocity_interval`)
    for the vibrational density of states."""
    from asap3.md.langevin import Langevin
    from ase.md import velocitydistribution as vd

    if temperature_K <= 0:
        raise TemflowError(f"temperature_K must be positive, got {temperature_K}")
    for name, value in (
        ("timestep_fs", timestep_fs),
        ("friction_per_fs", friction_per_fs),
        ("production_steps", production_steps),
        ("sample_interval_steps", sample_interval_steps),
    ):
        if value <= 0:
            raise TemflowError(f"{name} must be positive, got {value}")
    if equilibration_steps < 0:
        raise TemflowError(f"equilibration_steps must be >= 0, got {equilibration_steps}")
    if production_steps < 2 * sample_interval_steps:
        raise TemflowError(
            f"production_steps ({production_steps}) must cover at least two samples "
            f"(sample_interval_steps={sample_interval_steps})"
        )

    rng = np.random.default_rng(seed)
    # ASE >= 3.27 renamed MaxwellBoltzmannDistribution to thermalize_momenta.
    thermalize = getattr(vd, "thermalize_momenta", None) or vd.MaxwellBoltzmannDistribution
    thermalize(atoms, temperature_K=temperature_K, rng=rng)
    vd.Stationary(atoms)
    dyn = Langevin(
        atoms,
        timestep_fs * units.fs,
        temperature_K=temperature_K,
        friction=friction_per_fs / units.fs,
        seed=int(rng.integers(1, 2**31 - 1)),
    )
    start = time.perf_counter()
    _run_with_progress(dyn, equilibration_steps, progress, "equilibration")
    acc = _DisplacementAccumulator(atoms)
    velocity_steps = velocity_interval_steps or velocity_interval(timestep_fs)
    velocities: list[np.ndarray] = []
    dyn.attach(
        lambda: velocities.append(atoms.get_velocities().astype(np.float32)),
        interval=velocity_steps,
    )
    n_samples = production_steps // sample_interval_steps
    # One run() with an observer: separate short run() calls each pay a force evaluation.
    dyn.attach(acc, interval=sample_interval_steps)
    _run_with_progress(dyn, n_samples * sample_interval_steps, progress, "production")
    elapsed = time.perf_counter() - start
    total_steps = equilibration_steps + n_samples * sample_interval_steps
    speed = len(atoms) * total_steps / elapsed
    log.info("MD: %d atoms, %d steps, %.3g atom-steps/s", len(atoms), total_steps, speed)
    return VibrationStats(
        sigma_A=acc.sigma(),
        n_frames=acc.n,
        atom_steps_per_s=speed,
        velocities=np.stack(velocities),
        velocity_interval_fs=velocity_steps * timestep_fs,
    )


def _run_with_progress(dyn, steps: int, progress: bool, desc: str) -> None:
    """dyn.run(steps), with a tqdm bar fed by an observer when ``progress`` is set."""
    if steps <= 0:
        return
    if not progress:
        dyn.run(steps)
        return
    from tqdm import tqdm

    interval = max(1, steps // 100)
    with tqdm(total=steps, desc=desc, mininterval=2.0) as bar:
        update = lambda: bar.update(min(interval, steps - bar.n))  # noqa: E731
        dyn.attach(update, interval=interval)
        dyn.run(steps)
        dyn.observers.pop()
