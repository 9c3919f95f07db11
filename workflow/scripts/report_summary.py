"""Headline numbers of the run (MD sigmas, mean F1, MoNet accuracy and MAE) in one table."""

from temflow.summary import headline_table, write_headline_table
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    table = headline_table(sm.input.get("vibrations"), sm.input.get("f1"), sm.input.get("monet"))
    log.info("%d headline numbers", len(table))
    write_headline_table(table, sm.output.csv)
