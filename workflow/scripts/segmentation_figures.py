"""F1 histograms (Fig. 2), detections on one validation focal series (Fig. 1), summary,
F1 against the microscope parameters (figure and rank correlations)."""

from pathlib import Path

import pandas as pd

from temflow.plots.segmentation import (
    plot_detections,
    plot_f1_by_parameter,
    plot_f1_histograms,
    write_f1_correlations,
    write_summary,
)
from temflow.segmentation.data import load_column_images, subset
from temflow.segmentation.pipeline import (
    detect_columns,
    load_segmentation_model,
    resolve_threshold,
)
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p = sm.params
    tables = {tuple(Path(f).stem.rsplit("_", 1)): pd.read_csv(f) for f in sm.input.evals}
    write_summary(tables, sm.output.summary)
    plot_f1_histograms(tables, sm.output.histograms, dpi=p.dpi)
    write_f1_correlations(tables, sm.output.correlations)
    plot_f1_by_parameter(tables, sm.output.by_parameter, dpi=p.dpi)
    one = subset(load_column_images(sm.input.val), [p.figure_image])
    dets = {}
    for net in p.networks:
        path = next(m for m in sm.input.models if Path(m).stem == f"{net}_{p.figure_substrate}")
        model, card = load_segmentation_model(path, net, one)
        d = detect_columns(
            model,
            one,
            resolve_threshold(p.peak_threshold, card, path),
            p.min_separation_A,
            p.match_radius_A,
            p.border_A,
            device="cpu",
        )[0]
        dets[net] = (d.xy_A, d.class_index, d.match.false_positives(), d.match.misses())
    plot_detections(
        one.images[0],
        float(one.sampling_A[0]),
        d.true_xy_A,
        d.true_class,
        dets,
        one.classes,
        sm.output.detections,
        defoci_A=one.defoci_A[0] if one.defoci_A else None,
        title=f"{p.figure_substrate} validation image {p.figure_image}, "
        f"{float(one.sampling_A[0]):.4g} A/px",
        dpi=p.dpi,
    )
    log.info("figures written; summary:\n%s", pd.read_csv(sm.output.summary).to_string())
