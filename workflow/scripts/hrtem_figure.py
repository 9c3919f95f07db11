"""Figure: one focal series per dataset (bare, graphene) with labelled columns overlaid."""

from temflow.hrtem.shards import open_dataset
from temflow.plots.hrtem import plot_examples
from temflow.workflow import script_context

with script_context(snakemake):  # noqa: F821
    sm = snakemake  # noqa: F821
    examples = {
        name: open_dataset(path)[0]
        for name, path in zip(sm.params.datasets, sm.input.shards, strict=True)
    }
    plot_examples(examples, sm.output.png, dpi=sm.params.dpi)
