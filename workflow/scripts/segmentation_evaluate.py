"""Per-image precision / recall / F1 of one trained network on its validation set."""

from temflow.io import atomic_path
from temflow.segmentation.data import load_column_images
from temflow.segmentation.pipeline import (
    detect_columns,
    evaluation_table,
    image_parameter,
    load_segmentation_model,
    resolve_threshold,
)
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p = sm.params
    data = load_column_images(sm.input.val)
    model, card = load_segmentation_model(sm.input.model, sm.wildcards.net, data)
    threshold = resolve_threshold(p.peak_threshold, card, sm.input.model)
    log.info("peak threshold %.3g (config: %s)", threshold, p.peak_threshold)
    detections = detect_columns(
        model,
        data,
        threshold,
        p.min_separation_A,
        p.match_radius_A,
        p.border_A,
        device=p.device,
    )
    table = evaluation_table(detections, data)
    table["dose_e_per_A2"] = image_parameter(sm.input.val, "dose_e_per_A2", data)
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
