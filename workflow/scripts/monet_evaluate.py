"""Predictions of one trained MoNet on one held-out set -> results/eval/monet_{name}.csv."""

import torch

from temflow.monet.evaluate import evaluate_task
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    torch.set_num_threads(sm.threads)
    frame = evaluate_task(
        sm.params.task,
        sm.input.model,
        sm.input.h5,
        sm.output.csv,
        device=sm.params.device,
        batch_size=sm.params.batch_size,
    )
    log.info("%s: %d predictions", sm.wildcards.name, len(frame))
