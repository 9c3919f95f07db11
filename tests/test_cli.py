"""`temflow classify` / `temflow segment`: formats, windows, bad input, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from temflow.apply.classify import load_monet_models
from temflow.apply.tracks import cut_windows, read_tracks, window_starts
from temflow.cli import main
from temflow.models import MoNet
from temflow.monet.tasks import get_task
from temflow.training import load_model, save_model
from temflow.trajectories.io import CLASSES

ROOT = Path(__file__).resolve().parents[1]
L = 60  # track length of the small test models


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def monet_dir(tmp_path_factory) -> Path:
    """Untrained (seeded) MoNet classifier + regressors with cards for L-frame tracks."""
    d = tmp_path_factory.mktemp("models")
    for i, task in enumerate(("classify", "fbm_alpha", "ctrw_alpha")):
        torch.manual_seed(i)
        model = get_task(task).build_model()
        spec_classes = list(CLASSES) if task == "classify" else ["alpha"]
        save_model(
            d / f"monet_{task}.pt",
            model.eval(),
            {"net": f"monet_{task}", "task": task, "classes": spec_classes,
             "input": {"length_frames": L}},
        )  # fmt: skip
    return d


def random_walk(n: int, seed: int, step: float = 1.0) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).normal(0, step, (n, 2)), axis=0)


def track_table(spec: dict[int, np.ndarray], id_col: str = "track_id") -> pd.DataFrame:
    """{track id: frames} -> table of random-walk positions at those frames."""
    rows = []
    for tid, frames in spec.items():
        xy = random_walk(len(frames), seed=tid)
        rows.append(pd.DataFrame({id_col: tid, "frame": frames, "x": xy[:, 0], "y": xy[:, 1]}))
    return pd.concat(rows, ignore_index=True)


def run_cli(*args: str) -> int:
    return main([str(a) for a in args])


def classify_args(tracks: Path, out: Path, models: Path, *extra: str) -> list[str]:
    return ["classify", str(tracks), "-o", str(out), "--models", str(models), "--device", "cpu",
            *extra]  # fmt: skip


STANDARD = {
    1: np.arange(150),  # 3 windows: starts 0, 60, 90
    2: np.arange(10, 70),  # exactly one window
    3: np.arange(40),  # too short
    4: np.r_[0:60, 65:125],  # one gap of 5 frames: two segments, one window each
    5: np.r_[0:80, 79:100],  # duplicate frame 79
}


# --------------------------------------------------------------------------- windows
def test_window_starts_cover_every_frame():
    assert window_starts(150, 60, 60) == [0, 60, 90]
    assert window_starts(120, 60, 60) == [0, 60]
    assert window_starts(60, 60, 60) == [0]
    assert window_starts(59, 60, 60) == []
    assert window_starts(100, 60, 20) == [0, 20, 40]


def test_cut_windows_gaps_duplicates_short():
    reports = {r.track_id: r for r in cut_windows(track_table(STANDARD), L)}
    assert [len(reports[i].windows) for i in range(1, 6)] == [3, 1, 0, 2, 0]
    assert [w.frame_start for w in reports[1].windows] == [0, 60, 90]
    assert reports[2].windows[0].frame_start == 10 and reports[2].windows[0].frame_end == 69
    gap = reports[4]
    assert (gap.n_gaps, gap.n_missing_frames, gap.n_segments) == (1, 5, 2)
    assert [(w.segment, w.frame_start, w.frame_end) for w in gap.windows] == [
        (0, 0, 59),
        (1, 65, 124),
    ]
    assert reports[3].status == "skipped" and "too short" in reports[3].reason
    assert "40 frames" in reports[3].reason
    assert reports[5].status == "skipped" and reports[5].n_duplicate_frames == 1
    assert "duplicate" in reports[5].reason and "79" in reports[5].reason


def test_window_positions_are_the_frames_in_order():
    table = track_table({7: np.arange(100)}).sample(frac=1.0, random_state=0)  # shuffled rows
    (rep,) = cut_windows(table, L, stride=40)
    ordered = table.sort_values("frame")[["x", "y"]].to_numpy()
    assert [w.frame_start for w in rep.windows] == [0, 40]
    np.testing.assert_array_equal(rep.windows[1].positions, ordered[40:100])


# --------------------------------------------------------------------------- classify
def test_classify_csv_per_track_and_windows(tmp_path, monet_dir):
    table = track_table(STANDARD)
    src = tmp_path / "tracks.csv"
    table.to_csv(src, index=False)
    out, win, fig = tmp_path / "out.csv", tmp_path / "win.csv", tmp_path / "fig.png"
    code = run_cli(*classify_args(src, out, monet_dir, "--windows", win, "--figure", fig))
    assert code == 0
    res = pd.read_csv(out).set_index("track_id")
    windows = pd.read_csv(win)
    assert list(res.status) == ["classified", "classified", "skipped", "classified", "skipped"]
    assert list(res.n_windows) == [3, 1, 0, 2, 0]
    assert len(windows) == 6
    done = res[res.status == "classified"]
    p = done[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    # per-track probabilities are the mean over the track's windows
    mean = windows.groupby("track_id")[[f"p_{c}" for c in CLASSES]].mean()
    np.testing.assert_allclose(mean.loc[done.index].to_numpy(), p, atol=1e-6)
    assert list(done.predicted_class) == [CLASSES[k] for k in p.argmax(1)]
    assert list(done.ambiguous) == list(p.max(1) < 0.6)
    # alpha comes from the regressor of the predicted class; Brownian alpha = 1
    for tid, row in done.iterrows():
        w = windows[windows.track_id == tid]
        col = {"brownian": None, "fbm": "alpha_fbm_regressor", "ctrw": "alpha_ctrw_regressor"}
        key = col[row.predicted_class]
        expect = 1.0 if key is None else w[key].mean()
        assert row.alpha == pytest.approx(expect, abs=1e-6)
    assert res.loc[4, "n_gaps"] == 1 and res.loc[5, "n_duplicate_frames"] == 1
    assert fig.is_file() and fig.with_suffix(".pdf").is_file()


def test_classify_matches_direct_model_call_and_is_unit_free(tmp_path, monet_dir):
    """The window probabilities are exactly the classifier's output on those frames, and
    positions in other units (x 1000) give the same result (MoNet normalises each axis)."""
    table = track_table({1: np.arange(L)})
    model = load_monet_models(
        {t: monet_dir / f"monet_{t}.pt" for t in ("classify", "fbm_alpha", "ctrw_alpha")}
    ).models["classify"]
    xy = torch.from_numpy(table[["x", "y"]].to_numpy(np.float32).copy())[None]
    with torch.no_grad():
        direct = model(xy).exp().numpy()[0]
    results = []
    for scale in (1.0, 1000.0):
        t = table.assign(x=table.x * scale, y=table.y * scale)
        t.to_csv(tmp_path / "t.csv", index=False)
        assert run_cli(*classify_args(tmp_path / "t.csv", tmp_path / "o.csv", monet_dir)) == 0
        results.append(pd.read_csv(tmp_path / "o.csv")[[f"p_{c}" for c in CLASSES]].to_numpy())
    np.testing.assert_allclose(results[0][0], direct, atol=1e-6)
    np.testing.assert_allclose(results[1], results[0], atol=1e-4)
    # A calibrated card: probabilities softmax(log p / T); the call and `ambiguous` follow.
    import shutil

    calibrated = tmp_path / "calibrated"
    shutil.copytree(monet_dir, calibrated)
    save_model(calibrated / "monet_classify.pt", model,
               {"net": "monet_classify", "task": "classify", "classes": list(CLASSES),
                "input": {"length_frames": L}, "calibration": {"temperature": 0.25}})  # fmt: skip
    assert run_cli(*classify_args(tmp_path / "t.csv", tmp_path / "c.csv", calibrated)) == 0
    row = pd.read_csv(tmp_path / "c.csv").iloc[0]
    sharp = direct**4 / (direct**4).sum()
    np.testing.assert_allclose(row[[f"p_{c}" for c in CLASSES]].to_numpy(float), sharp, atol=1e-5)
    assert row.predicted_class == CLASSES[int(direct.argmax())]
    assert bool(row.ambiguous) == bool(sharp.max() < 0.6)


def test_trackpy_columns_accepted(tmp_path, monet_dir):
    table = track_table({3: np.arange(L), 8: np.arange(2 * L)}, id_col="particle")
    table["mass"] = 1.0  # trackpy's other columns are ignored
    table.to_csv(tmp_path / "tp.csv", index=False)
    assert run_cli(*classify_args(tmp_path / "tp.csv", tmp_path / "o.csv", monet_dir)) == 0
    res = pd.read_csv(tmp_path / "o.csv")
    assert list(res.track_id) == [3, 8] and list(res.n_windows) == [1, 2]


def test_parquet_round_trip(tmp_path, monet_dir):
    pytest.importorskip("pyarrow")
    table = track_table(STANDARD)
    table.to_parquet(tmp_path / "t.parquet")
    table.to_csv(tmp_path / "t.csv", index=False)
    assert run_cli(*classify_args(tmp_path / "t.parquet", tmp_path / "a.csv", monet_dir)) == 0
    assert run_cli(*classify_args(tmp_path / "t.csv", tmp_path / "b.csv", monet_dir)) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import fails as if not installed
    with pytest.raises(Exception, match="pyarrow"):
        read_tracks(path)


def test_mat_track_array(tmp_path, monet_dir):
    from scipy.io import savemat

    table = track_table({1: np.arange(2 * L), 2: np.arange(L)})
    arr = table[["x", "y", "track_id"]].to_numpy()
    savemat(tmp_path / "t.mat", {"tracks": arr})
    with_frames = table[["x", "y", "track_id", "frame"]].to_numpy().copy()
    with_frames[5:, 3] += 3  # a gap of 3 frames in track 1 after its 5th point
    savemat(tmp_path / "g.mat", {"data": with_frames})
    assert run_cli(*classify_args(tmp_path / "t.mat", tmp_path / "m.csv", monet_dir)) == 0
    res = pd.read_csv(tmp_path / "m.csv")
    assert list(res.track_id) == [1, 2] and list(res.n_windows) == [2, 1]
    table.to_csv(tmp_path / "t.csv", index=False)
    assert run_cli(*classify_args(tmp_path / "t.csv", tmp_path / "c.csv", monet_dir)) == 0
    pd.testing.assert_frame_equal(res, pd.read_csv(tmp_path / "c.csv"))
    g = read_tracks(tmp_path / "g.mat")
    (rep, _) = cut_windows(g, L)
    assert (rep.n_gaps, rep.n_missing_frames, rep.n_segments) == (1, 3, 2)
    # the 5-frame segment before the gap is unused; the 115-frame one gives two windows
    assert [(w.segment, w.frame_start) for w in rep.windows] == [(1, 8), (1, 63)]


# --------------------------------------------------------------------------- bad input
def _bad(tmp_path: Path, monet_dir: Path, src: Path, match: str, *extra: str, capsys) -> None:
    out = tmp_path / "out.csv"
    code = run_cli(*classify_args(src, out, monet_dir, "--figure", tmp_path / "f.png", *extra))
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("temflow: error: ") and err.count("\n") == 0
    assert match in err, err
    assert not out.exists() and not (tmp_path / "f.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files


def test_bad_track_inputs(tmp_path, monet_dir, capsys):
    good = track_table({1: np.arange(L)})
    (tmp_path / "empty.csv").write_text("")
    _bad(tmp_path, monet_dir, tmp_path / "empty.csv", "empty.csv: file is empty", capsys=capsys)
    _bad(tmp_path, monet_dir, tmp_path / "nope.csv", "nope.csv: track file not found",
         capsys=capsys)  # fmt: skip
    (tmp_path / "header.csv").write_text("track_id,frame,x,y\n")
    _bad(tmp_path, monet_dir, tmp_path / "header.csv", "no rows", capsys=capsys)
    good.drop(columns="y").to_csv(tmp_path / "noy.csv", index=False)
    _bad(tmp_path, monet_dir, tmp_path / "noy.csv", "noy.csv: missing column(s) y",
         capsys=capsys)  # fmt: skip
    good.rename(columns={"track_id": "id"}).to_csv(tmp_path / "noid.csv", index=False)
    _bad(tmp_path, monet_dir, tmp_path / "noid.csv", "missing column(s) track_id (or particle)",
         capsys=capsys)  # fmt: skip
    nan = good.copy()
    nan.loc[7, "x"] = np.nan
    nan.to_csv(tmp_path / "nan.csv", index=False)
    _bad(tmp_path, monet_dir, tmp_path / "nan.csv", "nan.csv: column 'x' has 1 NaN",
         capsys=capsys)  # fmt: skip
    inf = good.copy()
    inf.loc[3, "y"] = np.inf
    inf.to_csv(tmp_path / "inf.csv", index=False)
    _bad(tmp_path, monet_dir, tmp_path / "inf.csv", "column 'y' has 1 NaN, infinite",
         capsys=capsys)  # fmt: skip
    (tmp_path / "bin.mat").write_bytes(b"\x00\x01garbage" * 10)
    _bad(tmp_path, monet_dir, tmp_path / "bin.mat", "bin.mat: cannot read as mat", capsys=capsys)
    (tmp_path / "t.xlsx").write_text("x")
    _bad(tmp_path, monet_dir, tmp_path / "t.xlsx", "unknown track file type", capsys=capsys)


def test_tracks_shorter_than_the_model_card_is_an_error(tmp_path, monet_dir, capsys):
    track_table({1: np.arange(30), 2: np.r_[0:40, 45:90]}).to_csv(tmp_path / "s.csv", index=False)
    _bad(tmp_path, monet_dir, tmp_path / "s.csv",
         f"trained on {L}-frame tracks and the longest gap-free run", capsys=capsys)  # fmt: skip


def test_mismatched_model_cards_are_errors(tmp_path, monet_dir, capsys):
    track_table({1: np.arange(L)}).to_csv(tmp_path / "t.csv", index=False)
    # a regressor given as the classifier
    _bad(tmp_path, monet_dir, tmp_path / "t.csv", "card.architecture.args.task",
         "--classifier", monet_dir / "monet_fbm_alpha.pt", capsys=capsys)  # fmt: skip
    # a card edited after training no longer matches the checkpoint
    bad_dir = tmp_path / "models"
    bad_dir.mkdir()
    for p in monet_dir.iterdir():
        (bad_dir / p.name).write_bytes(p.read_bytes())
    card = json.loads((bad_dir / "monet_ctrw_alpha.json").read_text())
    card["input"]["length_frames"] = 100
    (bad_dir / "monet_ctrw_alpha.json").write_text(json.dumps(card))
    out = tmp_path / "o.csv"
    assert run_cli(*classify_args(tmp_path / "t.csv", out, bad_dir)) == 2
    assert "monet_ctrw_alpha.json: model card differs" in capsys.readouterr().err
    assert not out.exists()
    _bad(tmp_path, monet_dir, tmp_path / "t.csv", "nothere/monet_classify.pt: model file not found",
         "--classifier", tmp_path / "nothere" / "monet_classify.pt", capsys=capsys)  # fmt: skip


def test_noise_aware_classifier_needs_the_localisation_precision(
    tmp_path, monet_dir, capsys, caplog
):
    """A classifier trained with monet.noise_input is told the precision (a constant third
    column in the units of x and y); without it the CLI stops with one clear message."""
    aware = tmp_path / "aware.pt"
    torch.manual_seed(5)
    save_model(aware, get_task("classify").build_model(noise_input=True).eval(),
               {"net": "monet_classify", "task": "classify", "classes": list(CLASSES),
                "input": {"length_frames": L}})  # fmt: skip
    table = track_table({1: np.arange(L)})
    table.to_csv(tmp_path / "t.csv", index=False)
    _bad(tmp_path, monet_dir, tmp_path / "t.csv",
         "aware.pt: this network was trained with the localisation precision as an input",
         "--classifier", aware, capsys=capsys)  # fmt: skip
    _bad(tmp_path, monet_dir, tmp_path / "t.csv", "localisation precision: expected a finite",
         "--classifier", aware, "--localisation-precision", "-1", capsys=capsys)  # fmt: skip
    model, _ = load_model(aware, MoNet)
    xy = torch.from_numpy(table[["x", "y"]].to_numpy(np.float32).copy())[None]
    probs = []
    for sigma in (0.0, 0.4):
        out = tmp_path / f"o{sigma}.csv"
        args = classify_args(tmp_path / "t.csv", out, monet_dir, "--classifier", aware,
                             "--localisation-precision", str(sigma))  # fmt: skip
        assert run_cli(*args) == 0
        probs.append(pd.read_csv(out)[[f"p_{c}" for c in CLASSES]].to_numpy()[0])
        with torch.no_grad():
            direct = model(torch.cat([xy, torch.full_like(xy[..., :1], sigma)], -1))
        np.testing.assert_allclose(probs[-1], direct.exp().numpy()[0], atol=1e-6)
    assert np.abs(probs[0] - probs[1]).max() > 1e-5
    # A precision larger than the scatter allows is reported (and clipped in the net).
    from temflow.apply.classify import warn_inconsistent_precision

    windows = torch.from_numpy(np.stack([random_walk(L, seed=s) for s in range(6)]))
    assert warn_inconsistent_precision(windows, 0.3) == 0
    windows[:2] = windows[:2, :1]  # two particles that do not move
    with caplog.at_level("WARNING"):
        assert warn_inconsistent_precision(windows, 0.3) == 2
    assert "2 of 6 windows: the localisation precision 0.3 exceeds" in caplog.text
    assert warn_inconsistent_precision(windows, 5.0) == 6
    # The reference-style networks ignore a given precision.
    assert run_cli(*classify_args(tmp_path / "t.csv", tmp_path / "p.csv", monet_dir,
                                  "--localisation-precision", "0.4")) == 0  # fmt: skip


def test_localisation_precision_from_the_tracks_or_a_column(tmp_path, monet_dir, capsys):
    """--localisation-precision auto (pooled over the file), auto-track (per track) and a
    per-localisation column (trackpy's ep): the value used is reported per track and is
    the sigma column the noise-aware network reads."""
    from temflow.trajectories.io import add_localisation_noise, simulate_process

    aware = tmp_path / "aware.pt"
    torch.manual_seed(6)
    save_model(aware, get_task("classify").build_model(noise_input=True).eval(),
               {"net": "monet_classify", "task": "classify", "classes": list(CLASSES),
                "input": {"length_frames": L}})  # fmt: skip
    rng = np.random.default_rng(3)
    n, frames, d = 40, 2 * L, np.full(40, 2.0)  # step std 2 px, sigma 1 px
    xy = add_localisation_noise(simulate_process("brownian", np.ones(n), frames, d, {}, rng),
                                d, 0.5, rng)  # fmt: skip
    xy[:20] *= 3.0  # the first 20 tracks: sigma 3 px
    table = pd.DataFrame({"particle": np.repeat(np.arange(n), frames),
                          "frame": np.tile(np.arange(frames), n),
                          "x": xy[..., 0].ravel(), "y": xy[..., 1].ravel()})  # fmt: skip
    table["ep"] = np.where(table.particle < 20, 3.0, 1.0) + 0.01 * table.frame
    table.to_csv(tmp_path / "t.csv", index=False)
    common = ("--classifier", aware)
    out = tmp_path / "auto.csv"
    assert run_cli(*classify_args(tmp_path / "t.csv", out, monet_dir, *common,
                                  "--localisation-precision", "auto")) == 0  # fmt: skip
    assert "localisation precision: auto (exposure 0 frames), estimated" in capsys.readouterr().out
    pooled = pd.read_csv(out).localisation_precision
    assert pooled.nunique() == 1 and abs(pooled[0] - np.sqrt((9 + 1) / 2)) < 0.25
    out = tmp_path / "track.csv"
    assert run_cli(*classify_args(tmp_path / "t.csv", out, monet_dir, *common,
                                  "--localisation-precision", "auto-track")) == 0  # fmt: skip
    per_track = pd.read_csv(out).localisation_precision.to_numpy()
    assert abs(np.median(per_track[:20]) - 3.0) < 0.3 and abs(np.median(per_track[20:]) - 1) < 0.1
    out, win = tmp_path / "ep.csv", tmp_path / "ep_windows.csv"
    assert run_cli(*classify_args(tmp_path / "t.csv", out, monet_dir, *common, "--windows", win,
                                  "--localisation-precision", "ep")) == 0  # fmt: skip
    model, _ = load_model(aware, MoNet)
    first = table[table.particle == 0].iloc[:L]
    x = torch.from_numpy(first[["x", "y", "ep"]].to_numpy(np.float32).copy())[None]
    with torch.no_grad():
        direct = model(x).exp().numpy()[0]
    row = pd.read_csv(win).iloc[0]
    np.testing.assert_allclose(row[[f"p_{c}" for c in CLASSES]].to_numpy(float), direct, atol=1e-6)
    ep = first.ep.to_numpy()
    assert abs(row.localisation_precision - np.sqrt(np.mean(ep**2))) < 1e-9
    _bad(tmp_path, monet_dir, tmp_path / "t.csv", "t.csv: no column 'sigma_nm'", *common,
         "--localisation-precision", "sigma_nm", capsys=capsys)  # fmt: skip
    _bad(tmp_path, monet_dir, tmp_path / "t.csv", "exposure time: expected 0..1", *common,
         "--localisation-precision", "auto", "--exposure-time-frames", "2",
         capsys=capsys)  # fmt: skip


def test_conditions_several_files_and_group_by(tmp_path, monet_dir, capsys):
    """Class fractions per condition with 95 % Wilson intervals, from several files (one
    condition each) or a --group-by column; the figure is drawn; bad inputs fail with one
    message and nothing written."""
    from scipy.stats import binomtest

    from temflow.apply.conditions import group_fractions

    spec = {tid: np.arange(L) for tid in range(1, 10)}
    table = track_table(spec)
    table["dose_rate"] = np.where(table.track_id <= 4, 2.5, 10.0)
    table["liquid"] = np.where(table.track_id <= 6, "water", "glycerol")
    table.loc[table.track_id == 9, "frame"] += 1000  # stays one run of L frames
    table.to_csv(tmp_path / "a.csv", index=False)
    table[table.track_id <= 3].to_csv(tmp_path / "b.csv", index=False)
    out, frac, fig = tmp_path / "o.csv", tmp_path / "frac.csv", tmp_path / "frac.png"
    args = classify_args(tmp_path / "a.csv", out, monet_dir, "--group-by", "dose_rate",
                         "--fractions", frac, "--fractions-figure", fig)  # fmt: skip
    assert run_cli(*args) == 0
    assert "dose_rate 2.5: 4 tracks" in capsys.readouterr().out
    tracks, fractions = pd.read_csv(out), pd.read_csv(frac)
    assert list(fractions.dose_rate) == [2.5, 10.0]
    assert list(fractions.n_classified) == [4, 5]
    for _, row in fractions.iterrows():
        sel = tracks[tracks.dose_rate == row.dose_rate]
        assert sum(row[f"n_{c}"] for c in CLASSES) == len(sel)
        for c in CLASSES:
            k = int((sel.predicted_class == c).sum())
            ci = binomtest(k, len(sel)).proportion_ci(0.95, method="wilson")
            assert row[f"n_{c}"] == k and row[f"fraction_{c}"] == pytest.approx(k / len(sel))
            assert (row[f"fraction_{c}_low"], row[f"fraction_{c}_high"]) == pytest.approx(
                (ci.low, ci.high)
            )
            alpha = sel.loc[sel.predicted_class == c, "alpha"]
            if len(alpha):
                assert row[f"alpha_{c}_median"] == pytest.approx(alpha.median())
    assert fig.stat().st_size > 0 and fig.with_suffix(".pdf").exists()
    # Two files: one condition each, the file name; string conditions sort as text.
    out2, frac2 = tmp_path / "o2.csv", tmp_path / "f2.csv"
    two = classify_args(tmp_path / "b.csv", out2, monet_dir, "--fractions", frac2)
    two.insert(2, str(tmp_path / "a.csv"))  # classify b.csv a.csv -o ...
    assert run_cli(*two) == 0
    both = pd.read_csv(frac2)
    assert list(both.file) == ["a.csv", "b.csv"] and list(both.n_classified) == [9, 3]
    assert list(pd.read_csv(out2).file[:3]) == ["b.csv"] * 3
    liquid = np.where(tracks.track_id <= 6, "water", "glycerol")
    by_liquid = group_fractions(tracks.assign(liquid=liquid), "liquid")
    assert list(by_liquid.liquid) == ["glycerol", "water"]
    # Bad inputs: one message naming the problem, nothing written.
    _bad(tmp_path, monet_dir, tmp_path / "a.csv", "a.csv: no column 'temperature_K' to group",
         "--group-by", "temperature_K", "--fractions", tmp_path / "x.csv",
         capsys=capsys)  # fmt: skip
    varying = table.assign(dose_rate=np.arange(len(table)))
    varying.to_csv(tmp_path / "v.csv", index=False)
    _bad(tmp_path, monet_dir, tmp_path / "v.csv", "column 'dose_rate' changes along track 1",
         "--group-by", "dose_rate", capsys=capsys)  # fmt: skip
    short = table.copy()
    short.loc[short.dose_rate == 10.0, "frame"] *= 2  # every other frame: no window fits
    short.to_csv(tmp_path / "s.csv", index=False)
    _bad(tmp_path, monet_dir, tmp_path / "s.csv", "group 10.0: none of its 5 track(s) could be "
         "classified (e.g. too short", "--group-by", "dose_rate", capsys=capsys)  # fmt: skip
    _bad(tmp_path, monet_dir, tmp_path / "a.csv", "--fractions / --fractions-figure: give "
         "several track files or --group-by", "--fractions", tmp_path / "x.csv",
         capsys=capsys)  # fmt: skip


def test_injected_drift_is_removed(tmp_path, monet_dir, capsys):
    """A drift common to every particle (linear stage drift plus an oscillating flow) is
    measured as the injected drift plus the mean of the particles' own displacements
    (trackpy.compute_drift), exactly, and subtracted; classify --subtract-drift then sees
    the drift-free tracks up to that mean."""
    from temflow.apply.drift import subtract_ensemble_drift

    rng = np.random.default_rng(4)
    n, frames = 40, np.arange(2 * L)
    own = np.cumsum(rng.normal(0, 1.0, (n, len(frames), 2)), axis=1)
    injected = np.stack([0.8 * frames + 15 * np.sin(frames / 9.0), -0.5 * frames], axis=-1)
    ids = [f"p{i}" for i in range(n)]

    def table_of(xy):
        return pd.DataFrame({"track_id": np.repeat(ids, len(frames)),
                             "frame": np.tile(frames + 100, n),
                             "x": xy[..., 0].ravel(), "y": xy[..., 1].ravel()})  # fmt: skip

    drifting = table_of(own + injected).sample(frac=1.0, random_state=0)  # any row order
    drifting = drifting[~((drifting.track_id == "p3") & (drifting.frame == 150))]  # a gap
    out, drift = subtract_ensemble_drift(drifting)
    assert list(out.index) == list(drifting.index)
    assert drift.index[0] == 100 and len(drift) == len(frames)
    mean_own = np.zeros((len(frames), 2))
    inc = np.diff(own, axis=1)
    present = np.ones((n, len(frames)), bool)
    present[3, 50] = False
    both = present[:, 1:] & present[:, :-1]
    mean_own[1:] = np.cumsum((inc * both[..., None]).sum(0) / both.sum(0)[:, None], axis=0)
    expected = injected - injected[0] + mean_own
    np.testing.assert_allclose(drift[["x", "y"]].to_numpy(), expected, atol=1e-9)
    # What is left of the injected drift is the particles' mean motion, ~ sqrt(2 t / n).
    assert np.abs(expected - (injected - injected[0])).max() < 4.0
    assert np.abs(injected - injected[0]).max() > 80
    drifting.to_csv(tmp_path / "d.csv", index=False)
    res = tmp_path / "d_out.csv"
    assert run_cli(*classify_args(tmp_path / "d.csv", res, monet_dir, "--subtract-drift")) == 0
    assert "ensemble drift subtracted over 120 frames" in capsys.readouterr().out
    out.to_csv(tmp_path / "c.csv", index=False)  # the tracks corrected beforehand
    ref = tmp_path / "c_out.csv"
    assert run_cli(*classify_args(tmp_path / "c.csv", ref, monet_dir)) == 0
    cols = [f"p_{c}" for c in CLASSES]
    np.testing.assert_allclose(pd.read_csv(res)[cols], pd.read_csv(ref)[cols], atol=1e-5)
    _bad(tmp_path, monet_dir, tmp_path / "d.csv", "--drift-smoothing-frames: expected >= 0",
         "--subtract-drift", "--drift-smoothing-frames", "-2", capsys=capsys)  # fmt: skip


# --------------------------------------------------------------------------- CLI plumbing
@pytest.mark.parametrize("argv", [["--help"], ["classify", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert (
        ("--device" in text and "--windows" in text)
        if argv[0] == "classify"
        else ("classify" in text and "info" in text)
    )


def test_usage_errors_exit_nonzero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["classify"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["classify", "t.csv", "-o", "o.csv", "--device", "tpu"])
    assert exc.value.code == 2


def test_console_entry_point_subprocess(tmp_path, monet_dir):
    track_table({1: np.arange(L)}).to_csv(tmp_path / "t.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "temflow.cli", *classify_args(tmp_path / "t.csv",
           tmp_path / "o.csv", monet_dir)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "1 of 1 tracks classified" in proc.stdout
    assert pd.read_csv(tmp_path / "o.csv").status.tolist() == ["classified"]
    bad = subprocess.run(cmd[:4] + [str(tmp_path / "missing.csv")] + cmd[5:],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert bad.returncode == 2 and "missing.csv: track file not found" in bad.stderr


# --------------------------------------------------------------------------- end to end
@pytest.mark.workflow
def test_classify_end_to_end_matches_workflow_evaluation(workflow_results, tmp_path):
    """The trained test-config models applied through the CLI to the workflow's own test
    trajectories give the probabilities the workflow's evaluation wrote."""
    from temflow.trajectories.io import read_trajectories

    data = read_trajectories(workflow_results / "trajectories" / "classify_test.h5")
    n, length, _ = data.positions.shape
    table = pd.DataFrame(
        {
            "particle": np.repeat(np.arange(n), length),
            "frame": np.tile(np.arange(length), n),
            "x": data.positions[..., 0].ravel(),
            "y": data.positions[..., 1].ravel(),
        }
    )
    table.to_csv(tmp_path / "sim.csv", index=False)
    out, fig = tmp_path / "res.csv", tmp_path / "classes.png"
    code = main(["classify", str(tmp_path / "sim.csv"), "-o", str(out), "--figure", str(fig),
                 "--models", str(workflow_results / "models"), "--device", "cpu"])  # fmt: skip
    assert code == 0
    res = pd.read_csv(out)
    ref = pd.read_csv(workflow_results / "eval" / "monet_classify.csv")
    assert (res.status == "classified").all() and (res.n_windows == 1).all()
    cols = [f"p_{c}" for c in CLASSES]
    np.testing.assert_allclose(res[cols].to_numpy(), ref[cols].to_numpy(), atol=1e-4)
    assert (res.predicted_class == ref.predicted_class).mean() > 0.98
    assert fig.is_file()


# =========================================================================== segment
from temflow.apply.images import FocalSeries, read_focal_series, resample  # noqa: E402
from temflow.apply.segment import predict_tiled, segment_series  # noqa: E402
from temflow.hrtem.shards import ImageRecord, write_shard  # noqa: E402
from temflow.models import MSDNet, UNet  # noqa: E402
from temflow.segmentation.card import load_segmenter  # noqa: E402
from temflow.segmentation.data import normalise  # noqa: E402

S = 0.2  # model sampling (A/px) of the test segmentation models
SEG_CLASSES = ["Mo", "S2", "S1"]
BLOBS_A = np.array([[3.0, 4.0], [12.8, 6.0], [6.0, 12.7], [15.0, 15.0]])  # (x_A, y_A)


def blob_series(shape: tuple[int, int], sampling: float, sigma_A: float = 0.5) -> np.ndarray:
    """(3, H, W) focal series of Gaussian 'columns' at BLOBS_A (different heights per
    channel), rendered analytically at ``sampling``."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] * sampling
    img = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma_A**2)) for x, y in BLOBS_A)
    return np.stack([img * (1 + 0.3 * c) + 0.1 * c for c in range(3)]).astype(np.float32)


def _peaked(model: torch.nn.Module) -> torch.nn.Module:
    """Random network whose output maps follow the input: the final 1x1 layer passes the
    normalised input channels through, plus small random contributions of every feature."""
    with torch.no_grad():
        if isinstance(model, MSDNet):
            model.final.reset_parameters()  # MSDNet starts it at zero
            model.final.weight.mul_(0.05)
            model.final.weight[:, :3, 0, 0] += 0.3 * torch.eye(3)
        else:
            model.head.weight.mul_(0.05)
    return model.eval()


@pytest.fixture(scope="module")
def seg_models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("segmodels")
    paths = {}
    for name, build in (("msdnet", lambda: MSDNet(3, 3, depth=10, width=1)),
                        ("unet", lambda: UNet(3, 3, depth=2, base_width=4))):  # fmt: skip
        torch.manual_seed(0)
        model = _peaked(build())
        card = {"network": name, "substrate": "bare", "classes": SEG_CLASSES,
                "in_channels": 3, "sampling_range_A": [S, S]}  # fmt: skip
        paths[name] = d / f"{name}_bare.pt"
        save_model(paths[name], model, card)
    return paths


def seg_args(inputs, out: Path, model: Path, *extra) -> list[str]:
    files = [str(p) for p in (inputs if isinstance(inputs, list) else [inputs])]
    return ["segment", *files, "-o", str(out), "--model", str(model), "--device", "cpu",
            *map(str, extra)]  # fmt: skip


def test_tiles_do_not_change_the_maps(seg_models):
    """Whole image vs tiles of several sizes (MSD-net and U-net): the same maps, so a
    column on a tile border is found where the whole-image pass finds it."""
    image = normalise(blob_series((90, 100), S))
    dev = torch.device("cpu")
    for name, path in seg_models.items():
        from temflow.segmentation.card import load_segmenter

        model, _ = load_segmenter(path)
        whole = predict_tiled(model, image, dev, tile_px=1000)
        for tile in (32, 40, 64):  # x = 12.8 A = px 64: on a tile border for 32 and 64
            tiled = predict_tiled(model, image, dev, tile_px=tile)
            np.testing.assert_allclose(tiled, whole, atol=2e-5, err_msg=f"{name} tile {tile}")
        # without context the border shows: the test can fail
        bare = predict_tiled(model, image, dev, tile_px=32, margin_px=0)
        assert np.abs(bare - whole).max() > 1e-4  # 5x the tolerance above


def test_segment_column_on_tile_border(tmp_path, seg_models):
    np.save(tmp_path / "s.npy", blob_series((90, 100), S))
    found = {}
    for tile in (1000, 32):  # column at x = 12.8 A = px 64 sits on a 32-px tile border
        out = tmp_path / f"t{tile}.csv"
        args = seg_args(tmp_path / "s.npy", out, seg_models["msdnet"], "--sampling", S,
                        "--tile", tile)  # fmt: skip
        assert run_cli(*args) == 0
        found[tile] = pd.read_csv(out)
    pd.testing.assert_frame_equal(found[32], found[1000], atol=1e-4)
    mo = found[32][found[32]["class"] == "Mo"]
    d = np.hypot(mo.x_A.to_numpy()[:, None] - 12.8, mo.y_A.to_numpy()[:, None] - 6.0)
    assert d.min() < 0.05  # the border column is found at its place


def assert_columns_of_the_clean_series(tmp_path, out, model):
    """``out``'s columns are where ``segment --no-register`` finds them on
    ``tmp_path/clean.npy`` (written to ``ref.csv``, whose path is returned)."""
    ref = tmp_path / "ref.csv"
    assert (
        run_cli(*seg_args(tmp_path / "clean.npy", ref, model, "--sampling", S), "--no-register")
        == 0
    )
    got, want = pd.read_csv(out), pd.read_csv(ref)
    assert len(got) == len(want) >= len(BLOBS_A)
    np.testing.assert_allclose(got[["x_A", "y_A"]], want[["x_A", "y_A"]], atol=0.05)
    return ref


def test_segment_registers_the_frames(tmp_path, seg_models, capsys):
    """Channels 0 and 2 drifted by known shifts: ``segment`` finds them within 0.1 px,
    prints them, writes them beside the columns, and finds the columns where the
    unshifted series has them; ``--no-register`` writes zeros. (Reversed contrast:
    tests/test_frames.py.)"""
    from temflow.hrtem.frames import shift_frames

    clean = blob_series((90, 100), S)
    truth = np.array([[0.31, -0.22], [0.0, 0.0], [-0.18, 0.43]])
    np.save(tmp_path / "drift.npy", shift_frames(clean, truth, S).astype(np.float32))
    np.save(tmp_path / "clean.npy", clean)
    out = tmp_path / "cols.csv"
    assert (
        run_cli(*seg_args(tmp_path / "drift.npy", out, seg_models["msdnet"], "--sampling", S)) == 0
    )
    printed = capsys.readouterr().out
    assert "frame shifts against channel 1 (dx, dy) A: (+0.310, -0.220)" in printed
    shifts = pd.read_csv(tmp_path / "cols_frame_shifts.csv")
    assert list(shifts.columns) == [
        "image", "channel", "reference", "dx_A", "dy_A", "rotation_deg", "registered"
    ]  # fmt: skip
    assert (shifts.rotation_deg == 0).all()  # no rotation searched by default
    assert shifts.reference.tolist() == [False, True, False] and shifts.registered.all()
    np.testing.assert_allclose(shifts[["dx_A", "dy_A"]].to_numpy(), truth, atol=0.1 * S)
    assert_columns_of_the_clean_series(tmp_path, out, seg_models["msdnet"])
    unregistered = pd.read_csv(tmp_path / "ref_frame_shifts.csv")
    assert not unregistered.registered.any() and (unregistered[["dx_A", "dy_A"]] == 0).all(
        axis=None
    )


def test_segment_registers_rotated_frames(tmp_path, seg_models, capsys):
    """Channels 0 and 2 turned about the centre and drifted: ``--max-rotation 2`` finds
    both within 0.05 deg and 0.1 px, prints and writes them, and the columns land where
    the unmoved series has them; a negative limit is refused."""
    from temflow.hrtem.frames import rotate_frames, shift_frames

    clean = blob_series((90, 100), S)
    angles = np.array([1.2, 0.0, -0.8])
    truth = np.array([[0.21, -0.12], [0.0, 0.0], [-0.18, 0.23]])
    moved = shift_frames(rotate_frames(clean, angles, mode="reflect"), truth, S)
    np.save(tmp_path / "turned.npy", moved.astype(np.float32))
    np.save(tmp_path / "clean.npy", clean)
    out = tmp_path / "cols.csv"
    args = seg_args(tmp_path / "turned.npy", out, seg_models["msdnet"], "--sampling", S)
    assert run_cli(*args, "--max-rotation", "2") == 0
    assert "frame rotations against channel 1 (deg): " in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "cols_frame_shifts.csv")
    np.testing.assert_allclose(table.rotation_deg, angles, atol=0.05)
    np.testing.assert_allclose(table[["dx_A", "dy_A"]].to_numpy(), truth, atol=0.1 * S)
    ref = assert_columns_of_the_clean_series(tmp_path, out, seg_models["msdnet"])
    args = seg_args(tmp_path / "clean.npy", ref, seg_models["msdnet"], "--sampling", S)
    assert run_cli(*args, "--max-rotation", "-1") != 0
    assert "--max-rotation must be >= 0 deg" in capsys.readouterr().err


def _record(series: np.ndarray, sampling: float) -> ImageRecord:
    """A pipeline shard record of one focal series (no atoms)."""
    cols = pd.DataFrame({"x_A": BLOBS_A[:, 0], "y_A": BLOBS_A[:, 1], "class": 0})
    return ImageRecord(series, cols, np.zeros((0, 3)), np.zeros(0, int), np.eye(3),
                       np.zeros((0, 3)), np.zeros(0, int), {"sampling_A": sampling})  # fmt: skip


def _write_formats(tmp_path: Path, series: np.ndarray, sampling: float) -> dict[str, list[Path]]:
    import h5py
    import tifffile

    files: dict[str, list[Path]] = {}
    res = (1 / (sampling / 10), 1 / (sampling / 10))  # pixels per nm
    p = tmp_path / "series.tif"
    tifffile.imwrite(p, series, imagej=True, resolution=res, metadata={"unit": "nm"})
    files["multipage_tiff"] = [p]
    singles = []
    for c in range(3):
        q = tmp_path / f"focus_{c}.tif"
        tifffile.imwrite(q, series[c], imagej=True, resolution=res, metadata={"unit": "nm"})
        singles.append(q)
    files["single_tiffs"] = singles
    np.save(tmp_path / "series.npy", series)
    files["npy"] = [tmp_path / "series.npy"]
    with h5py.File(tmp_path / "stack.h5", "w") as f:  # a plain (N, C, H, W) stack
        f.create_dataset("images", data=series[None])
        f.attrs["sampling_A"] = sampling
        f.attrs["n_images"] = 1
    files["hdf5_stack"] = [tmp_path / "stack.h5"]
    write_shard(tmp_path / "shard_0000.h5", [_record(series, sampling)],
                {"sampling_A": [sampling, sampling], "classes": SEG_CLASSES})  # fmt: skip
    files["shard"] = [tmp_path / "shard_0000.h5"]
    from rsciio.emd import file_writer

    def axis(name: str, index: int, units: str, scale: float, nav: bool) -> dict:
        size = series.shape[index]
        return {"name": name, "units": units, "index_in_array": index, "navigate": nav,
                "size": size, "offset": 0, "scale": scale}  # fmt: skip

    axes = [axis("focus", 0, "", 1, True), axis("y", 1, "nm", sampling / 10, False),
            axis("x", 2, "nm", sampling / 10, False)]  # fmt: skip
    file_writer(
        str(tmp_path / "series.emd"),
        {
            "data": series,
            "axes": axes,
            "metadata": {"General": {"title": "focal series"}, "Signal": {}},
            "original_metadata": {},
        },
    )
    files["emd"] = [tmp_path / "series.emd"]
    return files


def test_every_image_format_gives_the_same_columns(tmp_path, seg_models):
    """Each format written here and read back through the command. DM3/DM4 and SER are
    read-only in rosettasciio (no writer), so those formats cannot be written by a test."""
    series = blob_series((90, 100), S)
    files = _write_formats(tmp_path, series, S)
    results = {}
    for fmt, paths in files.items():
        out = tmp_path / f"{fmt}.csv"
        extra = ["--sampling", S] if fmt == "npy" else []
        assert run_cli(*seg_args(paths, out, seg_models["msdnet"], *extra)) == 0, fmt
        results[fmt] = pd.read_csv(out)
        got = read_focal_series(paths, S if fmt == "npy" else None)
        assert got.sampling_A == pytest.approx([S], rel=1e-5), fmt
        np.testing.assert_allclose(got.images[0], series, rtol=1e-6, err_msg=fmt)
    ref = results["npy"]
    assert len(ref) >= len(BLOBS_A)
    for fmt, table in results.items():
        pd.testing.assert_frame_equal(table, ref, atol=1e-4, obj=fmt)


def test_dm_and_ser_cannot_be_written_by_rosettasciio():
    import rsciio.digitalmicrograph as dm
    import rsciio.tia as tia

    if hasattr(dm, "file_writer") or hasattr(tia, "file_writer"):
        pytest.fail("rosettasciio can now write DM/SER: add them to the format test")
    pytest.skip("rosettasciio has no writer for .dm3/.dm4/.ser; read path untested here")


def test_resampling_to_the_model_sampling(tmp_path, seg_models):
    """The same columns imaged at half the model's pixel size are found at the same
    Angstrom positions after resampling."""
    coarse, fine = blob_series((90, 100), S), blob_series((179, 199), S / 2)
    assert resample(fine, S / 2, S).shape == coarse.shape
    np.testing.assert_allclose(resample(fine, S / 2, S), coarse, atol=0.03)
    tables = []
    for k, (img, s) in enumerate(((coarse, S), (fine, S / 2))):
        np.save(tmp_path / f"{k}.npy", img)
        out = tmp_path / f"{k}.csv"
        assert run_cli(*seg_args(tmp_path / f"{k}.npy", out, seg_models["msdnet"],
                                 "--sampling", s)) == 0  # fmt: skip
        tables.append(pd.read_csv(out).query("`class` == 'Mo'"))
    for x, y in BLOBS_A:
        for t in tables:
            assert np.hypot(t.x_A - x, t.y_A - y).min() < 0.05


def test_sampling_inside_the_trained_range_is_kept(seg_models, caplog):
    """A card trained on 0.15-0.25 A/px: an image at 0.18 A/px is segmented as given, one
    at 0.1 A/px is resampled to 0.15 A/px (logged); both find the columns in A."""
    model, card = load_segmenter(seg_models["msdnet"])
    card = {**card, "sampling_range_A": [0.15, 0.25]}
    inside, outside = blob_series((100, 111), 0.18), blob_series((179, 199), 0.1)
    series = FocalSeries([inside, outside], [0.18, 0.1], "two images")
    caplog.set_level("INFO", logger="temflow.apply.segment")
    result = segment_series(series, model, card, device="cpu")
    assert result.sampling_A == [0.18, 0.15] and result.input_sampling_A == [0.18, 0.1]
    assert result.n_resampled == 1 and result.sampling_range_A == (0.15, 0.25)
    assert result.resampled[0] is inside  # kept as given
    assert result.resampled[1].shape[-2:] == (119, 133)
    assert [r.getMessage() for r in caplog.records if "resampled" in r.getMessage()] == [
        "image 1: 0.1 A/px is outside the model's trained range [0.15, 0.25] A/px; "
        "resampled to 0.15 A/px"
    ]
    for n in range(2):
        mo = result.columns.query(f"image == {n} and `class` == 'Mo'")
        for x, y in BLOBS_A:
            assert np.hypot(mo.x_A - x, mo.y_A - y).min() < 0.05


def test_shard_images_keep_their_own_sampling_and_shape(tmp_path, seg_models):
    """A pipeline shard with images of different sampling and shape, through the command."""
    records = [_record(blob_series((90, 100), S), S), _record(blob_series((100, 111), 0.18), 0.18)]
    path = tmp_path / "shard_0000.h5"
    write_shard(path, records, {"sampling_A": [0.18, S], "classes": SEG_CLASSES})
    series = read_focal_series([path])
    assert series.sampling_A == [S, 0.18] and series.sampling_from == "file metadata"
    assert [img.shape for img in series.images] == [(3, 90, 100), (3, 100, 111)]
    out = tmp_path / "cols.csv"
    assert run_cli(*seg_args(path, out, seg_models["msdnet"], "--overlay", tmp_path / "o.png")) == 0
    table = pd.read_csv(out)
    for n in range(2):  # image 1 is resampled to the card's 0.2 A/px: same positions in A
        mo = table.query(f"image == {n} and `class` == 'Mo'")
        for x, y in BLOBS_A:
            assert np.hypot(mo.x_A - x, mo.y_A - y).min() < 0.05
    assert (tmp_path / "o_000.png").is_file() and (tmp_path / "o_001.png").is_file()


def _seg_bad(tmp_path, capsys, inputs, model, match, *extra):
    out = tmp_path / "cols.csv"
    code = run_cli(*seg_args(inputs, out, model, "--overlay", tmp_path / "ov.png", *extra))
    err = capsys.readouterr().err.strip()
    assert code != 0 and err.startswith("temflow: error: ") and "\n" not in err
    assert match in err, err
    assert not out.exists() and not (tmp_path / "ov.png").exists()


def test_segment_bad_inputs(tmp_path, seg_models, capsys, monet_dir):
    import tifffile

    m = seg_models["msdnet"]
    series = blob_series((40, 44), S)
    (tmp_path / "empty.npy").write_bytes(b"")
    _seg_bad(tmp_path, capsys, tmp_path / "empty.npy", m, "empty.npy: file is empty")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all" * 20)
    _seg_bad(tmp_path, capsys, tmp_path / "junk.tif", m, "junk.tif: cannot read the file")
    _seg_bad(tmp_path, capsys, tmp_path / "gone.npy", m, "gone.npy: image file not found")
    np.save(tmp_path / "four.npy", np.concatenate([series, series[:1]]))
    _seg_bad(tmp_path, capsys, tmp_path / "four.npy", m,
             "four.npy: expected 3 images (channels)", "--sampling", S)  # fmt: skip
    tifffile.imwrite(tmp_path / "two.tif", series[:2])
    _seg_bad(tmp_path, capsys, tmp_path / "two.tif", m, "expected 3 images", "--sampling", S)
    np.save(tmp_path / "one.npy", series[0])
    _seg_bad(tmp_path, capsys, tmp_path / "one.npy", m, "one 2-D image", "--sampling", S)
    nan = series.copy()
    nan[1, 5, 7] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    _seg_bad(tmp_path, capsys, tmp_path / "nan.npy", m,
             "nan.npy: 1 NaN or infinite pixel(s) (first: image 0, channel 1, pixel [5, 7])",
             "--sampling", S)  # fmt: skip
    inf = series.copy()
    inf[2, 0, 0] = -np.inf
    np.save(tmp_path / "inf.npy", inf)
    _seg_bad(tmp_path, capsys, tmp_path / "inf.npy", m, "NaN or infinite", "--sampling", S)
    np.save(tmp_path / "ok.npy", series)
    _seg_bad(tmp_path, capsys, tmp_path / "ok.npy", m, "ok.npy: the file has no pixel size")
    # model cards that do not match the input or are not segmentation models
    _seg_bad(tmp_path, capsys, tmp_path / "ok.npy", monet_dir / "monet_classify.pt",
             "is not a segmentation network", "--sampling", S)  # fmt: skip
    torch.manual_seed(0)
    one = tmp_path / "m1" / "msdnet_gray.pt"
    save_model(one, MSDNet(1, 3, depth=4), {"classes": SEG_CLASSES, "in_channels": 1,
                                              "sampling_range_A": [S, S]})  # fmt: skip
    _seg_bad(tmp_path, capsys, tmp_path / "ok.npy", one, "ok.npy: expected 1 images",
             "--sampling", S)  # fmt: skip
    nocard = tmp_path / "m2" / "msdnet_x.pt"
    save_model(nocard, MSDNet(3, 3, depth=4), {"classes": SEG_CLASSES})
    _seg_bad(tmp_path, capsys, tmp_path / "ok.npy", nocard,
             "msdnet_x.json: model card lacks in_channels, sampling_range_A",
             "--sampling", S)  # fmt: skip
    nocard.with_suffix(".json").unlink()
    _seg_bad(tmp_path, capsys, tmp_path / "ok.npy", nocard, "model card not found",
             "--sampling", S)  # fmt: skip
    _seg_bad(tmp_path, capsys, tmp_path / "ok.npy", tmp_path / "m3" / "none.pt",
             "none.json: model card not found", "--sampling", S)  # fmt: skip


def test_segment_default_model_is_the_newest(tmp_path, seg_models):
    from temflow.segmentation.card import find_default_model

    d = tmp_path / "models"
    d.mkdir()
    for k, p in enumerate(seg_models.values()):
        for suffix in (".pt", ".json"):
            q = d / p.with_suffix(suffix).name
            q.write_bytes(p.with_suffix(suffix).read_bytes())
            os.utime(q, (1e9 + k, 1e9 + k))
    assert find_default_model(d).name == "unet_bare.pt"
    np.save(tmp_path / "s.npy", blob_series((40, 44), S))
    out, ov = tmp_path / "c.csv", tmp_path / "ov.png"
    assert run_cli("segment", tmp_path / "s.npy", "-o", out, "--models", d, "--sampling", S,
                   "--overlay", ov, "--device", "cpu") == 0  # fmt: skip
    assert list(pd.read_csv(out).columns) == ["image", "x_A", "y_A", "class", "confidence"]
    assert ov.is_file()
    with pytest.raises(Exception, match="no trained segmentation model"):
        find_default_model(tmp_path)


@pytest.mark.workflow
def test_segment_end_to_end_matches_workflow_detection(workflow_results, tmp_path):
    """The test-config MSD-net applied through the CLI to a validation shard finds the
    columns that the workflow's own detection code finds (unregistered: the workflow
    scores the frames as simulated)."""
    from temflow.evaluation import find_peaks_per_class
    from temflow.segmentation.card import calibrated_threshold, load_segmenter
    from temflow.training import predict

    shard = sorted((workflow_results / "hrtem").glob("val_bare/shard_*.h5"))[0]
    model_pt = workflow_results / "models" / "msdnet_bare.pt"
    out = tmp_path / "cols.csv"
    assert main(["segment", str(shard), "-o", str(out), "--model", str(model_pt),
                 "--device", "cpu", "--overlay", str(tmp_path / "ov.png"),
                 "--no-register"]) == 0  # fmt: skip
    got = pd.read_csv(out)
    series = read_focal_series([shard])
    model, card = load_segmenter(model_pt)
    lo, hi = card["sampling_range_A"]
    assert all(lo <= s <= hi for s in series.sampling_A)  # kept as given: no resampling
    for n, (img, s) in enumerate(zip(series.images, series.sampling_A, strict=True)):
        m = predict(model, torch.from_numpy(normalise(img[None])), device="cpu").numpy()[0]
        # the CLI's default threshold: the one calibrated at training time
        xy, cls = find_peaks_per_class(m, s, calibrated_threshold(card), 2.0)
        mine = got[got.image == n]
        assert len(mine) == len(xy)
        ref = pd.DataFrame({"x_A": xy[:, 0], "y_A": xy[:, 1],
                            "class": [card["classes"][k] for k in cls]})  # fmt: skip
        ref = ref.sort_values(["y_A", "x_A"]).reset_index(drop=True)
        np.testing.assert_allclose(mine[["x_A", "y_A"]].to_numpy(), ref[["x_A", "y_A"]],
                                   atol=1e-3)  # fmt: skip
