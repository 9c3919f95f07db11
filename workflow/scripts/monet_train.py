"""Train one MoNet task with the shared loop (resumes from work_dir after interruption)."""

import torch

from temflow.monet.train import train_task
from temflow.seeding import derive_seed
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p = sm.params
    torch.set_num_threads(sm.threads)
    card = train_task(
        sm.wildcards.task,
        sm.input.h5,
        sm.output.pt,
        sm.output.metrics,
        p.work_dir,
        training={**p.training, "device": p.device},
        val_fraction=p.val_fraction,
        augment_noise_step_std=p.augment_noise_step_std,
        augment_rotate=p.augment_rotate,
        augment_noise_free_fraction=p.augment_noise_free_fraction,
        # fresh tracks are drawn with the trajectory stage's parameters
        resimulate=p.trajectories if p.augment_resimulate else None,
        combine_axes=p.combine_axes,
        noise_input=p.noise_input,
        seed=derive_seed(*p.seed_key),
    )
    log.info("monet_%s: %s", sm.wildcards.task, card["metrics"])
