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
from temflow.models.monet_tasks import build_model
from temflow.training import save_model
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
        model = build_model(task)
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
