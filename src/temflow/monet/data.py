"""MoNet inputs from trajectory sets, training augmentation, and the train/validation split.

The network sees positions in units of one step std (positions / sqrt(2 D)); MoNet
normalises each track anyway, so this only fixes the scale of the localisation-noise
augmentation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from temflow.errors import TemflowError
from temflow.models.monet import with_precision
from temflow.monet.tasks import MonetTask
from temflow.trajectories.io import TrajectorySet


def inputs_of(data: TrajectorySet, noise_input: bool = False) -> torch.Tensor:
    """Positions (N, L, 2) in units of one step std, float32; with ``noise_input`` a third
    column holds the set's localisation error std in the same unit (its
    ``noise_step_std``: what a noise-aware MoNet is told, see :class:`MoNet`)."""
    scale = np.sqrt(2.0 * data.diffusion)[:, None, None]
    x = torch.from_numpy((data.positions / scale).astype(np.float32))
    if not noise_input:
        return x
    return with_precision(x, float(data.attrs.get("noise_step_std", 0.0)))


def rotate_tracks(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Rotate each 2-D track ``(N, L, 2)`` about the origin by its own uniform random
    angle. Brownian motion, FBM with independent axes and CTRW with isotropic Gaussian
    jumps are all invariant under rotation, so the rotated track is an exact new sample
    of the same process; the network, which reads x and y separately, sees new
    projections every epoch."""
    angle = torch.rand(x.shape[0], generator=gen, dtype=x.dtype) * (2 * math.pi)
    cos, sin = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    px, py = x[..., 0], x[..., 1]
    return torch.stack((cos * px - sin * py, sin * px + cos * py), dim=-1)


def track_augment(
    max_step_std: float,
    rotate: bool = False,
    noise_free_fraction: float = 0.0,
    resimulate: tuple[MonetTask, Mapping[str, Any]] | None = None,
):
    """Training augmentation, per batch, in this order:

    1. ``resimulate=(task, trajectories params)``: replace every track by a fresh
       realisation of its process (:meth:`MonetTask.simulate`), as the reference MoNet
       draws its training data fresh at every step, while the stored set fixes the
       classes / alphas, the split and the validation tracks. It removes the
       overfitting to a finite training set.
    2. ``rotate``: :func:`rotate_tracks`.
    3. Gaussian localisation noise with std ~ U(0, ``max_step_std``) step std per track,
       except a random ``noise_free_fraction`` of the tracks, which stay noiseless: the
       share of noiseless tracks in the noise prior sets the classifier's trade-off
       between noiseless and noisy accuracy.

    ``None`` when all are off.
    """
    if max_step_std < 0:
        raise TemflowError(f"monet.augment_noise_step_std: expected >= 0, got {max_step_std:g}")
    if not 0.0 <= noise_free_fraction <= 1.0:
        raise TemflowError(
            f"monet.augment_noise_free_fraction: expected in [0, 1], got {noise_free_fraction:g}"
        )

    def augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator):
        # x: (N, L, 2) positions, or (N, L, 3) with the localisation error std column of
        # a noise-aware MoNet, which is kept true to the noise the positions carry.
        sigma = x[..., 2:] if x.shape[-1] == 3 else None
        x = x[..., :2]
        if resimulate is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=gen))
            task, params = resimulate
            x = task.simulate(y, x.shape[1], params, np.random.default_rng(seed))
            sigma = None if sigma is None else torch.zeros_like(sigma)
        if rotate:
            x = rotate_tracks(x, gen)
        if max_step_std > 0:
            std = torch.rand(x.shape[0], 1, 1, generator=gen) * max_step_std
            if noise_free_fraction > 0:
                noisy = torch.rand(x.shape[0], 1, 1, generator=gen) >= noise_free_fraction
                std = std * noisy
            x = x + std * torch.randn(x.shape, generator=gen)
            if sigma is not None:
                sigma = torch.sqrt(sigma**2 + std**2)
        return (x if sigma is None else torch.cat([x, sigma], dim=-1)), y

    return augment if (max_step_std > 0 or rotate or resimulate is not None) else None


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train/validation split (at least one trajectory in each)."""
    if not 0 < val_fraction < 1:
        raise TemflowError(f"monet.val_fraction: expected in (0, 1), got {val_fraction}")
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n_val >= n:
        raise TemflowError(
            f"monet.val_fraction: {val_fraction} of {n} trajectories leaves an "
            "empty training or validation set"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_val:], perm[:n_val]
