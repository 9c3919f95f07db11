"""Atomic structures for the MD stage: MoS2 sheets with vacancies, MoS2 flakes, graphene."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.build import graphene, mx2

from temflow.errors import TemflowError
from temflow.md.coordination import DEFAULT_CUTOFFS_A, coordination_numbers

#: 2H-MoS2 in-plane lattice constant (minimum of the KIM SW model, so the periodic cell
#: is unstrained) and S-S (chalcogen) thickness, A.
MOS2_A_A = 3.196  # SW (Wen 2017) equilibrium; DFT and experiment: 3.16-3.19
MOS2_THICKNESS_A = 3.13
#: Graphene lattice constant, A.
GRAPHENE_A_A = 2.46

SYSTEMS = ("mos2_sheet", "mos2_flake", "graphene")


def mos2_sheet(
    repeat: tuple[int, int],
    s_vacancy_fraction: float = 0.0,
    mo_vacancy_fraction: float = 0.0,
    rng: np.random.Generator | None = None,
    a_A: float = MOS2_A_A,
    thickness_A: float = MOS2_THICKNESS_A,
    vacuum_A: float = 10.0,
) -> Atoms:
    """Periodic 2H-MoS2 monolayer (``repeat`` unit cells) with random vacancies.

    ``s_vacancy_fraction`` and ``mo_vacancy_fraction`` are fractions of the S and Mo
    sites removed at random (rounded to whole atoms).
    """
    _check_repeat(repeat)
    for name, value in (
        ("s_vacancy_fraction", s_vacancy_fraction),
        ("mo_vacancy_fraction", mo_vacancy_fraction),
    ):
        if not 0.0 <= value < 0.5:
            raise TemflowError(f"{name} must be in [0, 0.5), got {value}")
    atoms = mx2("MoS2", kind="2H", a=a_A, thickness=thickness_A, size=(*repeat, 1), vacuum=vacuum_A)
    atoms.pbc = (True, True, False)
    if s_vacancy_fraction or mo_vacancy_fraction:
        rng = rng if rng is not None else np.random.default_rng(0)
        symbols = np.array(atoms.get_chemical_symbols())
        remove: list[int] = []
        for element, fraction in (("S", s_vacancy_fraction), ("Mo", mo_vacancy_fraction)):
            sites = np.flatnonzero(symbols == element)
            n_remove = int(round(fraction * len(sites)))
            remove.extend(rng.choice(sites, size=n_remove, replace=False).tolist())
        del atoms[sorted(remove)]
    return atoms


def mos2_flake(
    radius_A: float,
    a_A: float = MOS2_A_A,
    thickness_A: float = MOS2_THICKNESS_A,
    vacuum_A: float = 10.0,
    cutoffs_A: Mapping[str, float] = DEFAULT_CUTOFFS_A,
) -> Atoms:
    """Finite, roughly round 2H-MoS2 flake with edges, in a non-periodic box.

    Atoms left with fewer than two bonds after the cut are pruned (repeatedly), since
    a singly bonded atom is not a stable edge termination.
    """
    if radius_A < 2 * a_A:
        raise TemflowError(f"flake radius_A must be at least {2 * a_A:.1f} A, got {radius_A}")
    n = int(np.ceil(2 * radius_A / a_A)) + 3
    atoms = mx2("MoS2", kind="2H", a=a_A, thickness=thickness_A, size=(n, n, 1), vacuum=0.0)
    centre = atoms.cell[:2, :2].sum(axis=0) / 2
    r = np.linalg.norm(atoms.positions[:, :2] - centre, axis=1)
    atoms = atoms[r <= radius_A]
    atoms.pbc = False
    while True:
        cn = coordination_numbers(atoms, cutoffs_A)
        weak = np.flatnonzero(cn < 2)
        if len(weak) == 0:
            break
        del atoms[weak.tolist()]
    atoms.center(vacuum=vacuum_A)
    return atoms


def graphene_sheet(
    repeat: tuple[int, int], a_A: float = GRAPHENE_A_A, vacuum_A: float = 10.0
) -> Atoms:
    """Periodic graphene sheet of ``repeat`` unit cells (two C atoms each)."""
    _check_repeat(repeat)
    atoms = graphene("C2", a=a_A, size=(*repeat, 1), vacuum=vacuum_A)
    atoms.pbc = (True, True, False)
    return atoms


def read_structure(path: str | Path) -> Atoms:
    """Read a user's structure file (any format ASE reads: xyz, extxyz, cif, traj, POSCAR)."""
    path = Path(path)
    if not path.is_file():
        raise TemflowError(f"structure file {path} does not exist")
    try:
        atoms = ase.io.read(path)
    except Exception as err:  # ASE raises many types for malformed files
        raise TemflowError(f"cannot read structure file {path}: {err}") from err
    if len(atoms) == 0:
        raise TemflowError(f"structure file {path} contains no atoms")
    return atoms


def build_system(name: str, params: Mapping, rng: np.random.Generator) -> Atoms:
    """Build an MD system from its config section (see config/README.md).

    ``params`` with a ``path`` key reads a user's structure file instead.
    """
    if "path" in params:
        return read_structure(params["path"])
    if name == "mos2_sheet":
        return mos2_sheet(
            tuple(params["repeat"]),
            s_vacancy_fraction=params.get("s_vacancy_fraction", 0.0),
            mo_vacancy_fraction=params.get("mo_vacancy_fraction", 0.0),
            rng=rng,
        )
    if name == "mos2_flake":
        return mos2_flake(params["radius_A"])
    if name == "graphene":
        return graphene_sheet(tuple(params["repeat"]))
    raise TemflowError(f"unknown MD system {name!r}; expected one of {', '.join(SYSTEMS)}")


def _check_repeat(repeat: tuple[int, ...]) -> None:
    if len(repeat) != 2 or min(repeat) < 1:
        raise TemflowError(f"repeat must be two positive integers, got {repeat}")
