"""The SLURM profile on a real single-node cluster started on this machine.

scripts/slurm-local-cluster.sh starts slurmctld + slurmd (Debian slurm-wlm, munge) as root;
config/test.yaml then runs through profiles/slurm with only the user-set values changed
(partition, no account, squeue status checks, no GPU request), every non-local job via sbatch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT, run_snakemake
from workflow_api import query

STATE_DIR = "/tmp/temflow-slurm-test"


def _rules(results_dir) -> dict:
    """Every rule as Snakemake's API describes it."""
    return query(results_dir)["rules"]


def _training_rules(rules: dict) -> list[str]:
    return sorted(name for name, rule in rules.items() if rule["resources"].get("gpu") == 1)


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("starting a SLURM cluster needs root")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("no slurm-wlm and no apt-get to install it")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm-local-cluster.sh"), "start"],
        capture_output=True,
        text=True,
        env={**os.environ, "STATE_DIR": STATE_DIR},
    )
    if proc.returncode != 0:
        pytest.skip(f"a SLURM cluster could not be started here: {proc.stderr.strip()[-500:]}")
    yield STATE_DIR
    subprocess.run(["bash", str(ROOT / "scripts" / "slurm-local-cluster.sh"), "stop"])


def test_training_rules_request_a_gpu_where_they_use_one(tmp_path):
    rules = query(tmp_path / "results", overrides=("device=gpu",))["rules"]
    assert _training_rules(rules) == ["monet_train", "segmentation_train"]
    # device: cpu trains on the CPU: no GPU request, so the profile's pool of one GPU does
    # not queue the trainings one after another
    rules_cpu = _rules(tmp_path / "results")
    assert not any(rule["resources"].get("gpu") for rule in rules_cpu.values())
    # aggregation, figures and the summary run on the submitting node
    assert {name for name, rule in rules.items() if rule["localrule"]} >= {
        "md_vibrations",
        "md_figure",
        "hrtem_figure",
        "segmentation_figures",
        "monet_report",
        "report_summary",
    }


@pytest.mark.workflow
def test_test_config_runs_through_slurm_profile(slurm_cluster, tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    results = tmp_path / "results"
    plan = query(results)  # every job, as nothing is there yet
    local = {name for name, rule in plan["rules"].items() if rule["localrule"]}
    n_cluster_jobs = sum(job["rule"] not in local | {"all"} for job in plan["jobs"])
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["default-resources"]["slurm_partition"] == "CHANGE_ME"
    # What the README tells a user to change: partition, account, and on a cluster
    # without GPUs (this one) no GPU request for the training rules.
    profile["default-resources"]["slurm_partition"] = "debug"
    del profile["default-resources"]["slurm_account"]
    profile["slurm-status-command"] = "squeue"  # no accounting database here
    profile["set-resources"] = {rule: {"gpu": 0} for rule in ("monet_train", "segmentation_train")}
    profile["jobs"] = 4
    profile["latency-wait"] = 5
    profile["slurm-init-seconds-before-status-checks"] = 2  # tiny jobs: poll early
    profile_dir = tmp_path / "profile"
    profile_dir.mkdir()
    (profile_dir / "config.yaml").write_text(yaml.safe_dump(profile))
    jobcomp = os.path.join(slurm_cluster, "log", "jobcomp.log")
    before = _completed_jobs(jobcomp)

    run_snakemake("--profile", str(profile_dir), results_dir=results)

    done = _completed_jobs(jobcomp)[len(before) :]
    assert done, "no job went through sbatch"
    assert all(state == "COMPLETED" for state in done), done
    # Every non-local job of the workflow was one SLURM job, and the run is complete.
    assert len(done) == n_cluster_jobs
    assert query(results)["jobs"] == []
    assert (results / "md" / "vibrations.csv").is_file()


def _completed_jobs(path: str) -> list[str]:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return re.findall(r"JobState=(\w+)", fh.read())
