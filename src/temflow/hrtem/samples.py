"""Fields of view of 2H-MoS2 along [001], bare or on graphene, in an orthogonal cell.

The crystal is built as a large, randomly rotated and translated patch of the hexagonal
lattice (with random vacancies), and the atoms whose projected position falls inside the
field of view ``[0, Lx) x [0, Ly)`` are kept. The cell is that rectangle (orthogonal, so
abTEM uses the atoms as given and per-atom arrays and labels stay in its frame), with
vacuum along z. Coordination numbers are computed on the patch *before* the cut, so atoms
near the field's border keep their true neighbours. The field is periodic for abTEM but a
rotated lattice is not commensurate with it: the seam at the border is a known, local
artefact of this construction (as in the DTU temnn training data).

Optionally an amorphous-carbon contamination layer covers the beam-entrance and/or exit
side (:func:`random_carbon_layer`): unlabelled C atoms placed at random with a minimum
distance, at the configured mass density.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from temflow.errors import TemflowError
from temflow.hrtem.config import SampleConfig, carbon_number_density_per_A3
from temflow.md.coordination import coordination_numbers
from temflow.md.structures import GRAPHENE_A_A, MOS2_A_A, MOS2_THICKNESS_A

SQRT3 = float(np.sqrt(3.0))
#: Coordination given to contamination atoms: their sigmas are the MD's three-fold C.
CONTAMINATION_COORDINATION = 3
#: What the MoS2 lies on: nothing (``bare``) or a graphene sheet.
SUBSTRATES: tuple[str, ...] = ("bare", "graphene")


@dataclass
class Sample:
    """One field of view: atoms in an orthogonal cell plus what built them."""

    atoms: Atoms
    #: Coordination number of every atom (computed before the cut to the field).
    coordination: np.ndarray
    #: Field of view (Lx, Ly) in A; equals the cell's in-plane size.
    field_A: tuple[float, float]
    #: How it was drawn: rotations (rad), shift (A), vacancy fractions, substrate.
    info: dict[str, float | str] = field(default_factory=dict)


def _hex_patch(
    a_A: float,
    basis_frac: np.ndarray,
    basis_z: np.ndarray,
    basis_symbols: list[str],
    field_A: tuple[float, float],
    angle_rad: float,
    shift_A: np.ndarray,
    margin_A: float,
) -> tuple[np.ndarray, list[str]]:
    """Positions of a rotated, shifted hexagonal lattice covering the field plus margin."""
    lx, ly = field_A
    a1 = np.array([a_A, 0.0])
    a2 = np.array([a_A / 2, a_A * SQRT3 / 2])
    radius = np.hypot(lx, ly) + 2 * margin_A + 2 * a_A
    n = int(np.ceil(2 * radius / (a_A * SQRT3 / 2))) + 2
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    cells = np.stack([i.ravel(), j.ravel()], axis=1).astype(float)
    rot = np.array(
        [[np.cos(angle_rad), -np.sin(angle_rad)], [np.sin(angle_rad), np.cos(angle_rad)]]
    )
    centre = np.array([lx / 2, ly / 2])
    positions, symbols = [], []
    for frac, z, symbol in zip(basis_frac, basis_z, basis_symbols, strict=True):
        xy = (cells + frac) @ np.stack([a1, a2])
        xy = xy @ rot.T + centre + shift_A
        keep = (
            (xy[:, 0] >= -margin_A)
            & (xy[:, 0] < lx + margin_A)
            & (xy[:, 1] >= -margin_A)
            & (xy[:, 1] < ly + margin_A)
        )
        xy = xy[keep]
        positions.append(np.column_stack([xy, np.full(len(xy), z)]))
        symbols += [symbol] * len(xy)
    return np.concatenate(positions), symbols


def mos2_positions(
    field_A: tuple[float, float],
    angle_rad: float,
    shift_A: np.ndarray,
    z_centre_A: float,
    margin_A: float = 4.0,
    a_A: float = MOS2_A_A,
    thickness_A: float = MOS2_THICKNESS_A,
) -> tuple[np.ndarray, list[str]]:
    """2H-MoS2 monolayer: Mo at (0, 0), an S pair at (1/3, 1/3) above and below it."""
    basis = np.array([[0.0, 0.0], [1 / 3, 1 / 3], [1 / 3, 1 / 3]])
    z = np.array([z_centre_A, z_centre_A - thickness_A / 2, z_centre_A + thickness_A / 2])
    return _hex_patch(a_A, basis, z, ["Mo", "S", "S"], field_A, angle_rad, shift_A, margin_A)


def graphene_positions(
    field_A: tuple[float, float],
    angle_rad: float,
    shift_A: np.ndarray,
    z_A: float,
    margin_A: float = 4.0,
    a_A: float = GRAPHENE_A_A,
) -> tuple[np.ndarray, list[str]]:
    """Graphene: two C atoms per hexagonal cell at (0, 0) and (1/3, 1/3)."""
    basis = np.array([[0.0, 0.0], [1 / 3, 1 / 3]])
    return _hex_patch(
        a_A, basis, np.array([z_A, z_A]), ["C", "C"], field_A, angle_rad, shift_A, margin_A
    )


def random_carbon_layer(
    field_A: tuple[float, float],
    thickness_A: float,
    density_g_per_cm3: float,
    min_distance_A: float,
    rng: np.random.Generator,
    max_rounds: int = 1000,
) -> np.ndarray:
    """Positions (n, 3) of amorphous carbon in ``[0, Lx) x [0, Ly) x [0, thickness_A)``.

    ``n = round(number density x Lx x Ly x thickness)`` atoms placed by random sequential
    addition: candidates are drawn uniformly in batches, those closer than
    ``min_distance_A`` to a placed atom, or to an earlier candidate of their batch, are
    rejected (cKDTree queries, periodic in x and y like the simulation cell). Every pair
    ends at least ``min_distance_A`` apart. Raises TemflowError when ``max_rounds``
    batches do not place them all (a density too close to jamming).
    """
    lx, ly = float(field_A[0]), float(field_A[1])
    n_target = int(round(carbon_number_density_per_A3(density_g_per_cm3) * lx * ly * thickness_A))
    if n_target == 0:
        return np.zeros((0, 3))
    # Periodic in z with an extra min_distance: no pair can meet across the z period.
    box = np.array([lx, ly, thickness_A + min_distance_A])
    scale = np.array([lx, ly, thickness_A])
    placed = np.zeros((0, 3))
    tree = None
    for _ in range(max_rounds):
        need = n_target - len(placed)
        if need == 0:
            return placed
        candidates = rng.random((max(2 * need, 64), 3)) * scale
        if tree is not None:
            nearest, _ = tree.query(candidates, k=1, distance_upper_bound=min_distance_A)
            candidates = candidates[~np.isfinite(nearest)]
        pairs = cKDTree(candidates, boxsize=box).query_pairs(min_distance_A, output_type="ndarray")
        clash = np.zeros(len(candidates), dtype=bool)
        clash[pairs.max(axis=1) if len(pairs) else []] = True
        placed = np.concatenate([placed, candidates[~clash][:need]])
        tree = cKDTree(placed, boxsize=box)
    if len(placed) == n_target:
        return placed
    raise TemflowError(
        f"amorphous carbon: placed {len(placed)} of {n_target} atoms at "
        f"{density_g_per_cm3} g/cm^3 with a minimum distance of {min_distance_A} A; lower "
        "hrtem.sample.contamination_density_g_per_cm3 or contamination_min_distance_A"
    )


def add_contamination(
    atoms: Atoms,
    coordination: np.ndarray,
    config: SampleConfig,
    rng: np.random.Generator,
) -> tuple[Atoms, np.ndarray, dict[str, float]]:
    """``atoms`` with amorphous-carbon layers on the configured sides, appended last.

    Each side in ``config.contamination_sides`` gets a thickness drawn uniformly from
    ``contamination_thickness_A`` (a fixed range draws nothing from ``rng``; zero: no
    layer). The ``entrance`` layer lies below the specimen along z (the beam enters at
    z = 0; the specimen moves up by ``ceil(thickness + min_distance)`` A, so the gap is at
    least ``contamination_min_distance_A``), the ``exit`` layer above it,
    ``contamination_min_distance_A`` from the specimen's outermost atom plane; the cell's
    vacuum below and above stays. The new atoms are C with coordination
    :data:`CONTAMINATION_COORDINATION`. Returns the atoms, their coordination, and the
    drawn thicknesses (A) and atom count for the image's record.
    """
    lo, hi = config.contamination_thickness_A
    gap = float(config.contamination_min_distance_A)
    thickness = {side: 0.0 for side in ("entrance", "exit")}
    for side in config.contamination_sides:
        thickness[side] = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    info = {
        "contamination_entrance_thickness_A": thickness["entrance"],
        "contamination_exit_thickness_A": thickness["exit"],
        "contamination_total_thickness_A": thickness["entrance"] + thickness["exit"],
    }
    if info["contamination_total_thickness_A"] == 0:
        return atoms, coordination, {**info, "n_contamination_atoms": 0}
    field = (float(atoms.cell[0, 0]), float(atoms.cell[1, 1]))
    vacuum_below = float(atoms.positions[:, 2].min())
    vacuum_above = float(atoms.cell[2, 2] - atoms.positions[:, 2].max())
    positions = atoms.positions.copy()
    layers = []
    if thickness["entrance"] > 0:
        layer = random_carbon_layer(
            field, thickness["entrance"], config.contamination_density_g_per_cm3, gap, rng
        )
        layers.append(layer + [0.0, 0.0, vacuum_below])
        # A whole number of A: the specimen's planes keep their place within 1 A slices.
        positions[:, 2] += np.ceil(thickness["entrance"] + gap)
    top = float(positions[:, 2].max())
    if thickness["exit"] > 0:
        layer = random_carbon_layer(
            field, thickness["exit"], config.contamination_density_g_per_cm3, gap, rng
        )
        layers.append(layer + [0.0, 0.0, top + gap])
        top += gap + thickness["exit"]
    carbon = np.concatenate(layers)
    out = Atoms(
        symbols=atoms.get_chemical_symbols() + ["C"] * len(carbon),
        positions=np.concatenate([positions, carbon]),
        cell=[field[0], field[1], top + vacuum_above],
        pbc=True,
    )
    coordination = np.concatenate(
        [coordination, np.full(len(carbon), CONTAMINATION_COORDINATION, dtype=coordination.dtype)]
    )
    return out, coordination, {**info, "n_contamination_atoms": len(carbon)}


def make_sample(
    config: SampleConfig,
    substrate: str,
    rng: np.random.Generator,
    cutoffs_A: Mapping[str, float],
    field_A: tuple[float, float] | None = None,
    contamination_rng: np.random.Generator | None = None,
) -> Sample:
    """Draw one field of view.

    ``config`` is the ``hrtem.sample`` section: ``s_vacancy_fraction`` and
    ``mo_vacancy_fraction`` ranges [lo, hi] (a fraction is drawn uniformly per image, then
    every site is removed independently with that probability: one missing S turns an S2
    column into S1, two remove it), ``graphene_spacing_A`` (MoS2 Mo plane to graphene
    distance minus half the MoS2 thickness, i.e. S plane to graphene) and ``vacuum_A``
    (above and below along z); the contamination keys add amorphous carbon
    (:func:`add_contamination`, after everything else is drawn). ``field_A`` (Lx, Ly) is
    this image's field of view (default: the configured ``field_of_view_A``).
    ``substrate`` is one of :data:`SUBSTRATES` (``"bare"``: MoS2 alone, ``"graphene"``:
    MoS2 on graphene); ``cutoffs_A`` the MD coordination cutoffs. ``contamination_rng``
    draws the contamination (default: ``rng``); a generator of its own leaves ``rng``'s
    stream, and so everything drawn after the sample, the same with and without it.
    """
    if substrate not in SUBSTRATES:
        raise TemflowError(f"substrate must be 'bare' or 'graphene', got {substrate!r}")
    field = config.field_of_view_A if field_A is None else field_A
    fov = (float(field[0]), float(field[1]))
    vacuum = float(config.vacuum_A)
    angle = float(rng.uniform(0, 2 * np.pi))
    shift = rng.uniform(0, MOS2_A_A, size=2)
    p_s = float(rng.uniform(*config.s_vacancy_fraction))
    p_mo = float(rng.uniform(*config.mo_vacancy_fraction))
    z_mos2 = vacuum + MOS2_THICKNESS_A / 2
    pos, symbols = mos2_positions(fov, angle, shift, z_mos2)
    sym = np.array(symbols)
    p_remove = np.where(sym == "S", p_s, p_mo)
    keep = rng.random(len(sym)) >= p_remove
    pos, sym = pos[keep], sym[keep]
    info: dict[str, float | str] = {
        "substrate": substrate,
        "mos2_angle_rad": angle,
        "mos2_shift_x_A": float(shift[0]),
        "mos2_shift_y_A": float(shift[1]),
        "s_vacancy_fraction": p_s,
        "mo_vacancy_fraction": p_mo,
    }
    top = z_mos2 + MOS2_THICKNESS_A / 2
    if substrate == "graphene":
        g_angle = float(rng.uniform(0, 2 * np.pi))
        g_shift = rng.uniform(0, GRAPHENE_A_A, size=2)
        top = top + float(config.graphene_spacing_A)
        gpos, gsym = graphene_positions(fov, g_angle, g_shift, top)
        pos = np.concatenate([pos, gpos])
        sym = np.concatenate([sym, np.array(gsym)])
        info.update(
            graphene_angle_rad=g_angle,
            graphene_shift_x_A=float(g_shift[0]),
            graphene_shift_y_A=float(g_shift[1]),
        )
    patch = Atoms(symbols=sym.tolist(), positions=pos, pbc=False)
    # A non-periodic box tight around the patch: ASE's neighbour search bins the atoms in
    # the cell and is slow without one.
    boxed = patch.copy()
    boxed.positions -= pos.min(axis=0) - 1.0
    boxed.cell = np.ptp(pos, axis=0) + 2.0
    coordination = coordination_numbers(boxed, cutoffs_A)
    inside = (pos[:, 0] >= 0) & (pos[:, 0] < fov[0]) & (pos[:, 1] >= 0) & (pos[:, 1] < fov[1])
    atoms = patch[inside]
    atoms.cell = [fov[0], fov[1], top + vacuum]
    atoms.pbc = True
    own = rng if contamination_rng is None else contamination_rng
    atoms, coordination, contamination = add_contamination(atoms, coordination[inside], config, own)
    info.update(contamination)
    return Sample(atoms=atoms, coordination=coordination, field_A=fov, info=info)
