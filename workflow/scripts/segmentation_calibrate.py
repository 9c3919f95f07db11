"""The final segmentation model: the trained network with its peak threshold calibrated on
the training images held out of training (model card ``peak_threshold``)."""

from temflow.segmentation.detect import calibrate_model
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p = sm.params
    card = calibrate_model(
        sm.input.model,
        sm.output.model,
        sm.input.train,
        p.training_val_images,
        p.min_separation_A,
        p.match_radius_A,
        p.border_A,
        device=p.device,
    )
    calibration = card["peak_threshold"]
    log.info(
        "%s %s: peak threshold %.2f (mean F1 %.4f on %d held-out images)",
        sm.wildcards.net,
        sm.wildcards.substrate,
        calibration["value"],
        calibration["mean_f1"],
        calibration["n_images"],
    )
