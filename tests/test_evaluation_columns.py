"""Peak finding on synthetic Gaussian maps; matching and F1 on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest

from temflow.evaluation import (
    find_peaks,
    find_peaks_per_class,
    match_columns,
    match_positions,
    score_table_row,
)

CLASSES = ("Mo", "S2", "S1")


def _gaussians(shape, centres, sigma_px):
    i, k = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    m = np.zeros(shape)
    for ci, ck in centres:
        m = np.maximum(m, np.exp(-((i - ci) ** 2 + (k - ck) ** 2) / (2 * sigma_px**2)))
    return m


def test_peaks_recover_subpixel_gaussians() -> None:
    rng = np.random.default_rng(3)
    grid = np.array([(i, k) for i in range(8, 60, 12) for k in range(8, 70, 12)], float)
    centres = grid + rng.uniform(-0.5, 0.5, grid.shape)
    image = _gaussians((64, 74), centres, sigma_px=2.0)
    found = find_peaks(image, threshold=0.5, min_separation_px=4)
    assert len(found) == len(centres)
    # Nearest found peak for every centre.
    d = np.linalg.norm(found[:, None] - centres[None], axis=2)
    assert np.all(d.min(axis=0) < 0.05)
    assert len(set(d.argmin(axis=0))) == len(centres)


def test_peaks_threshold_and_separation() -> None:
    image = _gaussians((40, 40), [(10.0, 10.0), (30.0, 30.0)], 1.5)
    image[30, 30] = 0.4  # scale the second peak below threshold
    image[29:32, 29:32] *= 0.4
    assert len(find_peaks(image, threshold=0.5, min_separation_px=3)) == 1
    # Two peaks 3 px apart merge when the minimum separation is larger.
    two = _gaussians((40, 40), [(20.0, 18.0), (20.0, 21.0)], 0.8)
    assert len(find_peaks(two, 0.5, 2)) == 2
    assert len(find_peaks(two, 0.5, 4)) == 1
    assert find_peaks(np.zeros((10, 10)), 0.5, 2).shape == (0, 2)


def test_peaks_per_class_in_angstrom() -> None:
    sampling = 0.1
    maps = np.stack(
        [
            _gaussians((50, 50), [(10.0, 20.0)], 2.0),
            _gaussians((50, 50), [(30.0, 30.0), (40.0, 10.0)], 2.0),
            np.zeros((50, 50)),
        ]
    )
    xy, cls = find_peaks_per_class(maps, sampling, 0.5, 1.0, CLASSES)
    order = np.lexsort((xy[:, 0], cls))
    # (row, col) = (10, 20) -> (x_A, y_A) = (2.0, 1.0)
    np.testing.assert_allclose(xy[order], [[2.0, 1.0], [1.0, 4.0], [3.0, 3.0]], atol=1e-6)
    assert cls[order].tolist() == [0, 1, 1]


def test_f1_identical_sets() -> None:
    xy = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    cls = np.array([0, 1, 2])
    res = match_columns(xy, cls, xy, cls, CLASSES)
    assert res.overall() == (1.0, 1.0, 1.0)
    for c in CLASSES:
        assert res.per_class(c) == (1.0, 1.0, 1.0)


def test_f1_constructed_case() -> None:
    # Truth: 4 Mo, 3 S2, 1 S1.
    true_xy = np.array([[0, 0], [3, 0], [6, 0], [9, 0], [0, 5], [3, 5], [6, 5], [9, 5]], float)
    true_cls = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    pred_xy = np.array(
        [
            [0.1, 0.0],  # Mo match
            [3.0, 0.4],  # Mo match (0.4 A)
            [6.0, 0.6],  # Mo too far: false positive, and Mo at (6, 0) missed
            [0.0, 5.2],  # S2 match
            [3.0, 5.0],  # predicted S1 at a true S2: wrong class -> FP (S1) + miss (S2)
            [9.2, 5.1],  # S1 match
            [20.0, 20.0],  # S2 extra: false positive
        ]
    )
    pred_cls = np.array([0, 0, 0, 1, 2, 2, 1])
    res = match_columns(pred_xy, pred_cls, true_xy, true_cls, CLASSES, radius_A=0.5)
    # TP: Mo 2, S2 1, S1 1 -> 4 of 7 predicted and 8 true.
    assert res.tp.tolist() == [2, 1, 1]
    p, r, f = res.overall()
    assert p == pytest.approx(4 / 7)
    assert r == pytest.approx(4 / 8)
    assert f == pytest.approx(2 * 4 / (7 + 8))
    assert res.per_class("Mo") == pytest.approx((2 / 3, 2 / 4, 4 / 7))
    assert res.per_class("S2") == pytest.approx((1 / 2, 1 / 3, 2 / 5))
    assert res.per_class("S1") == pytest.approx((1 / 2, 1.0, 2 / 3))
    assert sorted(res.false_positives().tolist()) == [2, 4, 6]
    assert sorted(res.misses().tolist()) == [2, 3, 5, 6]
    row = score_table_row(res)
    assert row["f1"] == pytest.approx(8 / 15) and row["tp_S2"] == 1 and row["n_pred"] == 7


def test_matching_is_one_to_one_and_optimal() -> None:
    # Two predictions near one truth: only one may match. A greedy nearest-first choice
    # would pair truth A with prediction 0 and leave B unmatched; the optimum pairs both.
    true_xy = np.array([[0.0, 0.0], [0.8, 0.0]])
    pred_xy = np.array([[0.4, 0.0], [-0.3, 0.0]])
    res = match_columns(pred_xy, [0, 0], true_xy, [0, 0], CLASSES)
    assert res.tp.tolist() == [2, 0, 0]
    dup = match_columns([[0.0, 0.1], [0.0, -0.1]], [0, 0], [[0.0, 0.0]], [0], CLASSES)
    assert dup.overall() == pytest.approx((0.5, 1.0, 2 / 3))


def test_empty_cases() -> None:
    empty = np.zeros((0, 2))
    none = np.zeros(0, int)
    assert match_columns(empty, none, empty, none, CLASSES).overall() == (1.0, 1.0, 1.0)
    res = match_columns(empty, none, [[1.0, 1.0]], [1], CLASSES)
    assert res.overall() == (0.0, 0.0, 0.0)
    assert res.per_class("Mo") == (1.0, 1.0, 1.0)
    res = match_columns([[1.0, 1.0]], [1], empty, none, CLASSES)
    assert res.overall() == (0.0, 0.0, 0.0)


def test_position_match_ignores_the_class() -> None:
    # Three true columns; one predicted with the wrong class, two right, one far extra.
    true_xy = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    pred_xy = np.array([[0.1, 0.0], [2.0, 0.2], [4.0, -0.1], [9.0, 9.0]])
    by_class = match_columns(pred_xy, [1, 1, 2, 0], true_xy, [0, 1, 2], CLASSES)
    assert by_class.overall() == pytest.approx((2 / 4, 2 / 3, 4 / 7))
    anywhere = match_positions(pred_xy, true_xy, radius_A=0.5)
    assert anywhere.classes == ("any",)
    assert anywhere.overall() == pytest.approx((3 / 4, 1.0, 6 / 7))
    assert anywhere.false_positives().tolist() == [3]
    # Within a smaller radius the 0.2 A offset no longer matches.
    assert match_positions(pred_xy, true_xy, radius_A=0.15).tp.tolist() == [2]
