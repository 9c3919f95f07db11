"""Coordination numbers from element-pair cutoffs (shared by the MD and HR-TEM stages)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from temflow.errors import TemflowError

#: Default element-pair cutoffs in A: first-neighbour shells of 2H-MoS2 (Mo-S 2.41 A)
#: and graphene (C-C 1.42 A), well below the second shells (3.16 A and 2.46 A).
DEFAULT_CUTOFFS_A: dict[str, float] = {"Mo-S": 2.9, "C-C": 1.8}


def parse_pair_cutoffs(cutoffs_A: Mapping[str, float]) -> dict[tuple[str, str], float]:
    """Turn ``{"Mo-S": 2.9}`` into ``{("Mo", "S"): 2.9, ("S", "Mo"): 2.9}``."""
    pairs: dict[tuple[str, str], float] = {}
    for key, value in cutoffs_A.items():
        parts = key.split("-")
        if len(parts) != 2 or not all(parts):
            raise TemflowError(f"cutoff key {key!r} must look like 'Mo-S' (two elements)")
        if value <= 0:
            raise TemflowError(f"cutoff {key!r} must be positive, got {value}")
        a, b = parts
        pairs[(a, b)] = float(value)
        pairs[(b, a)] = float(value)
    return pairs


def coordination_numbers(atoms: Atoms, cutoffs_A: Mapping[str, float]) -> np.ndarray:
    """Number of neighbours of every atom within the element-pair cutoffs.

    Pairs of elements without a cutoff never count as neighbours (so Mo in MoS2 counts
    its S neighbours only, and C does not count S across a van der Waals gap).
    Periodic boundaries follow ``atoms.pbc``.
    """
    pairs = parse_pair_cutoffs(cutoffs_A)
    present = set(atoms.get_chemical_symbols())
    usable = {k: v for k, v in pairs.items() if k[0] in present and k[1] in present}
    counts = np.zeros(len(atoms), dtype=np.int64)
    if not usable:
        return counts
    i = neighbor_list("i", atoms, usable)
    np.add.at(counts, i, 1)
    return counts
