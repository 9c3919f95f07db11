"""F1 histograms (Fig. 2), detections on one validation focal series (Fig. 1), summary,
F1 against the microscope parameters (figure and rank correlations, over the validation
and robustness sets together)."""

import pandas as pd

from temflow.evaluation.f1 import write_f1_correlations, write_summary
from temflow.plots.segmentation import plot_detections, plot_f1_by_parameter, plot_f1_histograms
from temflow.segmentation import IMAGE_PARAMETERS
from temflow.segmentation.evaluate import (
    figure_detections,
    pool_evaluation_tables,
    read_evaluation_tables,
)
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p = sm.params
    # input.evals is expand(net=networks, substrate=substrates): network-major order
    tables = read_evaluation_tables(sm.input.evals, p.networks, p.substrates)
    write_summary(tables, sm.output.summary)
    plot_f1_histograms(tables, sm.output.histograms, dpi=p.dpi)
    robustness = read_evaluation_tables(sm.input.robustness, p.networks, p.robustness_substrates)
    for (net, substrate), table in robustness.items():
        log.info("%s %s robustness set: mean F1 %.4f", net, substrate, table["f1"].mean())
    every_image = pool_evaluation_tables({"validation": tables, "robustness": robustness})
    write_f1_correlations(every_image, list(IMAGE_PARAMETERS), sm.output.correlations)
    plot_f1_by_parameter(every_image, sm.output.by_parameter, dpi=p.dpi)
    one, dets = figure_detections(
        dict(zip(p.networks, sm.input.models, strict=True)),
        sm.input.val,
        p.figure_image,
        p.peak_threshold,
        p.min_separation_A,
        p.match_radius_A,
        p.border_A,
    )
    truth = next(iter(dets.values()))
    plot_detections(
        one.images[0],
        float(one.sampling_A[0]),
        truth.true_xy_A,
        truth.true_class,
        {
            net: (d.xy_A, d.class_index, d.match.false_positives(), d.match.misses())
            for net, d in dets.items()
        },
        one.classes,
        sm.output.detections,
        defoci_A=one.defoci_A[0] if one.defoci_A else None,
        title=f"{p.figure_substrate} validation image {p.figure_image}, "
        f"{float(one.sampling_A[0]):.4g} A/px",
        dpi=p.dpi,
    )
    log.info("figures written; summary:\n%s", pd.read_csv(sm.output.summary).to_string())
