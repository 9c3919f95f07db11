"""MoNet: shapes, parameter count, invariances, model cards, and the end-to-end stage."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from temflow.errors import TemflowError
from temflow.models import MoNet
from temflow.models.monet import normalise_increments, with_precision
from temflow.monet.tasks import get_task
from temflow.training import load_model, save_model


def _tracks(b: int = 4, length: int = 300) -> torch.Tensor:
    return torch.randn(b, length, 2, generator=torch.Generator().manual_seed(0)).cumsum(1)


def test_output_shapes_and_parameter_count():
    torch.manual_seed(0)
    clf, reg = MoNet("classify").eval(), MoNet("regress", alpha_max=2.0).eval()
    # reference: about 249k; ours 248,163 (6 branches x 32 filters, 192 -> 512 -> 128 -> 3)
    assert sum(p.numel() for p in clf.parameters()) == 248_163
    x = _tracks()
    logp = clf(x)
    assert logp.shape == (4, 3)
    torch.testing.assert_close(logp.exp().sum(1), torch.ones(4))
    alpha = reg(x)
    assert alpha.shape == (4,) and torch.all((alpha > 0) & (alpha < 2.0))
    assert MoNet.receptive_fields() == [22, 8, 15, 118, 210, 20]


def test_feature_combination_pools_both_axes_with_the_same_parameters():
    torch.manual_seed(0)
    outputs = MoNet("classify").eval()
    features = MoNet("classify", combine="features").eval()
    assert outputs.hparams["combine"] == "outputs" and features.hparams["combine"] == "features"
    features.load_state_dict(outputs.state_dict())  # the same weights fit both
    x = _tracks(6)
    logp = features(x)
    assert logp.shape == (6, 3)
    torch.testing.assert_close(logp.exp().sum(1), torch.ones(6))
    assert not torch.allclose(logp, outputs(x), atol=1e-3)
    # x and y play the same role, and a regressor's alpha stays within (0, alpha_max).
    torch.testing.assert_close(features(x.flip(-1)), logp, rtol=1e-5, atol=1e-6)
    reg = MoNet("regress", alpha_max=2.0, combine="features").eval()
    alpha = reg(x)
    assert alpha.shape == (6,) and torch.all((alpha > 0) & (alpha < 2.0))
    # The features of both axes are averaged before the dense stack: x paired with y
    # gives the mean of (x, x) and (y, y) features, which is not the mean of outputs.
    with torch.no_grad():
        inc = normalise_increments(x).reshape(12, 1, -1)
        feats = torch.cat([br(inc) for br in features.branches], dim=1).reshape(6, 2, -1)
        expected = features.head(features.dense(feats.mean(1))).log_softmax(-1)
    torch.testing.assert_close(logp, expected)
    with pytest.raises(TemflowError, match="combine_axes"):
        MoNet("classify", combine="sum")


def test_normalisation_makes_output_invariant_to_scale_and_offset():
    torch.manual_seed(0)
    m = MoNet("classify").eval()
    x = _tracks(3)
    torch.testing.assert_close(m(x), m(7.5 * x + 3.0), rtol=1e-4, atol=1e-5)
    inc = normalise_increments(x)
    assert inc.shape == (3, 2, 299)
    torch.testing.assert_close(inc.std(dim=-1), torch.ones(3, 2))


def test_constant_track_gives_finite_output():
    m = MoNet("classify").eval()
    assert torch.isfinite(m(torch.zeros(2, 100, 2))).all()


def test_too_short_track_is_rejected():
    with pytest.raises(TemflowError, match="length"):
        MoNet()(torch.zeros(1, MoNet.min_length() - 1, 2))
    with pytest.raises(TemflowError, match="task"):
        MoNet("segment")


def test_model_card_round_trip_and_mismatch(tmp_path):
    torch.manual_seed(1)
    model = MoNet("regress", alpha_max=2.0).eval()
    card = {"classes": ["alpha"], "metrics": {"mae": 0.1}}
    save_model(tmp_path / "m.pt", model, card)
    written = json.loads((tmp_path / "m.json").read_text())
    assert written["architecture"] == {"class": "MoNet", "args": model.hparams}
    assert written["n_parameters"] == sum(p.numel() for p in model.parameters())
    loaded, _ = load_model(tmp_path / "m.pt", MoNet, expected={"architecture": {"class": "MoNet"}})
    x = _tracks(2)
    torch.testing.assert_close(loaded(x), model(x))
    with pytest.raises(TemflowError, match="task"):
        load_model(
            tmp_path / "m.pt", MoNet, expected={"architecture": {"args": {"task": "classify"}}}
        )
    (tmp_path / "m.json").write_text(json.dumps({**written, "classes": ["x"]}))
    with pytest.raises(TemflowError, match="differs"):
        load_model(tmp_path / "m.pt", MoNet)


def test_rotation_augment_is_an_exact_symmetry_of_the_processes():
    from temflow.monet.data import rotate_tracks, track_augment
    from temflow.trajectories import ctrw, fbm

    rng = np.random.default_rng(3)
    gen = torch.Generator().manual_seed(0)
    tracks = torch.from_numpy(fbm(2000, 100, np.full(2000, 0.6), 1.0, rng)).float()
    rotated = rotate_tracks(tracks, gen)
    # A rotation: lengths kept, but the tracks really turned (by different angles).
    torch.testing.assert_close(rotated.norm(dim=-1), tracks.norm(dim=-1), rtol=1e-5, atol=1e-5)
    cos = (rotated * tracks).sum(-1)[:, -1] / tracks[:, -1].norm(dim=-1).square()
    assert cos.std() > 0.5
    # Still isotropic FBM: both axes have the same increment variance, uncorrelated axes.
    inc = rotated.diff(dim=1).numpy()
    var_x, var_y = inc[..., 0].var(), inc[..., 1].var()
    assert abs(var_x / var_y - 1) < 0.05
    assert abs(np.mean(inc[..., 0] * inc[..., 1])) / np.sqrt(var_x * var_y) < 0.02
    # CTRW: x and y jump at the same frames before and after the rotation.
    walk = torch.from_numpy(ctrw(200, 100, np.full(200, 0.5), 1.0, rng)).float()
    moved = rotate_tracks(walk, gen).diff(dim=1).abs().sum(-1) > 0
    torch.testing.assert_close(moved, walk.diff(dim=1).abs().sum(-1) > 0)
    # Seeded, and composed with the noise augmentation; both off means no augmentation.
    aug = track_augment(0.5, rotate=True)
    a = aug(tracks[:8], None, torch.Generator().manual_seed(1))[0]
    b = aug(tracks[:8], None, torch.Generator().manual_seed(1))[0]
    torch.testing.assert_close(a, b)
    assert track_augment(0.0, rotate=False) is None
    with pytest.raises(TemflowError, match="augment_noise_step_std"):
        track_augment(-0.1)


def test_noise_free_fraction_leaves_that_share_of_tracks_noiseless():
    from temflow.monet.data import track_augment

    tracks = torch.zeros(4000, 50, 2)
    gen = torch.Generator().manual_seed(2)
    out = track_augment(0.5, noise_free_fraction=0.3)(tracks, None, gen)[0]
    clean = (out == 0).all(dim=(1, 2)).float().mean().item()
    assert abs(clean - 0.3) < 0.03  # binomial s.e. 0.007
    # The noisy rest keeps std ~ U(0, 0.5): mean variance E[s^2] = 0.5^2 / 3.
    noisy = out[(out != 0).any(dim=(1, 2))]
    assert abs(noisy.var().item() / (0.25 / 3) - 1) < 0.1
    assert (track_augment(0.5, noise_free_fraction=1.0)(tracks, None, gen)[0] == 0).all()
    with pytest.raises(TemflowError, match="augment_noise_free_fraction"):
        track_augment(0.5, noise_free_fraction=1.5)


def test_resimulation_draws_fresh_tracks_of_each_class_and_alpha():
    from temflow.monet.data import track_augment

    params = {"fbm_alpha_range": [0.3, 0.3], "ctrw_alpha_range": [0.5, 0.5]}
    label = torch.tensor([0, 1, 2] * 400)
    stale = torch.zeros(len(label), 200, 2)
    aug = track_augment(0.0, resimulate=(get_task("classify"), params))
    x, y = aug(stale, label, torch.Generator().manual_seed(0))
    assert y is label and x.shape == stale.shape and x.dtype == torch.float32
    inc = x.diff(dim=1).numpy()
    # Brownian and FBM steps have std 1 (D = 0.5, the unit of inputs_of); FBM with
    # alpha 0.3 has lag-1 increment correlation 2^(alpha - 1) - 1 = -0.38; CTRW rests.
    for cls, lag1 in ((0, 0.0), (1, 2 ** (0.3 - 1) - 1)):
        d = inc[cls::3]
        assert abs(d.std() - 1) < 0.02
        assert abs((d[:, 1:] * d[:, :-1]).mean() / d.var() - lag1) < 0.02
    assert (inc[2::3] == 0).mean() > 0.5 and (inc[:2] != 0).all()
    # Every call draws new tracks; the same generator state gives the same ones.
    x2 = aug(stale, label, torch.Generator().manual_seed(1))[0]
    assert not torch.equal(x, x2)
    torch.testing.assert_close(x, aug(stale, label, torch.Generator().manual_seed(0))[0])
    # A regressor's target alpha is kept: FBM tracks of alpha 0.4 and 1.6.
    alpha = torch.tensor([0.4, 1.6]).repeat(500)
    fb = track_augment(0.0, resimulate=(get_task("fbm_alpha"), params))(
        stale[:1000], alpha, torch.Generator().manual_seed(0)
    )[0]
    d = fb.diff(dim=1).numpy()
    for k, a in enumerate((0.4, 1.6)):
        lag1 = (d[k::2, 1:] * d[k::2, :-1]).mean() / d[k::2].var()
        assert abs(lag1 - (2 ** (a - 1) - 1)) < 0.02
    with pytest.raises(TemflowError, match="monet task"):
        get_task("segment")


def test_changed_augmentation_retrains_instead_of_resuming(tmp_path, caplog):
    from temflow.monet.train import train_task
    from temflow.trajectories import generate_set, write_trajectories

    params = {"length": 60, "fbm_alpha_range": [0.2, 0.9], "ctrw_alpha_range": [0.2, 0.9],
              "diffusion_range_px2_per_frame": [0.5, 2.0]}  # fmt: skip
    write_trajectories(tmp_path / "train.h5", generate_set("classify", 40, params, seed=1))
    training = {"epochs": 1, "batch_size": 16, "device": "cpu", "progress": False}

    def run(
        rotate: bool,
        resimulate: dict | None = None,
        combine: str = "outputs",
        noise_input: bool = False,
    ) -> dict:
        return train_task("classify", tmp_path / "train.h5", tmp_path / "m.pt",
                          tmp_path / "m.csv", tmp_path / "work", training, 0.25, 0.0,
                          seed=3, augment_rotate=rotate, resimulate=resimulate,
                          combine_axes=combine, noise_input=noise_input)  # fmt: skip

    run(False)
    caplog.clear()
    with caplog.at_level("INFO"):
        run(False)  # the same run again: resumes the finished checkpoint
    assert "starting afresh" not in caplog.text
    with caplog.at_level("INFO"):
        card = run(True)
    assert "augment_rotate" in caplog.text and "starting afresh" in caplog.text
    assert card["training"]["augment_rotate"] is True
    caplog.clear()
    with caplog.at_level("INFO"):
        card = run(True, resimulate=params)  # fresh tracks: another training
    assert "resimulate" in caplog.text and "starting afresh" in caplog.text
    assert card["training"]["resimulate"]["fbm_alpha_range"] == [0.2, 0.9]
    caplog.clear()
    with caplog.at_level("INFO"):
        card = run(True, resimulate=params, combine="features")  # same shapes, other net
    assert "hparams.combine" in caplog.text and "starting afresh" in caplog.text
    assert card["architecture"]["args"]["combine"] == "features"
    assert "pooled" in card["axes"]
    caplog.clear()
    with caplog.at_level("INFO"):
        card = run(True, resimulate=params, combine="features", noise_input=True)
    assert "noise_input" in caplog.text and "starting afresh" in caplog.text
    assert card["architecture"]["args"]["noise_input"] is True
    assert card["input"]["columns"] == ["x", "y", "sigma"]
    # Evaluation tells the network each test set's own noise level (noise_step_std).
    from temflow.monet.data import inputs_of
    from temflow.monet.evaluate import evaluate_task

    noisy = generate_set("classify", 30, params, seed=2, noise_step_std=0.5)
    write_trajectories(tmp_path / "noisy.h5", noisy)
    assert (inputs_of(noisy, noise_input=True)[..., 2] == 0.5).all()
    frame = evaluate_task("classify", tmp_path / "m.pt", tmp_path / "noisy.h5",
                          tmp_path / "e.csv", "cpu")  # fmt: skip
    assert len(frame) == 30 and frame.predicted.between(0, 2).all()
    # The probabilities are the card's temperature-scaled ones (calls unchanged).
    from scipy.special import log_softmax

    t = card["calibration"]["temperature"]
    assert t > 0 and card["calibration"]["n_val"] == 10
    model, _ = load_model(tmp_path / "m.pt", MoNet)
    with torch.no_grad():
        raw = model(inputs_of(noisy, noise_input=True)).double().numpy()
    probs = frame[["p_brownian", "p_fbm", "p_ctrw"]].to_numpy()
    np.testing.assert_allclose(probs, np.exp(log_softmax(raw / t, axis=1)), atol=1e-5)


def test_noise_aware_monet_reads_the_localisation_precision():
    torch.manual_seed(0)
    net = MoNet("classify", noise_input=True).eval()
    assert net.input_columns == 3
    # One more feature per axis (the noise ratio) into the first dense layer of 512.
    assert sum(p.numel() for p in net.parameters()) == 248_163 + 512
    pos = _tracks(4, 300)
    # Scale-free like the increments: positions and sigma in nm or in px give one answer.
    torch.testing.assert_close(net(with_precision(pos, 0.3)), net(with_precision(pos, 0.3) * 7.5))
    # The precision changes the output; a noise-unaware net rejects the third column.
    assert (net(with_precision(pos, 0.0)) - net(with_precision(pos, 0.6))).abs().max() > 1e-4
    with pytest.raises(TemflowError, match=r"\(B, L, 3\) \(x, y, sigma\)"):
        net(pos)
    with pytest.raises(TemflowError, match=r"\(B, L, 2\)"):
        MoNet("classify")(with_precision(pos, 0.1))
    # Ratio: a Brownian track with noise sigma has increment std sqrt(1 + 2 sigma^2).
    from temflow.models.monet import increments_and_std, noise_ratio

    walk = torch.randn(64, 4000, 2, generator=torch.Generator().manual_seed(1)).cumsum(1)
    noisy = walk + 0.5 * torch.randn(walk.shape, generator=torch.Generator().manual_seed(2))
    ratio = noise_ratio(torch.full((64, 4000), 0.5), increments_and_std(noisy)[1])
    assert abs(ratio.mean().item() - 0.5 / np.sqrt(1.5)) < 0.005
    # A track at rest would give an unbounded ratio: clipped at 1, outside training.
    assert noise_ratio(torch.full((1, 50), 0.5), torch.zeros(1, 2)).eq(1.0).all()


def test_noise_augmentation_keeps_the_sigma_column_true():
    from temflow.monet.data import track_augment

    # Tracks at rest that already carry sigma = 0.2; the augmentation adds std s.
    tracks = torch.cat([torch.zeros(3000, 400, 2), torch.full((3000, 400, 1), 0.2)], dim=-1)
    gen = torch.Generator().manual_seed(4)
    out = track_augment(0.8, noise_free_fraction=0.25)(tracks, None, gen)[0]
    assert out.shape == tracks.shape
    sigma = out[:, :, 2]
    assert (sigma == sigma[:, :1]).all()  # one precision per track
    added = out[..., :2].std(dim=(1, 2))
    expected = torch.sqrt(sigma[:, 0] ** 2 - 0.2**2)
    assert (added - expected).abs().max() < 0.06  # std of 800 normals: s.e. 2.5 %
    assert abs((sigma[:, 0] == 0.2).float().mean().item() - 0.25) < 0.03
    # Fresh tracks are noiseless: their sigma is reset before the new noise.
    params = {"fbm_alpha_range": [0.5, 0.5], "ctrw_alpha_range": [0.5, 0.5]}
    label = torch.tensor([0, 1, 2] * 10)
    resim = track_augment(0.0, resimulate=(get_task("classify"), params))
    x = resim(tracks[:30, :100], label, gen)[0]
    assert x.shape == (30, 100, 3) and (x[..., 2] == 0).all()


# --- end to end on config/test.yaml --------------------------------------------------


@pytest.mark.workflow
def test_trajectory_sets_written(workflow_results, test_config):
    traj = test_config["trajectories"]
    with h5py.File(workflow_results / "trajectories" / "classify_train.h5") as f:
        assert f["positions"].shape == (traj["n_classify_train"], traj["length"], 2)
        assert np.bincount(f["label"][()]).min() >= traj["n_classify_train"] // 3
        seed_train = int(f.attrs["seed"])
    with h5py.File(workflow_results / "trajectories" / "classify_test.h5") as f:
        assert int(f.attrs["seed"]) != seed_train


@pytest.mark.workflow
def test_monet_models_and_evaluation(workflow_results):
    models = workflow_results / "models"
    for task in ("classify", "fbm_alpha", "ctrw_alpha"):
        card = json.loads((models / f"monet_{task}.json").read_text())
        assert card["architecture"]["class"] == "MoNet"
        assert len(card["data"]) >= 1 and all(len(h) == 64 for h in card["data"].values())
        assert (models / f"monet_{task}.pt").is_file()
        # config/test.yaml turns rotation on: the setting reaches the training
        assert card["training"]["augment_rotate"] is True
    summary = pd.read_csv(workflow_results / "eval" / "monet_summary.csv").set_index("metric")
    # tiny training still beats chance (1/3) on the held-out set
    assert summary.loc["accuracy", "value"] > 0.45
    rows = pd.read_csv(workflow_results / "eval" / "monet_classify.csv")
    assert set(rows.columns) >= {"label", "predicted", "p_brownian", "p_fbm", "p_ctrw"}
    for task in ("fbm_alpha", "ctrw_alpha"):
        ev = pd.read_csv(workflow_results / "eval" / f"monet_{task}.csv")
        assert {"alpha", "alpha_predicted"} <= set(ev.columns)
        assert ev["alpha_predicted"].between(0, 2).all()
    for name in ("monet_confusion.png", "monet_alpha.png", "monet_reliability.png"):
        assert (workflow_results / "figures" / name).stat().st_size > 1000
    assert 0 <= summary.loc["ece", "value"] <= 1
    calibration = json.loads((models / "monet_classify.json").read_text())["calibration"]
    assert calibration["temperature"] > 0 and calibration["n_val"] > 0


# --- the authors' released Keras networks (h5py + numpy) -------------------------------


def _write_keras_h5(path, layers, weights):
    """A Keras 2 functional-model HDF5 in the layout of the released MoNet files."""
    import json

    import h5py

    config = {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": layers,
            "input_layers": [[layers[0]["name"], 0, 0]],
            "output_layers": [[layers[-1]["name"], 0, 0]],
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.2.2"
        group = f.create_group("model_weights")
        for name, values in weights.items():
            g = group.create_group(name)
            names = [f"{name}/{k}:0" for k in values]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, v in zip(names, values.values(), strict=True):
                g.create_dataset(n, data=v)


def test_keras_reference_loader_matches_torch_on_the_released_layout(tmp_path):
    """Causal and same-padded dilated Conv1D + ReLU, BatchNormalization (moving stats,
    epsilon 1e-3), global max pooling, concatenation and a softmax Dense, as in
    FINALmodel_300.h5, against the same network written with torch."""
    from temflow.monet.keras_reference import load_keras_model, reference_class_probabilities

    rng = np.random.default_rng(0)
    t_in, f = 29, 4

    def layer(kind, name, inputs, **cfg):
        nodes = [[[i, 0, 0, {}] for i in inputs]] if inputs else []
        return {"class_name": kind, "name": name, "config": {"name": name, **cfg},
                "inbound_nodes": nodes}  # fmt: skip

    conv = {"strides": [1], "activation": "relu", "use_bias": True}
    bn = {"epsilon": 0.001, "axis": -1}
    layers = [
        layer("InputLayer", "input_1", [], batch_input_shape=[None, t_in, 1]),
        layer("Conv1D", "conv1d_1", ["input_1"], padding="causal", dilation_rate=[2],
              kernel_size=[3], **conv),
        layer("BatchNormalization", "batch_normalization_1", ["conv1d_1"], **bn),
        layer("GlobalMaxPooling1D", "global_max_pooling1d_1", ["batch_normalization_1"]),
        layer("Conv1D", "conv1d_2", ["input_1"], padding="same", dilation_rate=[1],
              kernel_size=[4], **conv),
        layer("BatchNormalization", "batch_normalization_2", ["conv1d_2"], **bn),
        layer("GlobalMaxPooling1D", "global_max_pooling1d_2", ["batch_normalization_2"]),
        layer("Concatenate", "concatenate_1",
              ["global_max_pooling1d_1", "global_max_pooling1d_2"], axis=-1),
        layer("Dense", "dense_1", ["concatenate_1"], activation="softmax", use_bias=True),
    ]  # fmt: skip
    w = {
        "conv1d_1": {"kernel": rng.normal(size=(3, 1, f)), "bias": rng.normal(size=f)},
        "conv1d_2": {"kernel": rng.normal(size=(4, 1, f)), "bias": rng.normal(size=f)},
        "dense_1": {"kernel": rng.normal(size=(2 * f, 3)), "bias": rng.normal(size=3)},
    }
    for k in (1, 2):
        w[f"batch_normalization_{k}"] = {
            "gamma": rng.uniform(0.5, 2, f),
            "beta": rng.normal(size=f),
            "moving_mean": rng.normal(size=f),
            "moving_variance": rng.uniform(0.5, 2, f),
        }
    path = tmp_path / "model.h5"
    _write_keras_h5(path, layers, w)
    model = load_keras_model(path)
    assert model.input_length == t_in
    x = rng.normal(size=(5, t_in, 1))

    def torch_branch(xt, conv_w, pad, dilation, b):
        k = torch.from_numpy(conv_w["kernel"]).permute(2, 1, 0)  # (out, in, K)
        bias = torch.from_numpy(conv_w["bias"])
        y = F.relu(F.conv1d(F.pad(xt, pad), k, bias, dilation=dilation))
        stats = [torch.from_numpy(b[n]) for n in ("moving_mean", "moving_variance")]
        affine = [torch.from_numpy(b[n]) for n in ("gamma", "beta")]
        y = F.batch_norm(y, *stats, *affine, training=False, eps=1e-3)
        return y.amax(dim=-1)

    xt = torch.from_numpy(x).transpose(1, 2)
    feats = torch.cat([torch_branch(xt, w["conv1d_1"], (4, 0), 2, w["batch_normalization_1"]),
                       torch_branch(xt, w["conv1d_2"], (1, 2), 1, w["batch_normalization_2"])],
                      dim=1)  # fmt: skip
    logits = feats @ torch.from_numpy(w["dense_1"]["kernel"]) + torch.from_numpy(
        w["dense_1"]["bias"]
    )
    expected = torch.softmax(logits, dim=1).numpy()
    np.testing.assert_allclose(model.predict(x, batch_size=2), expected, rtol=1e-10)
    # Tracks: per-axis increments normalised by their std, axes averaged, classes from the
    # reference order (FBM, Brownian, CTRW) to temflow's (brownian, fbm, ctrw).
    pos = np.cumsum(rng.normal(size=(3, t_in + 5, 2)), axis=1) * 4.0 + 10.0
    dx = np.diff(pos, axis=1)
    dx = dx / dx.std(axis=1, keepdims=True)
    ref = np.mean([model.predict(dx[:, :t_in, a, None]) for a in (0, 1)], axis=0)
    np.testing.assert_allclose(reference_class_probabilities(model, pos), ref[:, [1, 0, 2]])
    with pytest.raises(TemflowError, match="expected tracks"):
        reference_class_probabilities(model, pos[:, :10])
    bad = [*layers[:-1], layer("LSTM", "lstm_1", ["concatenate_1"])]
    _write_keras_h5(tmp_path / "bad.h5", bad, w)
    with pytest.raises(TemflowError, match="bad.h5: layer lstm_1 of kind LSTM is not supported"):
        load_keras_model(tmp_path / "bad.h5")


# --- calibration -----------------------------------------------------------------------


def test_calibration_error_and_temperature_scaling():
    """ECE is 0 for probabilities that are right as often as they say and equals the gap
    for a constant overconfident classifier; temperature scaling of logits made too sharp
    by T = 3 recovers T and lowers the ECE without changing a call."""
    from scipy.special import log_softmax

    from temflow.evaluation.calibration import (
        apply_temperature,
        expected_calibration_error,
        fit_temperature,
        reliability_table,
    )

    rng = np.random.default_rng(0)
    n = 20000
    logits = rng.normal(0, 1.5, (n, 3))
    true_p = np.exp(log_softmax(logits, axis=1))
    labels = np.array([rng.choice(3, p=p) for p in true_p])
    assert expected_calibration_error(true_p, labels) < 0.02
    # Says 0.9 for class 0, right 60 % of the time: ECE 0.3.
    probs = np.tile([0.9, 0.05, 0.05], (1000, 1))
    y = np.r_[np.zeros(600, int), np.ones(400, int)]
    assert expected_calibration_error(probs, y) == pytest.approx(0.3)
    table = reliability_table(probs, y)
    assert table.n.sum() == 1000 and int(table.n.iloc[8]) == 1000
    sharp = log_softmax(3.0 * logits, axis=1)
    t = fit_temperature(sharp, labels)
    assert t == pytest.approx(3.0, rel=0.05)
    fixed = apply_temperature(sharp, t)
    assert (fixed.argmax(1) == sharp.argmax(1)).all()
    assert expected_calibration_error(fixed, labels) < 0.5 * expected_calibration_error(
        np.exp(sharp), labels
    )
    with pytest.raises(TemflowError, match="temperature"):
        apply_temperature(sharp, 0.0)
    with pytest.raises(TemflowError, match="calibration: expected"):
        expected_calibration_error(probs, y[:10])
