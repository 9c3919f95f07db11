"""Statistics of the trajectory generators, determinism, storage and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gamma

from temflow.errors import TemflowError
from temflow.trajectories import (
    CLASSES,
    brownian,
    ctrw,
    fbm,
    fgn_autocovariance,
    generate_set,
    mittag_leffler_waits,
    pareto_waits,
    read_trajectories,
    write_trajectories,
)
from temflow.trajectories.io import check_params

PARAMS = {
    "length": 300,
    "fbm_alpha_range": [0.2, 0.96],
    "ctrw_alpha_range": [0.1, 0.99],
    "diffusion_range_px2_per_frame": [0.5, 2.0],
    "ctrw_waiting_time": "mittag_leffler",
    "noise_step_std": 0.0,
}


def _slope(t: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(np.log(t), np.log(y), 1)[0])


@pytest.mark.parametrize("alpha", [0.3, 0.7, 1.0, 1.5])
def test_fbm_increments_have_fgn_autocovariance(alpha):
    rng = np.random.default_rng(1)
    d = 0.8
    x = fbm(2000, 300, alpha, d, rng)
    inc = np.diff(x, axis=1) / np.sqrt(2 * d)  # unit-variance fGn, both axes
    lags = np.arange(8)
    emp = np.array([np.mean(inc[:, : inc.shape[1] - k] * inc[:, k:]) for k in lags])
    theory = fgn_autocovariance(alpha / 2, lags)
    # 1.2e6 samples per lag: the standard error is ~1e-3 (a few 1e-3 for long memory).
    np.testing.assert_allclose(emp, theory, atol=0.015)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.9, 1.3])
def test_fbm_time_averaged_msd_exponent(alpha):
    x = fbm(500, 300, alpha, 1.0, np.random.default_rng(2))
    lags = np.arange(1, 21)
    tamsd = [np.mean(np.sum((x[:, k:] - x[:, :-k]) ** 2, axis=-1)) for k in lags]
    assert abs(_slope(lags, np.array(tamsd)) - alpha) < 0.05
    # amplitude: per axis 2 D t^alpha, two axes
    assert tamsd[0] == pytest.approx(4.0, rel=0.05)


@pytest.mark.parametrize("alpha", [0.3, 0.6, 0.9])
def test_ctrw_ensemble_msd_grows_as_t_alpha(alpha):
    d = 1.0
    x = ctrw(4000, 300, alpha, d, np.random.default_rng(3))
    assert np.all(x[:, 0] == 0)
    t = np.arange(10, 300)
    msd = np.sum(x[:, 10:] ** 2, axis=-1).mean(axis=0)
    assert abs(_slope(t, msd) - alpha) < 0.05
    # Mittag-Leffler renewal: <N(t)> = t^alpha / Gamma(1 + alpha) exactly
    expected = 2 * 2 * d * t**alpha / gamma(1 + alpha)
    np.testing.assert_allclose(msd[[0, 90, 289]], expected[[0, 90, 289]], rtol=0.1)


def test_ctrw_pareto_msd_exponent():
    # Pareto waits reach the t^alpha regime only asymptotically: use long walks.
    x = ctrw(2000, 3000, 0.5, 1.0, np.random.default_rng(4), waiting_time="pareto")
    t = np.arange(300, 3000)
    msd = np.sum(x[:, 300:] ** 2, axis=-1).mean(axis=0)
    assert abs(_slope(t, msd) - 0.5) < 0.06


def _hill(samples: np.ndarray, k: int) -> float:
    top = np.sort(samples)[-k - 1 :]
    return float(1.0 / np.mean(np.log(top[1:] / top[0])))


@pytest.mark.parametrize("alpha", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("draw", [mittag_leffler_waits, pareto_waits])
def test_waiting_time_tail_exponent_recovered(alpha, draw):
    waits = draw(np.array([alpha]), 400_000, np.random.default_rng(5))[0]
    assert np.all(waits > 0)
    assert abs(_hill(waits, 1000) - alpha) < 0.05 + 0.05 * alpha


def test_ctrw_jumps_happen_only_at_renewals():
    x = ctrw(200, 300, 0.3, 1.0, np.random.default_rng(6))
    moving = np.any(np.diff(x, axis=1) != 0, axis=-1)
    # subdiffusive CTRW with alpha 0.3: most frames show no jump
    assert moving.mean() < 0.2
    # both axes jump together
    dx, dy = np.diff(x[..., 0], axis=1) != 0, np.diff(x[..., 1], axis=1) != 0
    assert np.array_equal(dx, dy)


def test_brownian_increments_uncorrelated_with_variance_2d():
    x = brownian(1000, 300, 1.5, np.random.default_rng(7))
    inc = np.diff(x, axis=1)
    assert np.var(inc) == pytest.approx(3.0, rel=0.02)
    flat = inc / np.sqrt(3.0)
    n = flat[:, 1:].size
    for k in range(1, 6):
        r = np.mean(flat[:, :-k] * flat[:, k:])
        assert abs(r) < 5 / np.sqrt(n)


def test_per_trajectory_parameters_and_shapes():
    rng = np.random.default_rng(8)
    alpha = np.array([0.2, 0.9])
    x = fbm(2, 50, alpha, np.array([1.0, 4.0]), rng)
    assert x.shape == (2, 50, 2)
    y = ctrw(3, 50, np.array([0.2, 0.5, 1.0]), 1.0, rng)
    assert y.shape == (3, 50, 2)


def test_generate_set_balanced_deterministic_and_round_trips(tmp_path):
    a = generate_set("classify", 301, PARAMS, seed=11)
    b = generate_set("classify", 301, PARAMS, seed=11)
    c = generate_set("classify", 301, PARAMS, seed=12)
    assert np.array_equal(a.positions, b.positions)
    assert not np.array_equal(a.positions, c.positions)
    assert sorted(np.bincount(a.label).tolist()) == [100, 100, 101]
    assert np.all(a.alpha[a.label == 0] == 1.0)
    lo, hi = PARAMS["fbm_alpha_range"]
    assert np.all((a.alpha[a.label == 1] >= lo) & (a.alpha[a.label == 1] <= hi))
    assert np.all((a.diffusion >= 0.5) & (a.diffusion <= 2.0))
    write_trajectories(tmp_path / "s.h5", a)
    r = read_trajectories(tmp_path / "s.h5")
    np.testing.assert_allclose(r.positions, a.positions.astype(np.float32))
    assert np.array_equal(r.label, a.label) and r.seed == 11
    assert r.attrs["kind"] == "classify"
    only = generate_set("ctrw", 20, PARAMS, seed=1)
    assert np.all(only.label == CLASSES.index("ctrw"))


def test_localisation_noise_adds_step_scaled_variance():
    clean = generate_set("fbm", 400, PARAMS, seed=3, noise_step_std=0.0)
    noisy = generate_set("fbm", 400, PARAMS, seed=3, noise_step_std=0.5)
    diff = (noisy.positions - clean.positions) / np.sqrt(2 * clean.diffusion)[:, None, None]
    assert np.std(diff) == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda r: fbm(3, 10, 2.0, 1.0, r), "fbm alpha"),
        (lambda r: fbm(3, 10, 0.0, 1.0, r), "fbm alpha"),
        (lambda r: ctrw(3, 10, 1.2, 1.0, r), "ctrw alpha"),
        (lambda r: ctrw(3, 10, 0.0, 1.0, r), "ctrw alpha"),
        (lambda r: brownian(3, 10, 0.0, r), "diffusion_coefficient"),
        (lambda r: fbm(3, 10, 0.5, -1.0, r), "diffusion_coefficient"),
        (lambda r: brownian(3, 1, 1.0, r), "length"),
        (lambda r: ctrw(3, 10, 0.5, 1.0, r, waiting_time="gamma"), "waiting_time"),
    ],
)
def test_bad_generator_input(call, key):
    with pytest.raises(TemflowError, match=key):
        call(np.random.default_rng(0))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"ctrw_alpha_range": [0.5, 1.1]}, "ctrw_alpha_range"),
        ({"fbm_alpha_range": [0.0, 0.5]}, "fbm_alpha_range"),
        ({"fbm_alpha_range": [0.8, 0.5]}, "fbm_alpha_range"),
        ({"diffusion_range_px2_per_frame": [0.0, 1.0]}, "diffusion_range_px2_per_frame"),
        ({"noise_step_std": 1.5}, "noise_step_std"),
        ({"exposure_time_range_frames": [0.5, 1.5]}, "exposure_time_range_frames"),
        ({"exposure_time_range_frames": [0.8, 0.2]}, "exposure_time_range_frames"),
    ],
)
def test_bad_config_names_the_key(change, key):
    with pytest.raises(TemflowError, match=key):
        check_params({**PARAMS, **change})


# --- motion blur ----------------------------------------------------------------------


def _msd_per_axis(x: np.ndarray, lags: np.ndarray) -> np.ndarray:
    return np.array([np.mean((x[:, lag:] - x[:, :-lag]) ** 2) for lag in lags])


@pytest.mark.parametrize("name", ["brownian", "fbm", "ctrw"])
@pytest.mark.parametrize("exposure", [0.5, 1.0])
def test_motion_blur_msd_matches_savin_doyle(name, exposure):
    """At alpha = 1 all three processes have Brownian second moments (FBM with H = 1/2;
    CTRW with exponential waits is a compound Poisson walk with variance 2 D t), so their
    blurred per-axis MSD, with localisation noise sigma, is 2 D (n - t_E / 3) + 2 sigma^2
    (Savin & Doyle 2005), exactly the m-point form of brownian_blur_msd."""
    from temflow.trajectories.blur import SUBSTEPS_PER_FRAME, brownian_blur_msd
    from temflow.trajectories.io import add_localisation_noise, simulate_process

    rng = np.random.default_rng(7)
    n, length, d, step_noise = 3000, 40, 0.5, 0.5
    params = {"exposure_time_range_frames": [exposure, exposure]}
    x = simulate_process(name, np.ones(n), length, np.full(n, d), params, rng)
    x = add_localisation_noise(x, np.full(n, d), step_noise, rng)
    sigma2 = (step_noise * np.sqrt(2 * d)) ** 2
    lags = np.array([1, 2, 5, 10])
    m = round(exposure * SUBSTEPS_PER_FRAME)
    expected = brownian_blur_msd(lags, d, m) + 2 * sigma2
    # Savin & Doyle's continuous form differs from the m-point one by t_E / (3 m^2) <= 0.7 %.
    np.testing.assert_allclose(expected, 2 * d * (lags - exposure / 3) + 2 * sigma2, rtol=0.01)
    # Over 8 seeds (t_E = 1) the relative error of these means had a spread of 0.1-1.1 %
    # (largest: FBM at lag 10) and mean offsets < 0.3 %: 5 % is about 5 sigma.
    np.testing.assert_allclose(_msd_per_axis(x, lags), expected, rtol=0.05)
    # The blur is visible: more than half its deficit 2 D t_E / 3 below 2 D + 2 sigma^2.
    assert _msd_per_axis(x, lags[:1])[0] < 2 * d + 2 * sigma2 - d * exposure / 3


def test_motion_blur_off_gives_the_unblurred_generators():
    base = generate_set("classify", 60, PARAMS, seed=5)
    off = generate_set("classify", 60, {**PARAMS, "exposure_time_range_frames": [0, 0]}, seed=5)
    np.testing.assert_array_equal(base.positions, off.positions)
    on = generate_set("classify", 60, {**PARAMS, "exposure_time_range_frames": [0, 1]}, seed=5)
    assert on.positions.shape == base.positions.shape
    np.testing.assert_array_equal(on.positions[:, 0], 0.0)
    assert not np.allclose(on.positions, base.positions)
    again = generate_set("classify", 60, {**PARAMS, "exposure_time_range_frames": [0, 1]}, seed=5)
    np.testing.assert_array_equal(on.positions, again.positions)


# --- exact likelihood (the Bayes bound for the classifier) ---------------------------


def test_likelihood_recovers_hurst_and_noise_and_is_scale_free():
    from temflow.trajectories import add_localisation_noise, brownian, fbm
    from temflow.trajectories.likelihood import log_likelihood

    rng = np.random.default_rng(5)
    tracks = fbm(100, 150, np.full(100, 0.6), 1.0, rng)
    grid = np.arange(0.2, 0.42, 0.02)
    total = [log_likelihood(tracks, h, 0.0).sum() for h in grid]
    assert abs(grid[int(np.argmax(total))] - 0.3) < 0.021
    # Each axis alone points to the same H (with its own scale, a 1-D likelihood).
    from temflow.trajectories.likelihood import log_likelihoods

    per_axis = np.array([log_likelihoods(tracks, h, 0.0)[1].sum(axis=0) for h in grid])
    assert np.all(np.abs(grid[np.argmax(per_axis, axis=0)] - 0.3) < 0.041)
    # Scale marginalised: a change of units shifts every hypothesis by the same constant.
    a, b = log_likelihood(tracks, 0.3, 0.0), log_likelihood(tracks, 0.45, 0.0)
    a3, b3 = log_likelihood(3.0 * tracks, 0.3, 0.0), log_likelihood(3.0 * tracks, 0.45, 0.0)
    np.testing.assert_allclose(a - b, a3 - b3, rtol=1e-9, atol=1e-9)
    # Brownian tracks with 0.5-step localisation noise: the most likely noise is 0.5, H 1/2.
    d = np.full(100, 1.0)
    noisy = add_localisation_noise(brownian(100, 150, d, rng), d, 0.5, rng)
    levels = [0.0, 0.25, 0.5, 0.75]
    by_noise = [log_likelihood(noisy, 0.5, r).sum() for r in levels]
    assert levels[int(np.argmax(by_noise))] == 0.5
    assert log_likelihood(noisy, 0.5, 0.5).sum() > log_likelihood(noisy, 0.4, 0.5).sum()


def test_bayes_decision_separates_clear_cases_and_rejects_bad_input():
    from temflow.trajectories import brownian, fbm
    from temflow.trajectories.likelihood import bayes_is_fbm, log_likelihood

    rng = np.random.default_rng(6)
    walk = brownian(200, 300, 1.0, rng)
    sub = fbm(200, 300, np.full(200, 0.4), 1.0, rng)
    assert bayes_is_fbm(sub, (0.2, 0.96)).mean() == 1.0
    assert bayes_is_fbm(walk, (0.2, 0.96)).mean() < 0.1
    with pytest.raises(TemflowError, match="positions"):
        log_likelihood(walk[:, :, 0], 0.5, 0.0)
    with pytest.raises(TemflowError, match="Hurst"):
        log_likelihood(walk, 1.0, 0.0)
    with pytest.raises(TemflowError, match="noise_weights"):
        bayes_is_fbm(walk, (0.2, 0.96), [0.0, 0.5], [1.0])


# --- localisation precision from the tracks ------------------------------------------


def test_precision_estimate_on_300_frame_brownian_tracks():
    """sigma = 0.5 step std on 300-frame Brownian tracks: bench_monet_precision measured a
    per-track bias of -0.004 and spread 0.066 (95 % of errors < 0.13) without blur, and
    0.0001 / 0.036 with a full-frame exposure the estimator is told; the tolerances below
    are about 4 standard errors of these means for 200 tracks."""
    from temflow.trajectories.io import add_localisation_noise, simulate_process
    from temflow.trajectories.precision import cve_diffusion, cve_moments, localisation_precision

    rng = np.random.default_rng(11)
    n, d, sigma = 200, np.full(200, 0.5), 0.5
    for exposure in (0.0, 1.0):
        params = {"exposure_time_range_frames": [exposure, exposure]}
        x = simulate_process("brownian", np.ones(n), 300, d, params, rng)
        x = add_localisation_noise(x, d, sigma, rng)
        per_track = localisation_precision(x, exposure)
        assert per_track.shape == (n,)
        assert abs(per_track.mean() - sigma) < 0.02
        assert np.quantile(np.abs(per_track - sigma), 0.95) < 0.15
        assert abs(localisation_precision(x, exposure, pooled=True)[0] - sigma) < 0.01
        assert abs(cve_diffusion(cve_moments(x)).mean() - 0.5) < 0.02
    # Ignoring a full-frame blur underestimates sigma^2 by D t_E / 3 = 1/6 step^2.
    wrong = localisation_precision(x, 0.0, pooled=True)[0]
    assert abs(wrong**2 - (sigma**2 - 0.5 / 3)) < 0.02
    # Units follow the positions.
    np.testing.assert_allclose(localisation_precision(x * 7.0, 1.0), 7.0 * per_track)


def test_precision_estimate_rejects_bad_input():
    from temflow.trajectories.precision import localisation_precision

    with pytest.raises(TemflowError, match="L >= 3"):
        localisation_precision(np.zeros((3, 2, 2)))
    with pytest.raises(TemflowError, match="exposure time"):
        localisation_precision(np.zeros((3, 10, 2)), exposure_frames=1.5)
