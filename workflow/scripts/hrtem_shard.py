"""One HR-TEM shard: simulate n_images focal series with labels into an HDF5 file."""

from temflow.hrtem.config import HrtemConfig
from temflow.hrtem.generate import generate_shard
from temflow.hrtem.simulate import abtem_device_name
from temflow.md.vibrations import read_vibrations
from temflow.seeding import derive_seed
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p = sm.params
    hrtem = HrtemConfig.from_mapping(
        {"sample": p.sample, "microscope": p.microscope, "simulation": p.simulation}
    )
    device = abtem_device_name(p.device)
    dataset, shard = sm.wildcards.dataset, int(sm.wildcards.shard)
    log.info(
        "%s shard %d: %d images on %s (substrate %s)",
        dataset,
        shard,
        p.n_images,
        device,
        p.substrate,
    )
    generate_shard(
        sm.output.h5,
        hrtem,
        dataset=dataset,
        substrate=p.substrate,
        shard=shard,
        n_images=p.n_images,
        shard_seed=derive_seed(*p.seed_key),
        vibrations=read_vibrations(sm.input.vibrations),
        cutoffs_A=p.cutoffs_A,
        device=device,
    )
