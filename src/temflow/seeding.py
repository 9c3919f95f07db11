"""Deterministic per-job seeds derived from one master seed."""

from __future__ import annotations

import hashlib

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
