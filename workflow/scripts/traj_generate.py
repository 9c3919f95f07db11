"""One trajectory set: generate (vectorised) and write results/trajectories/{set}.h5."""

from temflow.seeding import derive_seed
from temflow.trajectories import generate_set, write_trajectories
from temflow.trajectories.io import class_counts
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p = sm.params
    seed = derive_seed(*p.seed_key)
    data = generate_set(p.kind, p.n, p.trajectories, seed, noise_step_std=p.noise_step_std)
    log.info(
        "%s: %d x %d frames, seed %d, %s",
        sm.wildcards.set,
        len(data),
        data.positions.shape[1],
        seed,
        class_counts(data.label),
    )
    write_trajectories(sm.output.h5, data)
