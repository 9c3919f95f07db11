"""MoNet summary: accuracy, calibration, confusion matrix, alpha MAE (overall and by range),
figures."""

import pandas as pd

from temflow.evaluation.calibration import reliability_table
from temflow.io import atomic_path
from temflow.monet.evaluate import class_probabilities, summarise
from temflow.plots.monet import plot_alpha, plot_confusion, plot_reliability
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    inp = sm.input
    noisy = pd.read_csv(inp.noisy) if "noisy" in inp.keys() else None
    frames = {"fbm": pd.read_csv(inp.fbm), "ctrw": pd.read_csv(inp.ctrw)}
    classify = pd.read_csv(inp.classify)
    summary, conf, by_range = summarise(classify, noisy, **frames)
    for frame, path, index in (
        (summary, sm.output.summary, False),
        (conf, sm.output.confusion, True),
        (by_range, sm.output.by_range, False),
    ):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=index)
    log.info("MoNet summary:\n%s", summary.to_string(index=False))
    values = summary.set_index("metric")["value"]
    plot_confusion(
        conf,
        sm.output.confusion_png,
        values["accuracy"],
        values.get("accuracy_noisy"),
        dpi=sm.params.dpi,
    )
    plot_alpha(frames, by_range, sm.output.alpha_png, dpi=sm.params.dpi)
    sets = {"noiseless": classify} | ({} if noisy is None else {"noisy": noisy})
    tables = {k: reliability_table(class_probabilities(v), v.label) for k, v in sets.items()}
    eces = {"noiseless": values["ece"]} | ({} if noisy is None else {"noisy": values["ece_noisy"]})
    plot_reliability(tables, eces, sm.output.reliability_png, dpi=sm.params.dpi)
