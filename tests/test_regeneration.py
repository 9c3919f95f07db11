"""After a completed run, changing one value re-runs exactly the jobs that depend on it.

Uses Snakemake's own rerun logic (a dry run on the finished config/test.yaml results),
not file times faked by the test.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from conftest import ROOT, run_snakemake

from temflow.config import load_config

MD_RULES = {"md_run", "md_vibrations", "md_figure"}
MONET_RULES = {"trajectories_generate", "monet_train", "monet_evaluate", "monet_report"}
REPORT_RULES = {"report_summary"}


def _dry_run(results: Path, tmp_path: Path, change) -> str:
    """Snakemake's dry-run output for config/test.yaml after ``change`` (in place)."""
    config = load_config(["config/test.yaml"], root=ROOT)
    change(config)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = run_snakemake("-n", results_dir=results, configfile=str(path))
    return proc.stdout + proc.stderr


def _planned_rules(results: Path, tmp_path: Path, change) -> set[str]:
    out = _dry_run(results, tmp_path, change)
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    rules = set(re.findall(r"^(\w+)\s+\d+\s*$", table, flags=re.M))
    return rules - {"all", "job"}


def _planned_jobs(results: Path, tmp_path: Path, change) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run plans after ``change``."""
    out = _dry_run(results, tmp_path, change)
    jobs = []
    for block in re.split(r"^(?:local)?rule ", out, flags=re.M)[1:]:
        rule = block.split(":", 1)[0]
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, flags=re.M)
        jobs.append((rule, wildcards.group(1) if wildcards else ""))
    return jobs


def test_nothing_to_do_after_a_complete_run(workflow_results, tmp_path):
    assert _planned_rules(workflow_results, tmp_path, lambda c: None) == set()


def test_md_temperature_reruns_md_and_downstream_not_monet(workflow_results, tmp_path):
    def change(c):
        c["md"]["temperature_K"] = 600

    rules = _planned_rules(workflow_results, tmp_path, change)
    assert MD_RULES <= rules
    assert {"hrtem_shard", "segmentation_train", "report_summary"} <= rules
    assert not rules & MONET_RULES


def test_figure_only_parameter_reruns_only_figures(workflow_results, tmp_path):
    def change(c):
        c["plots"]["dpi"] = c["plots"]["dpi"] + 10

    rules = _planned_rules(workflow_results, tmp_path, change)
    assert "md_figure" in rules and "monet_report" in rules
    figure_rules = {
        r for r in rules if r.endswith(("_figure", "_report", "_figures")) or r in REPORT_RULES
    }
    assert rules == figure_rules, rules - figure_rules


def test_trajectory_parameter_reruns_only_monet(workflow_results, tmp_path):
    def change(c):
        c["trajectories"]["diffusion_range_px2_per_frame"] = [0.4, 2.0]

    rules = _planned_rules(workflow_results, tmp_path, change)
    assert rules == MONET_RULES | REPORT_RULES


def test_microscope_parameter_reruns_simulation_and_downstream_only(workflow_results, tmp_path):
    def change(c):
        low, high = c["hrtem"]["microscope"]["dose_e_per_A2"]
        c["hrtem"]["microscope"]["dose_e_per_A2"] = [low * 1.5, high]

    rules = _planned_rules(workflow_results, tmp_path, change)
    assert not rules & (MD_RULES | MONET_RULES)
    assert {
        "hrtem_shard",
        "hrtem_figure",
        "segmentation_train",
        "segmentation_evaluate",
        "segmentation_figures",
        "report_summary",
    } <= rules


def test_more_training_images_add_shards_and_retrain_only_that_substrate(
    workflow_results, tmp_path
):
    """Growing a dataset by whole shards keeps the shards already written (each shard's
    images depend on its own index, not on the dataset size) and retrains only the
    networks that read that dataset."""

    def change(c):
        per_shard = c["hrtem"]["images_per_shard"]
        c["hrtem"]["datasets"]["train_bare"]["n_images"] = 2 * per_shard

    jobs = _planned_jobs(workflow_results, tmp_path, change)
    assert [w for r, w in jobs if r == "hrtem_shard"] == ["dataset=train_bare, shard=0001"]
    trained = sorted(w for r, w in jobs if r == "segmentation_train")
    assert trained == ["net=msdnet, substrate=bare", "net=unet, substrate=bare"]
    assert not {r for r, _ in jobs} & (MD_RULES | MONET_RULES)
