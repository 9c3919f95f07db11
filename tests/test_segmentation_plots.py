"""F1 summary table values and the segmentation figures on constructed data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from temflow.evaluation import match_columns
from temflow.evaluation.f1 import f1_correlations, f1_parameters, f1_summary
from temflow.plots.segmentation import plot_detections, plot_f1_by_parameter, plot_f1_histograms
from temflow.segmentation import IMAGE_PARAMETERS


def _tables() -> dict[tuple[str, str], pd.DataFrame]:
    def t(f1):
        f1 = np.asarray(f1, float)
        return pd.DataFrame({"f1": f1, "precision": f1, "recall": f1, "f1_Mo": f1 * 0 + 1})

    return {
        ("msdnet", "bare"): t([1.0, 0.9, 0.8]),
        ("unet", "bare"): t([0.5, 1.0]),
        ("msdnet", "graphene"): t([0.7, 0.9, 1.0, 1.0]),
        ("unet", "graphene"): t([0.6]),
    }


def test_f1_summary_values() -> None:
    s = f1_summary(_tables()).set_index(["network", "substrate"])
    assert s.loc[("msdnet", "bare"), "mean_f1"] == pytest.approx(0.9)
    assert s.loc[("msdnet", "bare"), "median_f1"] == pytest.approx(0.9)
    assert s.loc[("msdnet", "graphene"), "median_f1"] == pytest.approx(0.95)
    assert s.loc[("unet", "graphene"), "n_images"] == 1
    assert s.loc[("unet", "bare"), "mean_f1_Mo"] == 1.0


def test_f1_summary_by_dose_bin() -> None:
    t = pd.DataFrame(
        {
            "f1": [0.5, 0.7, 0.9, 1.0, 0.95],
            "precision": 1.0,
            "recall": 1.0,
            "dose_e_per_A2": [100.0, 299.0, 300.0, 2999.0, 9999.0],
        }
    )
    s = f1_summary({("unet", "bare"): t}).iloc[0]
    assert s["mean_f1_dose_0_300"] == pytest.approx(0.6)
    assert s["mean_f1_dose_300_1000"] == pytest.approx(0.9)
    assert s["mean_f1_dose_1000_3000"] == pytest.approx(1.0)
    assert s["mean_f1_dose_3000_inf"] == pytest.approx(0.95)


def test_figures_written(tmp_path) -> None:
    plot_f1_histograms(_tables(), tmp_path / "h.png", dpi=40)
    true_xy = np.array([[1.0, 1.0], [2.0, 2.0]])
    true_cls = np.array([0, 1])
    pred_xy = np.array([[1.1, 1.0], [3.0, 0.5]])
    pred_cls = np.array([0, 2])
    res = match_columns(pred_xy, pred_cls, true_xy, true_cls, ("Mo", "S2", "S1"))
    det = {"msdnet": (pred_xy, pred_cls, res.false_positives(), res.misses())}
    plot_detections(
        np.random.default_rng(0).random((3, 40, 40)),
        0.1,
        true_xy,
        true_cls,
        det,
        ("Mo", "S2", "S1"),
        tmp_path / "d.png",
        defoci_A=[-30, 20, 70],
        dpi=40,
    )
    for name in ("h.png", "h.pdf", "d.png", "d.pdf"):
        assert (tmp_path / name).stat().st_size > 1000


def _with_parameters() -> dict[tuple[str, str], pd.DataFrame]:
    astigmatism = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    rng = np.random.default_rng(1)

    def table(f1: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "f1": f1,
                "astigmatism_A": astigmatism,
                # Dose falls as astigmatism rises: swapped columns would flip the signs.
                "dose_e_per_A2": np.array([1e4, 5e3, 3e3, 1e3, 300.0, 100.0]),
                "defocus_mean_A": rng.uniform(0, 40, 6),
                "defocus_scherzer_fraction": rng.uniform(0, 1, 6),
                "focal_spread_A": rng.uniform(10, 40, 6),
                "Cs_um": rng.uniform(-20, 20, 6),
                "C21_nm": rng.uniform(0, 50, 6),
                "C23_nm": rng.uniform(0, 50, 6),
                "angular_spread_mrad": rng.uniform(0.1, 0.5, 6),
                "semiangle_cutoff_mrad": rng.uniform(35, 50, 6),
                "blur_sigma_A": rng.uniform(0, 0.2, 6),
                "sampling_A": np.full(6, 0.2),
                "contamination_total_thickness_A": np.zeros(6),
                "frame_shift_max_A": rng.uniform(0, 0.5, 6),
                "frame_rotation_max_deg": np.zeros(6),
            }
        )

    # MSD-net: F1 falls with astigmatism; U-net: flat F1.
    return {
        ("msdnet", "graphene"): table(1.0 - astigmatism / 100),
        ("unet", "graphene"): table(np.full(6, 0.97)),
    }


def test_f1_correlations_on_constructed_tables() -> None:
    tables = _with_parameters()
    c = f1_correlations(tables, f1_parameters(tables, list(IMAGE_PARAMETERS))).set_index(
        ["network", "parameter"]
    )
    assert len(c) == 2 * len(IMAGE_PARAMETERS)
    assert c.loc[("msdnet", "astigmatism_A"), "spearman_rho"] == pytest.approx(-1.0)
    assert c.loc[("msdnet", "dose_e_per_A2"), "spearman_rho"] == pytest.approx(1.0)
    assert c.loc[("msdnet", "astigmatism_A"), "p_value"] < 0.01
    # Median split of 0..50 A at 25 A: mean F1 of 0, 10, 20 A vs 30, 40, 50 A.
    assert c.loc[("msdnet", "astigmatism_A"), "mean_f1_low"] == pytest.approx(0.9)
    assert c.loc[("msdnet", "astigmatism_A"), "mean_f1_high"] == pytest.approx(0.6)
    # A constant F1, or a constant parameter, has no rank correlation.
    assert np.isnan(c.loc[("unet", "astigmatism_A"), "spearman_rho"])
    assert np.isnan(c.loc[("msdnet", "sampling_A"), "spearman_rho"])
    assert c.loc[("unet", "astigmatism_A"), "n_images"] == 6
    # An image without a value is left out, not counted.
    tables[("msdnet", "graphene")].loc[5, "astigmatism_A"] = np.nan
    c = f1_correlations(tables, ["astigmatism_A"]).set_index(["network", "parameter"])
    assert c.loc[("msdnet", "astigmatism_A"), "n_images"] == 5
    assert c.loc[("msdnet", "astigmatism_A"), "spearman_rho"] == pytest.approx(-1.0)


def test_f1_parameters_name_the_tables_that_lack_them() -> None:
    tables = _with_parameters()
    tables[("unet", "graphene")] = tables[("unet", "graphene")].drop(columns="Cs_um")
    with pytest.raises(ValueError, match=r"unet_graphene: Cs_um .*segmentation_evaluate"):
        f1_parameters(tables, list(IMAGE_PARAMETERS))
    with pytest.raises(ValueError, match="no evaluation tables"):
        f1_parameters({}, list(IMAGE_PARAMETERS))


def test_f1_by_parameter_figure(tmp_path) -> None:
    """A panel per varying parameter; the constant ones (pixel size, contamination and
    rotation here) get none."""
    drawn = plot_f1_by_parameter(_with_parameters(), tmp_path / "p.png", dpi=40)
    constant = {"sampling_A", "contamination_total_thickness_A", "frame_rotation_max_deg"}
    assert set(drawn) == set(IMAGE_PARAMETERS) - constant
    assert (tmp_path / "p.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="dose_e_per_A2"):
        plot_f1_by_parameter(_tables(), tmp_path / "q.png", dpi=40)
    assert not (tmp_path / "q.png").exists()


def test_pool_evaluation_tables_keeps_every_row_in_order() -> None:
    from temflow.segmentation.evaluate import pool_evaluation_tables

    val = {("msdnet", "bare"): pd.DataFrame({"f1": [0.9, 0.8]})}
    robust = {
        ("msdnet", "bare"): pd.DataFrame({"f1": [0.1]}),
        ("unet", "bare"): pd.DataFrame({"f1": [0.5]}),
    }
    pooled = pool_evaluation_tables({"validation": val, "robustness": robust})
    assert pooled[("msdnet", "bare")]["f1"].tolist() == [0.9, 0.8, 0.1]
    assert pooled[("msdnet", "bare")]["evaluation_set"].tolist() == [
        "validation",
        "validation",
        "robustness",
    ]
    assert pooled[("msdnet", "bare")].index.tolist() == [0, 1, 2]
    assert pooled[("unet", "bare")]["f1"].tolist() == [0.5]
    assert "evaluation_set" not in val[("msdnet", "bare")]


def test_f1_by_parameter_figure_draws_a_parameter_only_the_robustness_set_varies(
    tmp_path,
) -> None:
    """Contamination constant (0) in the validation tables, drawn in the robustness ones:
    pooled, it gets a panel."""
    from temflow.segmentation.evaluate import pool_evaluation_tables

    validation = _with_parameters()
    robustness = {
        key: t.assign(contamination_total_thickness_A=np.linspace(1.0, 18.0, len(t)))
        for key, t in validation.items()
    }
    pooled = pool_evaluation_tables({"validation": validation, "robustness": robustness})
    drawn = plot_f1_by_parameter(pooled, tmp_path / "p.png", dpi=40)
    assert "contamination_total_thickness_A" in drawn
    assert "contamination_total_thickness_A" not in plot_f1_by_parameter(
        validation, tmp_path / "q.png", dpi=40
    )
