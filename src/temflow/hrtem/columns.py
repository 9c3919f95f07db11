"""Column labels: group atoms by projected position; Gaussian target maps for training.

Image frame (used by every temflow HR-TEM array): an image has shape (H, W) = (ny, nx);
pixel ``[i, j]`` samples the point ``x = j * sampling_A``, ``y = i * sampling_A`` of the
simulation cell (abTEM's grid points, transposed so that x runs along the width). Column
positions ``x_A, y_A`` are in A in the same frame, so ``x_A / sampling_A`` is a (sub-)pixel
column index and ``y_A / sampling_A`` a row index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from ase import Atoms
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from temflow.errors import TemflowError

#: Column classes, in this order everywhere.
CLASSES: tuple[str, ...] = ("Mo", "S2", "S1")


def find_columns(
    atoms: Atoms,
    field_A: tuple[float, float],
    tolerance_A: float = 0.5,
    ignore: Sequence[str] = ("C",),
) -> pd.DataFrame:
    """Atomic columns of ``atoms`` viewed along z, as a table ``x_A, y_A, class``.

    Atoms (except the ``ignore`` elements, the unlabelled substrate) whose projected
    positions lie within ``tolerance_A`` of each other form one column; its position is
    their mean (x, y). Class index into :data:`CLASSES`: one Mo -> ``Mo``, two S -> ``S2``,
    one S -> ``S1``; any other composition is an error. Columns whose centre lies outside
    ``[0, Lx) x [0, Ly)`` are dropped. Rows are sorted by (y, x) for reproducibility.
    """
    symbols = np.array(atoms.get_chemical_symbols())
    mask = ~np.isin(symbols, list(ignore))
    xy = atoms.positions[mask, :2]
    sym = symbols[mask]
    empty = pd.DataFrame(
        {"x_A": np.zeros(0), "y_A": np.zeros(0), "class": np.zeros(0, dtype=np.int64)}
    )
    if len(xy) == 0:
        return empty
    pairs = cKDTree(xy).query_pairs(tolerance_A, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(xy), len(xy)))
    n, label = connected_components(graph, directed=False)
    n_mo = np.bincount(label, weights=sym == "Mo", minlength=n)
    n_s = np.bincount(label, weights=sym == "S", minlength=n)
    n_all = np.bincount(label, minlength=n)
    cls = np.full(n, -1)
    cls[(n_mo == 1) & (n_all == 1)] = CLASSES.index("Mo")
    cls[(n_s == 2) & (n_all == 2)] = CLASSES.index("S2")
    cls[(n_s == 1) & (n_all == 1)] = CLASSES.index("S1")
    if np.any(cls < 0):
        bad = int(np.flatnonzero(cls < 0)[0])
        raise TemflowError(
            f"column with {int(n_mo[bad])} Mo and {int(n_s[bad])} S atoms (of {n_all[bad]}) "
            f"is not one of {CLASSES}; check the sample or tolerance_A={tolerance_A}"
        )
    x = np.bincount(label, weights=xy[:, 0], minlength=n) / n_all
    y = np.bincount(label, weights=xy[:, 1], minlength=n) / n_all
    inside = (x >= 0) & (x < field_A[0]) & (y >= 0) & (y < field_A[1])
    table = pd.DataFrame({"x_A": x[inside], "y_A": y[inside], "class": cls[inside]})
    return table.sort_values(["y_A", "x_A"], ignore_index=True)


def class_counts(columns: pd.DataFrame) -> dict[str, int]:
    """Number of columns per class name."""
    counts = np.bincount(np.asarray(columns["class"], dtype=int), minlength=len(CLASSES))
    return {name: int(c) for name, c in zip(CLASSES, counts, strict=True)}


def gaussian_targets(
    columns: pd.DataFrame | np.ndarray,
    shape: tuple[int, int],
    sampling_A: float,
    width_A: float = 0.4,
    n_classes: int = len(CLASSES),
) -> np.ndarray:
    """Training targets (n_classes, H, W) float32: a unit-height Gaussian per column.

    ``columns`` has fields ``x_A, y_A, class`` (DataFrame or structured array); the
    Gaussian of standard deviation ``width_A`` goes into the column's class channel
    (overlapping Gaussians of one class combine by maximum). Frame as in this module's
    docstring.
    """
    h, w = shape
    out = np.zeros((n_classes, h, w), dtype=np.float32)
    x = np.asarray(columns["x_A"], dtype=float) / sampling_A
    y = np.asarray(columns["y_A"], dtype=float) / sampling_A
    cls = np.asarray(columns["class"], dtype=int)
    s = width_A / sampling_A
    r = int(np.ceil(4 * s))
    for xi, yi, ci in zip(x, y, cls, strict=True):
        j0, i0 = int(round(xi)), int(round(yi))
        jj = np.arange(max(j0 - r, 0), min(j0 + r + 1, w))
        ii = np.arange(max(i0 - r, 0), min(i0 + r + 1, h))
        if len(jj) == 0 or len(ii) == 0:
            continue
        g = np.exp(-((ii[:, None] - yi) ** 2 + (jj[None, :] - xi) ** 2) / (2 * s * s))
        block = out[ci, ii[0] : ii[-1] + 1, jj[0] : jj[-1] + 1]
        np.maximum(block, g.astype(np.float32), out=block)
    return out
