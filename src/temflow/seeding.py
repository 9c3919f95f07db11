"""Deterministic per-job seeds derived from one master seed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np


def _key_to_int(key: object) -> int:
    # A stable hash (Python's hash() is salted per process).
    digest = hashlib.sha256(str(key).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def derive_seed_sequence(master_seed: int, *keys: object) -> np.random.SeedSequence:
    """SeedSequence for a job identified by ``keys`` (job name, shard index, ...)."""
    if master_seed < 0:
        raise ValueError(f"master seed must be non-negative, got {master_seed}")
    return np.random.SeedSequence(master_seed, spawn_key=tuple(_key_to_int(k) for k in keys))


def derive_seed(master_seed: int, *keys: object) -> int:
    """A 32-bit integer seed for a job identified by ``keys``."""
    return int(derive_seed_sequence(master_seed, *keys).generate_state(1)[0])


def derive_rng(master_seed: int, *keys: object) -> np.random.Generator:
    """A numpy Generator for a job identified by ``keys``."""
    return np.random.default_rng(derive_seed_sequence(master_seed, *keys))


#: The seed of each seeded workflow job, in one place: rule -> (stage, wildcard names). A
#: job's seed key is (master seed, stage, *its values of those wildcards); give it to
#: derive_seed / derive_rng. The stage names are what the seeds of existing results were
#: derived from: renaming one changes every seed of that stage.
WORKFLOW_SEEDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "md_run": ("md_run", ("system", "run")),
    "hrtem_shard": ("hrtem", ("dataset", "shard")),
    "trajectories_generate": ("trajectories", ("set",)),
    "monet_train": ("monet_train", ("task",)),
    "segmentation_train": ("segmentation_train", ("net", "substrate")),
}


def workflow_seed_key(
    master_seed: int, rule: str, wildcards: Mapping[str, str]
) -> tuple[int | str, ...]:
    """The seed key of one job of workflow ``rule`` (see :data:`WORKFLOW_SEEDS`).

    A numbered wildcard counts as its integer (``shard`` ``"0003"`` is shard 3), so that a
    key from wildcards equals one written with the job's index.
    """
    if rule not in WORKFLOW_SEEDS:
        raise KeyError(f"no seed is defined for workflow rule {rule!r}")
    stage, names = WORKFLOW_SEEDS[rule]
    values = (wildcards[name] for name in names)
    return (master_seed, stage, *(int(v) if v.isdigit() else v for v in values))
