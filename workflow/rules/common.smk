# Helpers shared by every stage: config validation, paths, resources.
from pathlib import Path

from snakemake.utils import validate


validate(config, "../../config/schema.yaml")

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


# --- trajectories stage ---------------------------------------------------------------
TRAJ = config["trajectories"]
# set name -> (kind, number of trajectories, localisation noise override or None)
TRAJ_SETS = {
    "classify_train": ("classify", TRAJ["n_classify_train"], None),
    "classify_test": ("classify", TRAJ["n_classify_test"], None),
    "fbm_train": ("fbm", TRAJ["n_alpha_train"], None),
    "fbm_test": ("fbm", TRAJ["n_alpha_test"], None),
    "ctrw_train": ("ctrw", TRAJ["n_alpha_train"], None),
    "ctrw_test": ("ctrw", TRAJ["n_alpha_test"], None),
}
if TRAJ["noisy_test_noise_step_std"] > 0:
    TRAJ_SETS["classify_test_noisy"] = (
        "classify",
        TRAJ["n_classify_test"],
        TRAJ["noisy_test_noise_step_std"],
    )
TRAJ_H5 = results("trajectories", "{set}.h5")
TRAJ_TARGETS = expand(TRAJ_H5, set=list(TRAJ_SETS))

# --- MoNet stage ----------------------------------------------------------------------
MONET = config["monet"]
MONET_TRAIN_SET = {
    "classify": "classify_train",
    "fbm_alpha": "fbm_train",
    "ctrw_alpha": "ctrw_train",
}
# evaluation name -> (task of the model, held-out set)
MONET_EVALS = {
    "classify": ("classify", "classify_test"),
    "fbm_alpha": ("fbm_alpha", "fbm_test"),
    "ctrw_alpha": ("ctrw_alpha", "ctrw_test"),
}
if "classify_test_noisy" in TRAJ_SETS:
    MONET_EVALS["classify_noisy"] = ("classify", "classify_test_noisy")
MONET_MODEL = results("models", "monet_{task}.pt")
MONET_EVAL_CSV = results("eval", "monet_{name}.csv")
MONET_TARGETS = [
    *expand(MONET_MODEL, task=list(MONET_TRAIN_SET)),
    results("eval", "monet_summary.csv"),
    results("figures", "monet_confusion.png"),
    results("figures", "monet_alpha.png"),
]
