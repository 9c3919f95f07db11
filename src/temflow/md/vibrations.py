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
    "zero_point_xy",
    "zero_point_z",
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
    "zero_point_xy",
    "zero_point_z",
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
    zero_point: pd.DataFrame | None = None,
    correct_zero_point: bool = False,
) -> pd.DataFrame:
    """Mean per-atom sigma (A, per Cartesian direction) for each (element, coordination).

    ``zero_point`` (from :func:`zero_point_factors`) adds the groups' zero-point factors
    (NaN without it); ``correct_zero_point`` multiplies the sigmas by them (the quantum
    amplitudes, ``md.zero_point_motion``).
    """
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
    if zero_point is None:
        if correct_zero_point:
            raise TemflowError("zero-point correction asked for without zero-point factors")
        out["zero_point_xy"] = np.nan
        out["zero_point_z"] = np.nan
    else:
        out = out.merge(zero_point, on=["element", "coordination"], how="left")
        if correct_zero_point:
            out["sigma_xy"] *= out["zero_point_xy"]
            out["sigma_z"] *= out["zero_point_z"]
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
    out = g[["sigma_xy", "sigma_z", "zero_point_xy", "zero_point_z"]].mean()
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


# --- zero-point motion -------------------------------------------------------------------


def vibrational_dos(
    velocities: np.ndarray, sample_interval_fs: float
) -> tuple[np.ndarray, np.ndarray]:
    """Vibrational density of states g(omega) of a group of velocity series.

    ``velocities`` (T, ...) holds T samples, ``sample_interval_fs`` apart, of any number of
    velocity components (atoms, directions). g is the Fourier transform of their velocity
    autocorrelation function, computed as the component-summed periodogram
    (Wiener-Khinchin), at the angular frequencies ``omega`` (rad/fs, 0 excluded) up to the
    Nyquist frequency ``pi / sample_interval_fs``; normalised so that ``sum(g) * domega``
    is 1. Returns ``(omega, g)``.
    """
    v = np.asarray(velocities, dtype=float)
    if v.ndim < 1 or v.shape[0] < 4:
        raise TemflowError(f"vibrational DOS needs at least 4 velocity samples, got {v.shape}")
    if not sample_interval_fs > 0:
        raise TemflowError(f"sample interval must be positive, got {sample_interval_fs}")
    v = v.reshape(v.shape[0], -1)
    v = v - v.mean(axis=0)
    power = (np.abs(np.fft.rfft(v, axis=0)) ** 2).sum(axis=1)
    omega = 2 * np.pi * np.fft.rfftfreq(v.shape[0], d=sample_interval_fs)
    omega, power = omega[1:], power[1:]
    total = power.sum() * (omega[1] - omega[0]) if len(omega) > 1 else power.sum()
    if not total > 0:
        raise TemflowError("vibrational DOS of constant velocities is undefined")
    return omega, power / total


def _hbar_eV_fs() -> float:
    from ase import units

    return units._hbar / units._e * 1e15


def _x(omega_per_fs: np.ndarray, temperature_K: float) -> np.ndarray:
    """hbar omega / 2 kT."""
    from ase import units

    return _hbar_eV_fs() * np.asarray(omega_per_fs) / (2 * units.kB * temperature_K)


#: 1 eV fs^2 / amu in A^2: the unit of hbar / (m omega) and kT / (m omega^2) below.
def _eV_fs2_per_amu_in_A2() -> float:
    from ase import units

    return units._e * 1e-30 / units._amu * 1e20


def quantum_msd(
    omega_per_fs: np.ndarray, dos: np.ndarray, mass_amu: float, temperature_K: float
) -> float:
    """<u^2> (A^2) of one direction of harmonic modes with DOS ``dos`` (normalised on the
    ``omega`` grid, rad/fs): integral of g hbar / (2 m omega) coth(hbar omega / 2 kT)."""
    omega = np.asarray(omega_per_fs, dtype=float)
    x = _x(omega, temperature_K)
    per_mode = _hbar_eV_fs() / (2 * mass_amu * omega) / np.tanh(x) * _eV_fs2_per_amu_in_A2()
    return float(np.sum(dos * per_mode) * (omega[1] - omega[0]))


def classical_msd(
    omega_per_fs: np.ndarray, dos: np.ndarray, mass_amu: float, temperature_K: float
) -> float:
    """<u^2> (A^2) of the same modes in classical equipartition: integral of
    g kT / (m omega^2), the high-temperature limit of :func:`quantum_msd`."""
    from ase import units

    omega = np.asarray(omega_per_fs, dtype=float)
    per_mode = units.kB * temperature_K / (mass_amu * omega**2) * _eV_fs2_per_amu_in_A2()
    return float(np.sum(dos * per_mode) * (omega[1] - omega[0]))


def zero_point_factor(omega_per_fs: np.ndarray, dos: np.ndarray, temperature_K: float) -> float:
    """The factor on a classical MD amplitude sigma that gives the quantum one:
    sqrt(quantum_msd / classical_msd), mass-free; >= 1, and 1 in the classical limit.

    The MD's own sigma is the classical amplitude of its modes, so
    ``sigma * zero_point_factor`` reproduces it exactly when kT >> hbar omega.
    """
    omega = np.asarray(omega_per_fs, dtype=float)
    x = _x(omega, temperature_K)
    weights = np.asarray(dos, dtype=float) / omega**2  # classical <u^2> per mode
    ratio = np.sum(weights * x / np.tanh(x)) / np.sum(weights)
    return float(np.sqrt(ratio))


def zero_point_factors(
    symbols: Sequence[str],
    coordination: np.ndarray,
    velocities: np.ndarray,
    sample_interval_fs: float,
    temperature_K: float,
) -> pd.DataFrame:
    """Per (element, coordination) the zero-point factors of the in-plane (x, y) and
    out-of-plane (z) amplitudes from that group's own DOS (:func:`zero_point_factor`).

    ``velocities`` (T, N, 3) sampled every ``sample_interval_fs``. The mean velocity of
    all atoms is removed from every frame first, as the centre-of-mass drift is from the
    displacements (:mod:`temflow.md.dynamics`): under a Langevin thermostat it is a slow
    random walk whose 1/omega^2 weight would pull every factor towards 1. Columns:
    element, coordination, zero_point_xy, zero_point_z.
    """
    v = np.asarray(velocities, dtype=float)
    v = v - v.mean(axis=1, keepdims=True)
    symbols = np.asarray(symbols)
    coordination = np.asarray(coordination, dtype=int)
    if v.ndim != 3 or v.shape[1:] != (len(symbols), 3):
        raise TemflowError(f"velocities must be (T, {len(symbols)}, 3), got {v.shape}")
    rows = []
    for element, cn in sorted(
        {(str(e), int(c)) for e, c in zip(symbols, coordination, strict=True)}
    ):
        group = (symbols == element) & (coordination == cn)
        factors = {}
        for name, axes in (("zero_point_xy", [0, 1]), ("zero_point_z", [2])):
            omega, g = vibrational_dos(v[:, group][:, :, axes], sample_interval_fs)
            factors[name] = zero_point_factor(omega, g, temperature_K)
        rows.append({"element": element, "coordination": cn, **factors})
    return pd.DataFrame(rows, columns=["element", "coordination", "zero_point_xy", "zero_point_z"])
