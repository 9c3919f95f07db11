"""Simulated 2-D particle trajectories: Brownian motion, FBM and CTRW (vectorised numpy).

Classes, in this order everywhere: ``brownian`` (0), ``fbm`` (1), ``ctrw`` (2).
Every generator returns positions of shape (N, L, 2) with the first frame at the origin;
the time step between frames is 1 and the diffusion coefficient ``D`` is per axis, so a
Brownian step has standard deviation ``sqrt(2 D)`` on each axis ("one step std").
"""

from temflow.trajectories.brownian import brownian
from temflow.trajectories.ctrw import ctrw, mittag_leffler_waits, pareto_waits
from temflow.trajectories.fbm import fbm, fgn_autocovariance
from temflow.trajectories.io import (
    CLASSES,
    TrajectorySet,
    add_localisation_noise,
    generate_set,
    read_trajectories,
    write_trajectories,
)

__all__ = [
    "CLASSES",
    "TrajectorySet",
    "add_localisation_noise",
    "brownian",
    "ctrw",
    "fbm",
    "fgn_autocovariance",
    "generate_set",
    "mittag_leffler_waits",
    "pareto_waits",
    "read_trajectories",
    "write_trajectories",
]
