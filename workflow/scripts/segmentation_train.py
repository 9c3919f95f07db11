"""Train one segmentation network (MSD-net or U-net) on one substrate's shards."""

from temflow.seeding import derive_seed
from temflow.segmentation.data import load_column_images, subset
from temflow.segmentation.pipeline import train_segmentation
from temflow.training import TrainConfig
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p, net, substrate = sm.params, sm.wildcards.net, sm.wildcards.substrate
    seed = derive_seed(p.master_seed, "segmentation_train", net, substrate)
    config = TrainConfig.from_dict({**p.training, "device": p.device, "seed": seed})
    train_data = load_column_images(sm.input.train)
    val_all = load_column_images(sm.input.val)
    val_data = subset(val_all, range(min(len(val_all), p.training_val_images)))
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
        {"train": sm.input.train, "val": sm.input.val},
        substrate=substrate,
        crop_px=p.crop_px,
    )
    log.info("wrote %s (%s)", sm.output.model, card["metrics"])
