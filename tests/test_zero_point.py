"""Zero-point motion: the vibrational DOS from velocities and the quantum amplitudes."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units

from temflow.errors import TemflowError
from temflow.md.vibrations import (
    classical_msd,
    group_by_environment,
    quantum_msd,
    vibrational_dos,
    zero_point_factor,
    zero_point_factors,
)

HBAR_EV_FS = units._hbar / units._e * 1e15
A2_PER_EV_FS2_PER_AMU = units._e * 1e-30 / units._amu * 1e20


def oscillators(omega_per_fs: float, n_samples: int, dt_fs: float, n_atoms: int = 50):
    """Velocities (T, n_atoms) of harmonic oscillators of one frequency, random phases."""
    rng = np.random.default_rng(0)
    t = np.arange(n_samples) * dt_fs
    phases = rng.uniform(0, 2 * np.pi, n_atoms)
    return np.cos(omega_per_fs * t[:, None] + phases[None, :])


def analytic_u2(omega_per_fs: float, mass_amu: float, temperature_K: float) -> float:
    """hbar / (2 m omega) coth(hbar omega / 2 kT) in A^2."""
    x = HBAR_EV_FS * omega_per_fs / (2 * units.kB * temperature_K)
    return HBAR_EV_FS / (2 * mass_amu * omega_per_fs) / np.tanh(x) * A2_PER_EV_FS2_PER_AMU


@pytest.mark.parametrize("wavenumber_per_cm", [400.0, 1580.0])  # MoS2 E', graphene G
def test_single_frequency_gives_the_harmonic_oscillator(wavenumber_per_cm):
    n, dt = 2000, 10.0
    # put the frequency on the periodogram's grid so its DOS is one bin
    omega_target = 2 * np.pi * wavenumber_per_cm * 2.99792458e10 * 1e-15
    k = round(omega_target * n * dt / (2 * np.pi))
    omega0 = 2 * np.pi * k / (n * dt)
    omega, g = vibrational_dos(oscillators(omega0, n, dt), dt)
    assert np.sum(g) * (omega[1] - omega[0]) == pytest.approx(1.0)
    assert omega[np.argmax(g)] == pytest.approx(omega0)
    mass = 12.011
    for temperature in (300.0, 30.0):
        assert quantum_msd(omega, g, mass, temperature) == pytest.approx(
            analytic_u2(omega0, mass, temperature), rel=1e-6
        )
        classical = units.kB * temperature / (mass * omega0**2) * A2_PER_EV_FS2_PER_AMU
        assert classical_msd(omega, g, mass, temperature) == pytest.approx(classical, rel=1e-6)
        ratio = quantum_msd(omega, g, mass, temperature) / classical_msd(
            omega, g, mass, temperature
        )
        assert zero_point_factor(omega, g, temperature) == pytest.approx(np.sqrt(ratio))
    # graphene's G mode at 300 K: hbar omega / kT = 7.6, the quantum amplitude is far larger
    if wavenumber_per_cm == 1580.0:
        assert zero_point_factor(omega, g, 300.0) > 1.9


def test_high_temperature_is_classical():
    n, dt = 1000, 10.0
    omega0 = 2 * np.pi * 40 / (n * dt)
    omega, g = vibrational_dos(oscillators(omega0, n, dt), dt)
    assert zero_point_factor(omega, g, 1e6) == pytest.approx(1.0, abs=1e-6)
    assert quantum_msd(omega, g, 32.06, 1e6) == pytest.approx(
        classical_msd(omega, g, 32.06, 1e6), rel=1e-6
    )
    # and the factor grows as the temperature falls
    factors = [zero_point_factor(omega, g, t) for t in (1000.0, 300.0, 100.0)]
    assert factors == sorted(factors) and factors[0] > 1.0


def test_groups_get_their_own_factors_and_the_correction_is_optional():
    """Two groups: a stiff in-plane / soft out-of-plane one and the reverse (each atom has
    a partner moving opposite, so the mean velocity removed from every frame is zero)."""
    n, dt = 2000, 10.0
    fast, slow = 2 * np.pi * 900 / (n * dt), 2 * np.pi * 20 / (n * dt)

    def pair(omega: float, k: int) -> np.ndarray:
        v = oscillators(omega, n, dt, k)
        return np.concatenate([v, -v], axis=1)

    v = np.zeros((n, 4, 3))
    v[:, :2, :2] = pair(fast, 2).reshape(n, 2, 2)
    v[:, :2, 2] = pair(slow, 1)
    v[:, 2:, :2] = pair(slow, 2).reshape(n, 2, 2)
    v[:, 2:, 2] = pair(fast, 1)
    symbols, cn = ["C", "C", "S", "S"], np.array([3, 3, 3, 3])
    table = zero_point_factors(symbols, cn, v, dt, 300.0).set_index("element")
    assert table.loc["C", "zero_point_xy"] > 1.5 > 1.01 > table.loc["C", "zero_point_z"]
    assert table.loc["S", "zero_point_z"] > 1.5 > 1.01 > table.loc["S", "zero_point_xy"]
    args = ("graphene", 0, symbols, cn, np.full(4, 0.05), np.full(4, 0.1), n, 300.0, 1.0)
    plain = group_by_environment(*args, zero_point=table.reset_index())
    corrected = group_by_environment(*args, zero_point=table.reset_index(), correct_zero_point=True)
    np.testing.assert_allclose(plain.sigma_xy, 0.05)
    np.testing.assert_allclose(corrected.sigma_xy, 0.05 * plain.zero_point_xy)
    np.testing.assert_allclose(corrected.sigma_z, 0.1 * plain.zero_point_z)
    with pytest.raises(TemflowError, match="without zero-point factors"):
        group_by_environment(*args, correct_zero_point=True)


def test_md_records_velocities_fast_enough_for_graphene():
    """Velocities every 1 fs step while the displacements are sampled every 10 steps; the
    factors come out > 1 for every group."""
    from temflow.md.coordination import coordination_numbers
    from temflow.md.dynamics import make_calculator, run_langevin, velocity_interval
    from temflow.md.structures import graphene_sheet

    assert velocity_interval(1.0) == 1 and velocity_interval(0.5) == 2
    atoms = graphene_sheet((4, 4))
    atoms.calc = make_calculator(atoms)
    stats = run_langevin(atoms, 300.0, 1.0, 0.02, 100, 800, 10, seed=3)
    assert stats.velocities.shape == (800, len(atoms), 3)
    assert stats.velocity_interval_fs == 1.0 and stats.n_frames == 80
    cn = coordination_numbers(atoms, {"C-C": 1.8})
    table = zero_point_factors(
        atoms.get_chemical_symbols(), cn, stats.velocities, stats.velocity_interval_fs, 300.0
    )
    assert len(table) == 1 and (table[["zero_point_xy", "zero_point_z"]] > 1).all(axis=None)
