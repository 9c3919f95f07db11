"""Figure: sigma against coordination for each element, error bars over runs."""

import pandas as pd

from temflow.plots.md import plot_vibrations
from temflow.workflow import script_context

with script_context(snakemake):  # noqa: F821
    sm = snakemake  # noqa: F821
    plot_vibrations(pd.read_csv(sm.input.csv), sm.output.png, dpi=sm.params.dpi)
