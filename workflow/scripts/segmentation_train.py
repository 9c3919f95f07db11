"""Train one segmentation network (MSD-net or U-net) on one substrate's shards."""

from temflow.seeding import derive_seed
from temflow.segmentation.data import holdout_split, load_column_images
from temflow.segmentation.train import train_segmentation
from temflow.training import TrainConfig
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p, net, substrate = sm.params, sm.wildcards.net, sm.wildcards.substrate
    config = TrainConfig.from_dict(
        {**p.training, "device": p.device, "seed": derive_seed(*p.seed_key)}
    )
    # Hold the last training images out (best epoch; segmentation_calibrate's peak
    # threshold); the validation set stays untouched for the evaluation.
    train_all = load_column_images(sm.input.train)
    train_data, val_data = holdout_split(train_all, p.training_val_images)
    card = train_segmentation(
        net,
        p.arch,
        train_data,
        val_data,
        config,
        p.target_width_A,
        p.work_dir,
        sm.output.metrics,
        sm.output.model,
        {"train": sm.input.train},
        substrate=substrate,
        crop_px=p.crop_px,
        class_weighting=p.class_weights,
    )
    log.info("wrote %s (%s)", sm.output.model, card["metrics"])
