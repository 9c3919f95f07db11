"""End-to-end assertions on the segmentation stage of the config/test.yaml workflow run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from temflow.hrtem.shards import open_dataset
from temflow.segmentation import IMAGE_PARAMETERS

NETS, SUBSTRATES = ("msdnet", "unet"), ("bare", "graphene")


@pytest.mark.workflow
def test_models_and_cards(workflow_results, test_config) -> None:
    seg = test_config["segmentation"]
    for net in NETS:
        for sub in SUBSTRATES:
            card = json.loads((workflow_results / "models" / f"{net}_{sub}.json").read_text())
            assert card["classes"] == ["Mo", "S2", "S1"] and card["in_channels"] == 3
            assert card["architecture"]["class"] == {"msdnet": "MSDNet", "unet": "UNet"}[net]
            for key, value in seg[net].items():
                assert card["architecture"]["args"][key] == value
            assert card["training"]["epochs"] == seg["training"]["epochs"]
            assert card["target_width_A"] == seg["target_width_A"]
            lo, hi = test_config["hrtem"]["simulation"]["output_sampling_A"]
            assert card["sampling_range_A"] == [lo, hi] and lo < hi
            assert card["sampling_A"] == pytest.approx((lo + hi) / 2)
            train = seg["datasets"][sub]["train"]
            assert all(f"/hrtem/{train}/" in p for p in card["data"]["train"])
            assert all(len(h) == 64 for h in card["data"]["train"].values())
            assert "torch" in card["software_versions"]
            thr = card["peak_threshold"]
            assert thr["n_images"] == seg["training_val_images"]
            assert thr["mean_f1_by_threshold"][f"{thr['value']:.2f}"] == pytest.approx(
                max(thr["mean_f1_by_threshold"].values())
            )
            blob = torch.load(workflow_results / "models" / f"{net}_{sub}.pt", weights_only=True)
            assert blob["card"] == card
            metrics = pd.read_csv(workflow_results / "models" / f"{net}_{sub}_metrics.csv")
            assert len(metrics) == card["metrics"]["epochs_run"] >= 1


@pytest.mark.workflow
def test_evaluation_tables(workflow_results, test_config) -> None:
    hr = test_config["hrtem"]["datasets"]
    seg = test_config["segmentation"]
    for net in NETS:
        for sub in SUBSTRATES:
            table = pd.read_csv(workflow_results / "eval" / f"{net}_{sub}.csv")
            val = seg["datasets"][sub]["val"]
            assert len(table) == hr[val]["n_images"]
            lo, hi = test_config["hrtem"]["simulation"]["output_sampling_A"]
            assert table["sampling_A"].between(lo, hi).all()
            ds_by_name = {
                p.name: open_dataset([p])
                for p in sorted((workflow_results / "hrtem" / val).glob("shard_*.h5"))
            }
            microscope = test_config["hrtem"]["microscope"]
            for param in (
                "dose_e_per_A2",
                "astigmatism_A",
                "Cs_um",
                "C21_nm",
                "C23_nm",
                "angular_spread_mrad",
                "focal_spread_A",
            ):
                assert table[param].between(*microscope[param]).all(), param
            assert (
                table["defocus_scherzer_fraction"]
                .between(*microscope["defocus_scherzer_fraction"])
                .all()
            )
            shift = float(np.mean(microscope["defocus_offsets_A"]))
            centre_lo, centre_hi = microscope["defocus_centre_A"]
            # Each row carries its own image's parameters (not another image's).
            for _, row in table.iterrows():
                _, _, meta = ds_by_name[row["file"]][int(row["index"])]
                assert row["astigmatism_A"] == pytest.approx(meta["astigmatism_A"], abs=1e-4)
                # The CSV keeps 6 significant digits; focal centres now pass 100 A.
                assert row["defocus_mean_A"] == pytest.approx(np.mean(meta["defoci_A"]), rel=1e-5)
                # The centre is the drawn one plus the drawn share of Scherzer's defocus.
                centre = row["defocus_mean_A"] - shift
                centre -= row["defocus_scherzer_fraction"] * meta["scherzer_defocus_A"]
                assert centre_lo - 1e-3 <= centre <= centre_hi + 1e-3
            # Matching whatever the class can only find more pairs than by class.
            assert (table["f1_any_class"] >= table["f1"] - 1e-9).all()
            for col in ("precision", "recall", "f1", "f1_Mo", "f1_S2", "f1_S1"):
                assert table[col].between(0, 1).all()
            assert (table["tp"] <= table[["n_true", "n_pred"]].min(axis=1)).all()
            assert (
                table["n_true"] == table[["n_true_Mo", "n_true_S2", "n_true_S1"]].sum(axis=1)
            ).all()
            # Truth counts equal the labelled columns inside the evaluation border.
            ds = open_dataset(sorted((workflow_results / "hrtem" / val).glob("shard_*.h5")))
            _, cols, _ = ds[0]
            assert table["n_true"].iloc[0] <= len(cols)
            f1 = 2 * table["tp"] / (table["n_true"] + table["n_pred"])
            pd.testing.assert_series_equal(
                table["f1"], f1.fillna(1.0), check_names=False, check_dtype=False, atol=1e-5
            )


@pytest.mark.workflow
def test_summary_and_figures(workflow_results) -> None:
    summary = pd.read_csv(workflow_results / "eval" / "f1_summary.csv")
    assert sorted(zip(summary["network"], summary["substrate"], strict=True)) == sorted(
        (n, s) for n in NETS for s in SUBSTRATES
    )
    for _, row in summary.iterrows():
        table = pd.read_csv(workflow_results / "eval" / f"{row.network}_{row.substrate}.csv")
        assert row["mean_f1"] == pytest.approx(table["f1"].mean(), abs=1e-5)
        assert row["median_f1"] == pytest.approx(table["f1"].median(), abs=1e-5)
    correlations = pd.read_csv(workflow_results / "eval" / "f1_by_parameter.csv")
    assert len(correlations) == len(summary) * len(IMAGE_PARAMETERS)
    assert correlations["spearman_rho"].dropna().between(-1, 1).all()
    for name in ("f1_histograms", "detections", "f1_by_parameter"):
        for ext in ("png", "pdf"):
            assert (workflow_results / "figures" / f"{name}.{ext}").stat().st_size > 1000


@pytest.mark.workflow
def test_robustness_sets_are_scored_and_drawn(workflow_results, test_config) -> None:
    """Each substrate's robustness set (carbon drawn, left out of training) is scored by
    the same models, and F1 against the parameters runs over it and the validation set:
    the contamination axis has a clean and a contaminated end."""
    datasets = test_config["hrtem"]["datasets"]
    correlations = pd.read_csv(workflow_results / "eval" / "f1_by_parameter.csv")
    for net in NETS:
        for substrate in SUBSTRATES:
            split = test_config["segmentation"]["datasets"][substrate]
            clean = pd.read_csv(workflow_results / "eval" / f"{net}_{substrate}.csv")
            dirty = pd.read_csv(workflow_results / "eval" / "robustness" / f"{net}_{substrate}.csv")
            assert len(dirty) == datasets[split["robustness"]]["n_images"]
            assert (clean["contamination_total_thickness_A"] == 0).all()
            assert (dirty["contamination_total_thickness_A"] > 0).all()
            row = correlations.query(
                "network == @net and substrate == @substrate "
                "and parameter == 'contamination_total_thickness_A'"
            )
            assert row["n_images"].item() == len(clean) + len(dirty)
