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
MD_STRUCTURE_FILES = MD["structure_files"]
for _name, _path in MD_STRUCTURE_FILES.items():
    if not Path(_path).is_file():
        raise WorkflowError(f"config error at md.structure_files.{_name}: no file {_path}")
MD_SYSTEMS = [*MD["systems"], *MD_STRUCTURE_FILES]
MD_RUNS = expand(MD_RUN_CSV, system=MD_SYSTEMS, run=range(MD["n_runs"]))


def md_system_params(wildcards):
    """Config of one MD system: a built-in section, or the path of a user's structure."""
    if wildcards.system in MD_STRUCTURE_FILES:
        return {"path": MD_STRUCTURE_FILES[wildcards.system]}
    return MD[wildcards.system]


def md_structure_input(wildcards):
    """A user's structure file is an input, so editing it re-runs its MD."""
    return MD_STRUCTURE_FILES.get(wildcards.system, [])
MD_TARGETS = [results("md", "vibrations.csv"), results("figures", "vibrations.png")]
