"""Aggregate MD runs into results/md/vibrations.csv."""

import pandas as pd

from temflow.md.vibrations import aggregate_runs, write_table
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    runs = [pd.read_csv(path) for path in sm.input.runs]
    table = aggregate_runs(runs)
    log.info(
        "aggregated %d runs into %d (system, element, coordination) rows", len(runs), len(table)
    )
    write_table(table, sm.output.csv)
