# Helpers shared by every stage: config validation, paths, the input and params functions
# of every rule, seeds and wildcard constraints.
from pathlib import Path

from snakemake.exceptions import WorkflowError

from temflow.config import prepare_config
from temflow.errors import TemflowError
from temflow.hrtem.config import HrtemConfig, dataset_section
from temflow.seeding import workflow_seed_key
from temflow.segmentation import IMAGE_PARAMETERS
from temflow.trajectories.io import GENERATOR_KEYS
from temflow.workflow import local_cuda_gpu

SCHEMA = workflow.source_path("../../config/schema.yaml")
# Nested --config values arrive as strings (md="{temperature_K: 600}" gives '600'): they
# get the types the schema declares, then the schema's defaults.
try:
    _prepared = prepare_config(config, SCHEMA)
except TemflowError as _err:
    raise WorkflowError(str(_err)) from None
config.clear()
config.update(_prepared)
# What the schema cannot say (an inverted range, an impossible contamination density):
# checked before any job runs, so that no stage is computed for a config that would fail.
try:
    HrtemConfig.from_mapping(config["hrtem"])
except TemflowError as _err:
    raise WorkflowError(str(_err)) from None


def _sorted_keys(value):
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


# Params are compared by their text: with sorted keys, reordering keys in a config file
# does not re-run anything.
_canonical = _sorted_keys(config)
config.clear()
config.update(_canonical)

CONDA_ENV = "../../envs/temflow.yaml"
RESULTS = Path(config["results_dir"])
LOGS = RESULTS / "logs"
BENCH = RESULTS / "benchmarks"
MASTER_SEED = config["seed"]
DEVICE = config["device"]
PLOTS = config["plots"]


def _training_gpus():
    """GPUs a training job requests. None for a local run without a GPU: the profile's pool
    of one GPU would otherwise queue the CPU trainings, which run side by side."""
    if DEVICE == "cpu":
        return 0
    if DEVICE == "auto" and workflow.local_exec:
        return int(local_cuda_gpu())
    return 1


TRAINING_GPUS = _training_gpus()


def results(*parts):
    """Path below the results directory, as a string for Snakemake."""
    return str(RESULTS.joinpath(*parts))


def log_path(rule_name, *wildcards):
    stem = "_".join([rule_name, *wildcards]) if wildcards else rule_name
    return str(LOGS / f"{stem}.log")


def bench_path(rule_name, *wildcards):
    stem = "_".join([rule_name, *wildcards]) if wildcards else rule_name
    return str(BENCH / f"{stem}.tsv")


def one_of(names):
    """Wildcard constraint matching exactly these names (from the config)."""
    return "|".join(names)


def job_seed(rule):
    """Params function: the seed key of each job of `rule`, (master seed, stage,
    *wildcards) from temflow.seeding.WORKFLOW_SEEDS, for derive_seed / derive_rng.

    It takes `output`, which makes it a param derived from the output path: Snakemake does
    not track it, since it follows from the tracked master_seed param and the wildcards.
    """

    def seed_key(wildcards, output):
        return list(workflow_seed_key(MASTER_SEED, rule, wildcards))

    return seed_key


def model_work_dir(stem):
    """Params function: results/models/work/<stem> (wildcards filled in), where a training
    job keeps its checkpoints: outside its outputs, so that an interrupted job resumes.
    """

    def work_dir(wildcards):
        return results("models", "work", stem.format(**dict(wildcards.items())))

    return work_dir


# --- MD stage -------------------------------------------------------------------------
MD = config["md"]
MD_RUN_CSV = results("md", "runs", "{system}", "run{run}.csv")
MD_STRUCTURE_FILES = MD["structure_files"]
for _name, _path in MD_STRUCTURE_FILES.items():
    if not Path(_path).is_file():
        raise WorkflowError(
            f"config error at md.structure_files.{_name}: no file {_path}"
        )
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


# --- HRTEM stage ----------------------------------------------------------------------
HRTEM = config["hrtem"]
HRTEM_SHARD_H5 = results("hrtem", "{dataset}", "shard_{shard}.h5")
for _name in HRTEM["figure_datasets"]:
    if _name not in HRTEM["datasets"]:
        raise WorkflowError(
            f"config error at hrtem.figure_datasets: {_name!r} is not one of "
            f"hrtem.datasets ({', '.join(HRTEM['datasets'])})"
        )


# A dataset's own sample/microscope keys (e.g. a validation set with contamination drawn),
# checked before any job runs as the shared ones are.
try:
    HRTEM_SECTIONS = {name: dataset_section(HRTEM, name) for name in HRTEM["datasets"]}
except TemflowError as _err:
    raise WorkflowError(str(_err)) from None


