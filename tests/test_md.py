"""MD stage: coordination numbers, harmonic scaling, defect/edge vibrations, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from temflow.errors import TemflowError
from temflow.md.coordination import DEFAULT_CUTOFFS_A, coordination_numbers
from temflow.md.dynamics import check_kim_model, make_calculator, relax, run_langevin
from temflow.md.structures import build_system, graphene_sheet, mos2_flake, mos2_sheet
from temflow.md.vibrations import aggregate_runs, group_by_environment, lookup_sigmas


def _cn(atoms):
    return coordination_numbers(atoms, DEFAULT_CUTOFFS_A)


def test_perfect_mos2_coordination():
    atoms = mos2_sheet((4, 4))
    symbols = np.array(atoms.get_chemical_symbols())
    cn = _cn(atoms)
    assert (symbols == "Mo").sum() == 16 and (symbols == "S").sum() == 32
    assert np.all(cn[symbols == "Mo"] == 6)
    assert np.all(cn[symbols == "S"] == 3)


def test_perfect_graphene_coordination():
    atoms = graphene_sheet((4, 4))
    assert len(atoms) == 32
    assert np.all(_cn(atoms) == 3)


def test_single_s_vacancy_leaves_three_fivefold_mo():
    atoms = mos2_sheet((4, 4))
    s_index = int(np.flatnonzero(np.array(atoms.get_chemical_symbols()) == "S")[5])
    del atoms[s_index]
    symbols = np.array(atoms.get_chemical_symbols())
    cn = _cn(atoms)
    assert np.sum(cn[symbols == "Mo"] == 5) == 3
    assert np.sum(cn[symbols == "Mo"] == 6) == 13
    assert np.all(cn[symbols == "S"] == 3)


def test_vacancy_fractions_are_exact():
    atoms = mos2_sheet(
        (5, 5), s_vacancy_fraction=0.1, mo_vacancy_fraction=0.04, rng=np.random.default_rng(1)
    )
    symbols = np.array(atoms.get_chemical_symbols())
    assert (symbols == "S").sum() == 50 - 5
    assert (symbols == "Mo").sum() == 25 - 1


def test_flake_has_edges_and_bulk():
    atoms = mos2_flake(12.0)
    cn = _cn(atoms)
    symbols = np.array(atoms.get_chemical_symbols())
    assert not atoms.pbc.any()
    assert np.any(cn[symbols == "Mo"] == 6) and np.any(cn[symbols == "Mo"] < 6)
    assert cn.min() >= 2


def test_bad_inputs_are_named():
    with pytest.raises(TemflowError, match="unknown MD system 'mos3'"):
        build_system("mos3", {}, np.random.default_rng(0))
    with pytest.raises(TemflowError, match="not installed"):
        check_kim_model("SW_NoSuchModel__MO_000000000000_000")
    atoms = graphene_sheet((2, 2))
    atoms.calc = make_calculator(atoms)
    with pytest.raises(TemflowError, match="temperature_K must be positive"):
        run_langevin(atoms, 0.0, 1.0, 0.02, 10, 100, 10, seed=1)
    with pytest.raises(TemflowError, match="production_steps must be positive"):
        run_langevin(atoms, 300.0, 1.0, 0.02, 10, 0, 10, seed=1)
    with pytest.raises(TemflowError, match="cutoff key"):
        coordination_numbers(atoms, {"MoS": 2.9})


def _md_sigma(atoms, temperature_K, seed, steps=4000):
    atoms = atoms.copy()
    atoms.calc = make_calculator(atoms)
    relax(atoms, 0.01)
    stats = run_langevin(
        atoms,
        temperature_K,
        timestep_fs=1.0,
        friction_per_fs=0.01,
        equilibration_steps=500,
        production_steps=steps,
        sample_interval_steps=5,
        seed=seed,
    )
    return atoms, stats


def test_sigma_squared_is_proportional_to_temperature():
    """Harmonic solid: <u^2> = kT / (m w^2), so sigma^2(600 K) / sigma^2(300 K) = 2."""
    atoms = mos2_sheet((4, 4))
    _, cold = _md_sigma(atoms, 300.0, seed=3)
    _, hot = _md_sigma(atoms, 600.0, seed=4)
    # In-plane modes are stiff and well sampled in a short run.
    ratio = np.mean(hot.sigma_xy_A**2) / np.mean(cold.sigma_xy_A**2)
    assert ratio == pytest.approx(2.0, abs=0.3)


def test_defect_and_edge_atoms_vibrate_more():
    sheet = mos2_sheet((6, 6), s_vacancy_fraction=0.08, rng=np.random.default_rng(2))
    relaxed, stats = _md_sigma(sheet, 300.0, seed=5, steps=2000)
    symbols = np.array(relaxed.get_chemical_symbols())
    cn = _cn(relaxed)
    mo = symbols == "Mo"
    assert stats.sigma_xy_A[mo & (cn < 6)].mean() > stats.sigma_xy_A[mo & (cn == 6)].mean()

    flake = mos2_flake(11.0)
    relaxed, stats = _md_sigma(flake, 300.0, seed=6, steps=2000)
    cn = _cn(relaxed)
    symbols = np.array(relaxed.get_chemical_symbols())
    s = symbols == "S"
    assert stats.sigma_xy_A[s & (cn < 3)].mean() > stats.sigma_xy_A[s & (cn == 3)].mean()


def test_same_seed_same_numbers_and_aggregation():
    atoms = graphene_sheet((3, 3))
    tables = []
    for run, seed in enumerate((11, 11, 12)):
        relaxed, stats = _md_sigma(atoms, 300.0, seed=seed, steps=200)
        tables.append(
            group_by_environment(
                "graphene",
                run,
                relaxed.get_chemical_symbols(),
                _cn(relaxed),
                stats.sigma_xy_A,
                stats.sigma_z_A,
                stats.n_frames,
                300.0,
                0.0,
            )
        )
    a, b, c = (t[["sigma_xy", "sigma_z"]].to_numpy() for t in tables)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    table = aggregate_runs(tables)
    assert list(table["coordination"]) == [3]
    assert table["n_runs"].iloc[0] == 3 and table["sigma_xy_err"].iloc[0] > 0


def test_lookup_falls_back_to_nearest_coordination():
    table = pd.DataFrame(
        {
            "system": ["s", "s", "s"],
            "element": ["Mo", "Mo", "S"],
            "coordination": [6, 4, 3],
            "sigma_xy": [0.05, 0.08, 0.07],
            "sigma_z": [0.04, 0.09, 0.06],
            "n_atoms": [10, 2, 20],
        }
    )
    sig = lookup_sigmas(table, ["Mo", "Mo", "S", "S"], np.array([6, 5, 3, 1]))
    np.testing.assert_allclose(sig[0], [0.05, 0.05, 0.04])
    np.testing.assert_allclose(sig[1], [0.05, 0.05, 0.04])  # 5: tie between 4 and 6 -> 6
    np.testing.assert_allclose(sig[3], [0.07, 0.07, 0.06])
    with pytest.raises(TemflowError, match="no entry for element 'C'"):
        lookup_sigmas(table, ["C"], np.array([3]))


def test_structure_files(tmp_path):
    path = tmp_path / "sheet.extxyz"
    mos2_sheet((3, 3)).write(path)
    atoms = build_system("mine", {"path": str(path)}, np.random.default_rng(0))
    assert len(atoms) == 27 and np.all(
        _cn(atoms)[np.array(atoms.get_chemical_symbols()) == "Mo"] == 6
    )
    garbage = tmp_path / "broken.xyz"
    garbage.write_text("this is not\na structure\n")
    with pytest.raises(TemflowError, match="cannot read structure file .*broken.xyz"):
        build_system("broken", {"path": str(garbage)}, np.random.default_rng(0))
    with pytest.raises(TemflowError, match="does not exist"):
        build_system("gone", {"path": str(tmp_path / "gone.cif")}, np.random.default_rng(0))
