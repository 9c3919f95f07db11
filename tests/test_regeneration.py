"""After a completed run, changing one value re-runs exactly the jobs that depend on it.

Uses Snakemake's own rerun logic (the jobs its API plans for the finished config/test.yaml
results after a change), not file times faked by the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from workflow_api import planned, query

pytestmark = pytest.mark.workflow

MD_RULES = {"md_run", "md_vibrations", "md_figure"}
MONET_RULES = {"trajectories_generate", "monet_train", "monet_evaluate", "monet_report"}
REPORT_RULES = {"report_summary"}
TRAINING_RULES = {"segmentation_train", "monet_train"}
SIMULATION_RULES = {"md_run", "hrtem_shard", "trajectories_generate"}


def _plan(results: Path, tmp_path: Path, change: dict) -> list[dict]:
    """The jobs Snakemake plans for config/test.yaml with ``change`` merged over it (as a
    further --configfile: mappings merge key by key, other values replace)."""
    path = tmp_path / "change.yaml"
    path.write_text(yaml.safe_dump(change))
    return query(results, configfiles=("config/test.yaml", str(path)))["jobs"]


def _planned_rules(results: Path, tmp_path: Path, change: dict) -> set[str]:
    return planned({"jobs": _plan(results, tmp_path, change)})


def test_nothing_to_do_after_a_complete_run(workflow_results, tmp_path):
    assert _planned_rules(workflow_results, tmp_path, {}) == set()


def test_md_temperature_reruns_md_and_downstream_not_monet(workflow_results, tmp_path):
    rules = _planned_rules(workflow_results, tmp_path, {"md": {"temperature_K": 600}})
    assert MD_RULES <= rules
    assert {"hrtem_shard", "segmentation_train", "report_summary"} <= rules
    assert not rules & MONET_RULES


def test_figure_only_parameter_reruns_only_figures(workflow_results, tmp_path, test_config):
    change = {"plots": {"dpi": test_config["plots"]["dpi"] + 10}}
    rules = _planned_rules(workflow_results, tmp_path, change)
    assert "md_figure" in rules and "monet_report" in rules
    figure_rules = {
        r for r in rules if r.endswith(("_figure", "_report", "_figures")) or r in REPORT_RULES
    }
    assert rules == figure_rules, rules - figure_rules


def test_trajectory_parameter_reruns_only_monet(workflow_results, tmp_path):
    change = {"trajectories": {"diffusion_range_px2_per_frame": [0.4, 2.0]}}
    rules = _planned_rules(workflow_results, tmp_path, change)
    assert rules == MONET_RULES | REPORT_RULES


def test_microscope_parameter_reruns_simulation_and_downstream_only(
    workflow_results, tmp_path, test_config
):
    low, high = test_config["hrtem"]["microscope"]["dose_e_per_A2"]
    change = {"hrtem": {"microscope": {"dose_e_per_A2": [low * 1.5, high]}}}
    rules = _planned_rules(workflow_results, tmp_path, change)
    assert not rules & (MD_RULES | MONET_RULES)
    assert {
        "hrtem_shard",
        "hrtem_figure",
        "segmentation_train",
        "segmentation_calibrate",
        "segmentation_evaluate",
        "segmentation_figures",
        "report_summary",
    } <= rules


def test_more_training_images_add_shards_and_retrain_only_that_substrate(
    workflow_results, tmp_path, test_config
):
    """Growing a dataset by whole shards keeps the shards already written (each shard's
    images depend on its own index, not on the dataset size) and retrains only the
    networks that read that dataset."""
    per_shard = test_config["hrtem"]["images_per_shard"]
    change = {"hrtem": {"datasets": {"train_bare": {"n_images": 2 * per_shard}}}}
    jobs = _plan(workflow_results, tmp_path, change)
    shards = [job["wildcards"] for job in jobs if job["rule"] == "hrtem_shard"]
    assert shards == [{"dataset": "train_bare", "shard": "0001"}]
    trained = [job["wildcards"] for job in jobs if job["rule"] == "segmentation_train"]
    assert trained == [
        {"net": "msdnet", "substrate": "bare"},
        {"net": "unet", "substrate": "bare"},
    ]
    assert not {job["rule"] for job in jobs} & (MD_RULES | MONET_RULES)


# Evaluation, figure and detection settings: key -> (new value, a rule it must re-run).
# None of them may re-run a training or a simulation.
EVALUATION_CHANGES = {
    "segmentation.peak_threshold": (0.5, "segmentation_evaluate"),
    "segmentation.min_separation_A": (2.5, "segmentation_calibrate"),
    "segmentation.match_radius_A": (0.6, "segmentation_calibrate"),
    "segmentation.border_A": (0.5, "segmentation_calibrate"),
    "segmentation.figure.substrate": ("bare", "segmentation_figures"),
    "segmentation.figure.image": (1, "segmentation_figures"),
    "plots.dpi": (70, "md_figure"),
}


@pytest.mark.parametrize("key", list(EVALUATION_CHANGES))
def test_evaluation_setting_reruns_no_training_and_no_simulation(
    workflow_results, tmp_path, test_config, key
):
    check_evaluation_change(workflow_results, tmp_path, test_config, key)


def check_evaluation_change(results: Path, tmp_path: Path, test_config: dict, key: str):
    """After a change of ``key`` (EVALUATION_CHANGES) its rule re-runs, and no training
    and no simulation does."""
    value, reruns = EVALUATION_CHANGES[key]
    *sections, leaf = key.split(".")
    change = {leaf: value}
    current = test_config
    for section in sections:
        current = current[section]
    assert current[leaf] != value, f"{key} is {value!r} already"
    for section in reversed(sections):
        change = {section: change}
    rules = _planned_rules(results, tmp_path, change)
    assert reruns in rules, rules
    assert not rules & (TRAINING_RULES | SIMULATION_RULES), rules
