# Helpers shared by every stage: config validation, paths, resources.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from temflow.config import describe_config_error

SCHEMA = workflow.source_path("../../config/schema.yaml")
try:
    validate(config, "../../config/schema.yaml")  # also fills in schema defaults
except WorkflowError:
    # Snakemake's message dumps the whole schema; say which key is wrong, in one line.
    raise WorkflowError(describe_config_error(config, SCHEMA)) from None

CONDA_ENV = "../../envs/temflow.yaml"
RESULTS = Path(config["results_dir"])
LOGS = RESULTS / "logs"
BENCH = RESULTS / "benchmarks"
MASTER_SEED = config["seed"]
DEVICE = config["device"]
PLOTS = config["plots"]


def results(*parts):
    """Path below the results directory, as a string for Snakemake."""
    return str(RESULTS.joinpath(*parts))


def log_path(rule_name, *wildcards):
    stem = "_".join([rule_name, *wildcards]) if wildcards else rule_name
    return str(LOGS / f"{stem}.log")


def bench_path(rule_name, *wildcards):
    stem = "_".join([rule_name, *wildcards]) if wildcards else rule_name
    return str(BENCH / f"{stem}.tsv")


# --- MD stage -------------------------------------------------------------------------
MD = config["md"]
MD_RUN_CSV = results("md", "runs", "{system}", "run{run}.csv")
MD_RUNS = expand(MD_RUN_CSV, system=MD["systems"], run=range(MD["n_runs"]))
MD_TARGETS = [results("md", "vibrations.csv"), results("figures", "vibrations.png")]
