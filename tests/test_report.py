"""Headline table and the Snakemake report."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import run_snakemake

from temflow.errors import TemflowError
from temflow.summary import headline_table


def test_headline_table_from_constructed_tables(tmp_path):
    vib = tmp_path / "vib.csv"
    pd.DataFrame(
        {
            "system": ["mos2_sheet"],
            "element": ["Mo"],
            "coordination": [6],
            "sigma_xy": [0.05],
            "sigma_z": [0.04],
            "sigma_xy_err": [0.001],
            "sigma_z_err": [0.002],
            "n_atoms": [100],
        }
    ).to_csv(vib, index=False)
    f1 = tmp_path / "f1.csv"
    pd.DataFrame(
        {
            "network": ["msdnet", "unet"],
            "substrate": ["bare", "bare"],
            "n_images": [10, 10],
            "mean_f1": [0.97, 0.93],
            "median_f1": [0.98, 0.94],
            "std_f1": [0.01, 0.03],
        }
    ).to_csv(f1, index=False)
    monet = tmp_path / "monet.csv"
    pd.DataFrame({"metric": ["accuracy"], "value": [0.9], "n": [300]}).to_csv(monet, index=False)
    table = headline_table(vib, f1, monet)
    assert len(table) == 2 + 4 + 1
    row = table[table["quantity"] == "mean F1 unet bare"].iloc[0]
    assert row["value"] == 0.93 and row["uncertainty"] == 0.03 and row["n"] == 10
    assert set(table["stage"]) == {"MD", "segmentation", "MoNet"}
    with pytest.raises(TemflowError, match="lacks columns"):
        headline_table(monet_summary_csv=vib)


@pytest.mark.workflow
def test_summary_and_report(workflow_results):
    table = pd.read_csv(workflow_results / "summary.csv")
    assert {"MD", "segmentation", "MoNet"} == set(table["stage"])
    report = workflow_results / "report.html"
    run_snakemake("--report", str(report), results_dir=workflow_results)
    html = report.read_text(errors="replace")
    for category in ("MD", "HR-TEM", "Segmentation", "MoNet", "Summary"):
        assert category in html
