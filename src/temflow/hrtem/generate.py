"""One shard of HR-TEM training data: sample -> sigmas -> microscope -> image -> labels."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from temflow.errors import TemflowError
from temflow.hrtem.columns import CLASSES, find_columns
from temflow.hrtem.config import HrtemConfig
from temflow.hrtem.frames import draw_frame_rotations, draw_frame_shifts, shift_attrs
from temflow.hrtem.microscope import draw_output_sampling, sample_microscope
from temflow.hrtem.samples import make_sample
from temflow.hrtem.shards import ImageRecord, write_shard
from temflow.hrtem.simulate import image_field, simulate_image
from temflow.io import software_versions
from temflow.md.vibrations import lookup_sigmas
from temflow.seeding import derive_seed

log = logging.getLogger(__name__)

#: Key of the random stream (derived from the image seed) that draws the contamination.
CONTAMINATION_STREAM = "contamination"
#: Key of the frame rotations' own random stream (off by default: nothing else changes).
FRAME_ROTATION_STREAM = "frame_rotation"


def make_image(
    hrtem: HrtemConfig,
    substrate: str,
    seed: int,
    vibrations: pd.DataFrame,
    cutoffs_A: Mapping[str, float],
    device: str = "cpu",
    noise: bool = True,
) -> ImageRecord:
    """One image, reproducible from ``seed`` alone (sample, parameters, phonons, noise).

    The amorphous-carbon contamination is drawn from a stream of its own
    (``derive_seed(seed, CONTAMINATION_STREAM)``), so with it on or off an image has the
    same specimen, microscope parameters, phonon seed and noise stream.

    The output sampling ``s`` is drawn first; the image has ``(H, W) = round(field / s)``
    pixels (:func:`~temflow.hrtem.simulate.output_shape`) and the specimen cell is the
    field ``(W * s, H * s)`` (:func:`~temflow.hrtem.simulate.image_field`, within half a
    pixel of ``hrtem.sample.field_of_view_A``). ``sampling_A``, ``image_shape_px`` (H, W)
    and ``field_of_view_A`` (Lx, Ly) are stored with the image's other parameters, and so
    are the frame shifts and rotations drawn in ``hrtem.microscope.frame_shift_A`` and
    ``frame_rotation_deg`` (:func:`~temflow.hrtem.frames.shift_attrs`; the rotations from
    their own stream); the columns are in the frame of the
    unshifted reference (middle) channel.
    ``device`` is abTEM's (cpu|gpu, :func:`~temflow.hrtem.simulate.abtem_device_name`).
    """
    rng = np.random.default_rng(seed)
    sim = hrtem.simulation
    sampling = draw_output_sampling(sim.output_sampling_A, rng)
    field = image_field(hrtem.sample.field_of_view_A, sampling)
    # Contamination from its own stream: turning it on changes nothing else of the image.
    contamination_rng = np.random.default_rng(derive_seed(seed, CONTAMINATION_STREAM))
    sample = make_sample(
        hrtem.sample, substrate, rng, cutoffs_A, field_A=field, contamination_rng=contamination_rng
    )
    atoms = sample.atoms
    sigmas = lookup_sigmas(vibrations, atoms.get_chemical_symbols(), sample.coordination)
    params = sample_microscope(hrtem.microscope, rng)
    phonon_seed = int(rng.integers(2**31 - 1))
    shifts = draw_frame_shifts(hrtem.microscope.frame_shift_A, len(params.defoci_A), rng)
    rotations = draw_frame_rotations(
        hrtem.microscope.frame_rotation_deg,
        len(params.defoci_A),
        np.random.default_rng(derive_seed(seed, FRAME_ROTATION_STREAM)),
    )
    images = simulate_image(
        atoms,
        sigmas,
        params,
        n_configs=sim.n_configs,
        seed=phonon_seed,
        potential_sampling_A=sim.potential_sampling_A,
        slice_thickness_A=sim.slice_thickness_A,
        output_sampling_A=sampling,
        rng=rng if noise else None,
        device=device,
        frame_shifts_A=shifts,
        frame_rotations_deg=rotations,
    )
    columns = find_columns(atoms, sample.field_A)
    attrs: dict[str, Any] = {
        **params.as_dict(),
        "sampling_A": sampling,
        "image_shape_px": np.asarray(images.shape[-2:], dtype=np.int64),
        "field_of_view_A": [float(x) for x in sample.field_A],
        "seed": int(seed),
        "phonon_seed": phonon_seed,
        "n_configs": int(sim.n_configs),
        **shift_attrs(shifts, rotations),
        **sample.info,
    }
    return ImageRecord(
        images=images,
        columns=columns,
        positions_A=atoms.positions.copy(),
        numbers=atoms.numbers.copy(),
        cell_A=np.asarray(atoms.cell),
        sigmas_A=sigmas,
        coordination=sample.coordination,
        attrs=attrs,
    )


def generate_shard(
    path: str | Path,
    hrtem: HrtemConfig,
    dataset: str,
    substrate: str,
    shard: int,
    n_images: int,
    shard_seed: int,
    vibrations: pd.DataFrame,
    cutoffs_A: Mapping[str, float],
    device: str = "cpu",
) -> None:
    """Simulate ``n_images`` and write them to ``path`` (atomically; nothing on failure).

    ``hrtem`` comes checked from :meth:`HrtemConfig.from_mapping`. Each image's seed
    derives from (``shard_seed``, image index); the workflow derives the shard seed from
    the master seed with the other job seeds (:data:`temflow.seeding.WORKFLOW_SEEDS`).
    """
    if n_images < 1:
        raise TemflowError(f"shard {shard} of {dataset} would hold {n_images} images")
    records = []
    for i in tqdm(range(n_images), desc=f"{dataset} shard {shard}", mininterval=5):
        seed = derive_seed(shard_seed, i)
        records.append(make_image(hrtem, substrate, seed, vibrations, cutoffs_A, device))
    attrs = {
        "sampling_A": list(hrtem.simulation.output_sampling_A),
        "field_of_view_A": list(hrtem.sample.field_of_view_A),
        "classes": list(CLASSES),
        "defocus_offsets_A": list(hrtem.microscope.defocus_offsets_A),
        "dataset": dataset,
        "substrate": substrate,
        "shard": int(shard),
        "shard_seed": int(shard_seed),
        "device": device,
        "software_versions": software_versions(),
        "config": {**hrtem.as_dict(), "cutoffs_A": dict(cutoffs_A)},
    }
    write_shard(path, records, attrs)


def shard_sizes(n_images: int, images_per_shard: int) -> list[int]:
    """Split ``n_images`` into shards of ``images_per_shard`` (the last may be smaller)."""
    if n_images < 1 or images_per_shard < 1:
        raise TemflowError("hrtem dataset n_images and images_per_shard must be >= 1")
    full, rest = divmod(n_images, images_per_shard)
    return [images_per_shard] * full + ([rest] if rest else [])
