"""MD stage end to end on config/test.yaml."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import run_snakemake

from temflow.md.vibrations import TABLE_COLUMNS


@pytest.mark.workflow
def test_md_stage_outputs(workflow_results, test_config):
    table = pd.read_csv(workflow_results / "md" / "vibrations.csv")
    assert list(table.columns) == TABLE_COLUMNS
    assert set(table["system"]) == set(test_config["md"]["systems"])
    assert (table["n_runs"] == test_config["md"]["n_runs"]).all()
    assert (table["sigma_xy"] > 0.01).all() and (table["sigma_xy"] < 0.2).all()
    assert (table["temperature_K"] == test_config["md"]["temperature_K"]).all()
    bulk = table.set_index(["system", "element", "coordination"])
    assert ("mos2_sheet", "Mo", 6) in bulk.index and ("graphene", "C", 3) in bulk.index
    assert (workflow_results / "figures" / "vibrations.png").stat().st_size > 10_000
    for system in test_config["md"]["systems"]:
        log = (workflow_results / "logs" / f"md_run_{system}_0.log").read_text()
        assert "atom-steps/s" in log


@pytest.mark.workflow
def test_same_seed_gives_identical_vibration_table(workflow_results, tmp_path):
    target = tmp_path / "md" / "vibrations.csv"
    run_snakemake("--cores", "2", str(target), results_dir=tmp_path)
    assert target.read_bytes() == (workflow_results / "md" / "vibrations.csv").read_bytes()


@pytest.mark.workflow  # runs an md_run job
def test_missing_kim_model_fails_cleanly(tmp_path):
    target = tmp_path / "md" / "runs" / "mos2_sheet" / "run0.csv"
    proc = run_snakemake(
        "--cores",
        "1",
        str(target),
        results_dir=tmp_path,
        check=False,
        overrides=("md={'kim_model': 'SW_NoSuch__MO_000000000000_000'}",),
    )
    assert proc.returncode != 0
    log = (tmp_path / "logs" / "md_run_mos2_sheet_0.log").read_text()
    assert "KIM model 'SW_NoSuch__MO_000000000000_000' is not installed" in log
    assert not target.exists()
