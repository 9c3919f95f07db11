"""Per-image precision / recall / F1 of one trained network on its validation set."""

from temflow.io import atomic_path
from temflow.segmentation.evaluate import evaluate_segmentation
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p = sm.params
    table, threshold = evaluate_segmentation(
        sm.input.model,
        sm.wildcards.net,
        sm.input.val,
        p.peak_threshold,
        p.min_separation_A,
        p.match_radius_A,
        p.border_A,
        device=p.device,
        image_parameter_keys=p.image_parameters,
    )
    log.info("peak threshold %.3g (config: %s)", threshold, p.peak_threshold)
    with atomic_path(sm.output.csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    log.info(
        "%s %s: %d images, mean F1 %.4f, median %.4f",
        sm.wildcards.net,
        sm.wildcards.substrate,
        len(table),
        table["f1"].mean(),
        table["f1"].median(),
    )