def hrtem_dataset_sample(wildcards):
    """hrtem.sample with the dataset's own keys (hrtem.datasets.<name>.sample)."""
    return HRTEM_SECTIONS[wildcards.dataset]["sample"]


def hrtem_dataset_microscope(wildcards):
    """hrtem.microscope with the dataset's own keys (hrtem.datasets.<name>.microscope)."""
    return HRTEM_SECTIONS[wildcards.dataset]["microscope"]


def hrtem_n_shards(dataset):
    n = HRTEM["datasets"][dataset]["n_images"]
    return -(-n // HRTEM["images_per_shard"])


def hrtem_shard_size(dataset, shard):
    n = HRTEM["datasets"][dataset]["n_images"]
    return min(HRTEM["images_per_shard"], n - shard * HRTEM["images_per_shard"])


def hrtem_substrate(wildcards):
    return HRTEM["datasets"][wildcards.dataset]["substrate"]


def hrtem_shard_images(wildcards):
    """Number of images in one shard (the last shard of a dataset may hold fewer)."""
    return hrtem_shard_size(wildcards.dataset, int(wildcards.shard))


def hrtem_shards(dataset):
    """Every shard path of one dataset (what the segmentation stage consumes)."""
    return [
        HRTEM_SHARD_H5.format(dataset=dataset, shard=f"{k:04d}")
        for k in range(hrtem_n_shards(dataset))
    ]


HRTEM_ALL_SHARDS = [p for ds in HRTEM["datasets"] for p in hrtem_shards(ds)]
HRTEM_TARGETS = [*HRTEM_ALL_SHARDS, results("figures", "hrtem_examples.png")]


# --- segmentation stage ---------------------------------------------------------------
SEG = config["segmentation"]
# segmentation_train writes the trained network, segmentation_calibrate the final model
# (the same weights, with the peak threshold calibrated for the detection settings in its
# card): a change of detection settings recalibrates without retraining.
SEG_TRAINED = results("models", "trained", "{net}_{substrate}.pt")
SEG_TRAINED_CARD = results("models", "trained", "{net}_{substrate}.json")
SEG_METRICS = results("models", "{net}_{substrate}_metrics.csv")
SEG_MODEL = results("models", "{net}_{substrate}.pt")
SEG_CARD = results("models", "{net}_{substrate}.json")
SEG_EVAL = results("eval", "{net}_{substrate}.csv")
SEG_MODELS = expand(SEG_MODEL, net=SEG["networks"], substrate=SEG["substrates"])
SEG_EVALS = expand(SEG_EVAL, net=SEG["networks"], substrate=SEG["substrates"])
# The same models on each substrate's robustness set (segmentation.datasets.<s>.robustness):
# validation images under conditions the training data leave out, for f1_by_parameter.
SEG_ROBUSTNESS_EVAL = results("eval", "robustness", "{net}_{substrate}.csv")
SEG_ROBUSTNESS_SUBSTRATES = [
    s for s in SEG["substrates"] if SEG["datasets"][s].get("robustness")
]
SEG_ROBUSTNESS_EVALS = expand(
    SEG_ROBUSTNESS_EVAL, net=SEG["networks"], substrate=SEG_ROBUSTNESS_SUBSTRATES
)
for _substrate in SEG["substrates"]:
    for _split, _name in SEG["datasets"][_substrate].items():
        if _name is None:
            continue
        _where = f"segmentation.datasets.{_substrate}.{_split}"
        if _name not in HRTEM["datasets"]:
            raise WorkflowError(
                f"config error at {_where}: {_name!r} is not one of hrtem.datasets "
                f"({', '.join(HRTEM['datasets'])})"
            )
        if HRTEM["datasets"][_name]["substrate"] != _substrate:
            raise WorkflowError(
                f"config error at {_where}: dataset {_name!r} is simulated on "
                f"{HRTEM['datasets'][_name]['substrate']!r}, not {_substrate!r}"
            )
# The simulation parameters each per-image evaluation row carries (read from the shards), so
# that F1 can be read against them (f1_by_parameter). A params entry: changing the list
# re-evaluates, and evaluation tables written before it existed are rewritten.
SEG_IMAGE_PARAMETERS = list(IMAGE_PARAMETERS)


def seg_shards(substrate, split):
    """HR-TEM shards of one substrate's training or validation set."""
    return hrtem_shards(SEG["datasets"][substrate][split])


def seg_train_shards(wildcards):
    return seg_shards(wildcards.substrate, "train")


def seg_val_shards(wildcards):
    return seg_shards(wildcards.substrate, "val")


def seg_robustness_shards(wildcards):
    return seg_shards(wildcards.substrate, "robustness")


def seg_arch(wildcards):
    """Architecture arguments of one network (segmentation.msdnet / segmentation.unet)."""
    return SEG[wildcards.net]


def seg_training(wildcards):
    """The training settings of one network: `training` updated by `network_training`."""
    return {**SEG["training"], **SEG["network_training"][wildcards.net]}


def seg_detection(*, peak_threshold=True):
    """Params entries of the column detection, one set for the calibration, evaluation and
    figure rules: min_separation_A, match_radius_A, border_A and, except for the
    calibration (which finds it), peak_threshold."""
    keys = ["min_separation_A", "match_radius_A", "border_A"]
    if peak_threshold:
        keys.append("peak_threshold")
    return {key: SEG[key] for key in keys}


SEG_TARGETS = [
    *SEG_EVALS,
    *SEG_ROBUSTNESS_EVALS,
    results("eval", "f1_summary.csv"),
    results("eval", "f1_by_parameter.csv"),
    results("figures", "f1_histograms.png"),
    results("figures", "f1_by_parameter.png"),
    results("figures", "detections.png"),
]


# --- trajectories stage ---------------------------------------------------------------
TRAJ = config["trajectories"]
# The generator parameters that resimulated MoNet training tracks use
# (monet.augment_resimulate); set sizes and test noise do not touch the training.
TRAJ_GENERATOR = {key: TRAJ[key] for key in GENERATOR_KEYS}
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
# What every set shares (trajectories_generate)
TRAJ_SETTINGS = {
    key: TRAJ[key]
    for key in (
        "length",
        "fbm_alpha_range",
        "ctrw_alpha_range",
        "diffusion_range_px2_per_frame",
        "ctrw_waiting_time",
        "exposure_time_range_frames",
        "noise_step_std",
    )
}


def traj_kind(wildcards):
    return TRAJ_SETS[wildcards.set][0]


def traj_size(wildcards):
    return TRAJ_SETS[wildcards.set][1]


def traj_noise_step_std(wildcards):
    """The set's own localisation noise (None: trajectories.noise_step_std)."""
    return TRAJ_SETS[wildcards.set][2]


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


def monet_task_setting(key):
    """Params function: one augmentation setting of a MoNet task, `monet.<key>` unless
    `monet.task_augmentation.<task>` changes it."""

    def setting(wildcards):
        return MONET["task_augmentation"][wildcards.task].get(key, MONET[key])

    return setting


def monet_task_training(wildcards):
    """Params function: `monet.training` with the task's epochs from `monet.task_epochs`."""
    epochs = MONET["task_epochs"].get(wildcards.task, MONET["training"]["epochs"])
    return {**MONET["training"], "epochs": epochs}


def monet_train_set(wildcards):
    return TRAJ_H5.format(set=MONET_TRAIN_SET[wildcards.task])


def monet_eval_task(wildcards):
    """The task of the model that evaluation `name` tests."""
    return MONET_EVALS[wildcards.name][0]


def monet_eval_model(wildcards):
    return MONET_MODEL.format(task=monet_eval_task(wildcards))


def monet_eval_set(wildcards):
    return TRAJ_H5.format(set=MONET_EVALS[wildcards.name][1])


def monet_report_inputs(wildcards):
    """Every evaluation table, named as monet_report.py reads them: classify, fbm, ctrw and
    (with a noisy test set) noisy."""
    return {
        (
            "noisy" if name == "classify_noisy" else name.split("_")[0]
        ): MONET_EVAL_CSV.format(name=name)
        for name in MONET_EVALS
    }


MONET_TARGETS = [
    *expand(MONET_MODEL, task=list(MONET_TRAIN_SET)),
    results("eval", "monet_summary.csv"),
    results("figures", "monet_confusion.png"),
    results("figures", "monet_alpha.png"),
    results("figures", "monet_reliability.png"),
]


# --- report ---------------------------------------------------------------------------
def report_summary_inputs(wildcards):
    """The summary tables of the stages this config runs."""
    return {
        "vibrations": results("md", "vibrations.csv"),
        "f1": results("eval", "f1_summary.csv"),
        "monet": results("eval", "monet_summary.csv"),
    }


REPORT_TARGETS = [results("summary.csv")]


# Every wildcard takes only the names the config defines.
wildcard_constraints:
    system=one_of(MD_SYSTEMS),
    run="[0-9]+",
    dataset=one_of(HRTEM["datasets"]) or "none",
    shard="[0-9]{4}",
    net=one_of(SEG["networks"]),
    substrate=one_of(SEG["substrates"]),
    set=one_of(TRAJ_SETS),
    task=one_of(MONET_TRAIN_SET),
    name=one_of(MONET_EVALS),
