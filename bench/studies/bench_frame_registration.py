"""Frame registration of focal series: shifts recovered, and F1 with and without it.

Part 1 (``--n-sim N``): N default-config focal series simulated twice from the same image
seed: with the drawn frame shifts (``hrtem.microscope.frame_shift_A``), dose noise and
vacancies as configured, and without shifts or noise. For each channel, the shift that
:func:`temflow.hrtem.registration.register_series` finds is
compared with the stored one plus what the method reads on the noise-free unshifted series
(``err_baseline``: the apparent shift between focal settings that astigmatic, non-linear
images show without any drift, which the training labels already live with), in pixels
(the larger axis), per dose range. ``bound_px`` is the Cramer-Rao bound of that channel's
shift under Poisson dose noise (the larger axis's standard deviation). With
``--rotation`` the config's ``frame_rotation_deg`` stays on, the still series has none,
and both are registered by :func:`~temflow.hrtem.registration.register_series_rigid`
(search up to ``MAX_FRAME_ROTATION_DEG``): ``rot_err_deg`` is the angle found less the
still series' and the drawn one.

Part 2 (``--results RUN``): the trained models of a finished run (RUN/models) on their
validation shards (RUN/hrtem), mean per-image F1 of four versions of every series:
``as simulated``, ``shifted`` (each non-reference channel moved by a drift drawn from
``--shift-range``), ``shifted + registered`` (what ``temflow segment`` does) and
``registered`` (registration of the unshifted series). The drift is a Fourier shift of
the stored noisy, centre-cropped frame (so its noise moves with it and the crop's edges
wrap by at most the shift; columns within border_A of the edge are not scored).

    PYTHONPATH=src python -m bench.studies.bench_frame_registration \
        --vibrations RUN/md/vibrations.csv --n-sim 60 --results RUN
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from bench.common import print_table, write_result
from temflow.config import load_config
from temflow.hrtem.config import MAX_FRAME_ROTATION_DEG, HrtemConfig
from temflow.hrtem.frames import draw_frame_shifts, shift_frames
from temflow.hrtem.generate import make_image
from temflow.hrtem.registration import align_series, register_series, register_series_rigid
from temflow.hrtem.simulate import detector_mtf
from temflow.md.vibrations import read_vibrations


def _shifts(record) -> np.ndarray:
    return np.stack([record.attrs["frame_shift_x_A"], record.attrs["frame_shift_y_A"]], axis=1)


def expected_counts(record) -> np.ndarray:
    """The noise-free record's expected counts per pixel before the detector MTF (C, H, W):
    the Poisson means (the MTF acts on the counts and is invertible, its floor > 0)."""
    a = record.attrs
    mtf = detector_mtf(
        record.images.shape[-2:],
        a["sampling_A"],
        a["mtf_floor"],
        a["mtf_half_nyquist"],
        a["mtf_power"],
    )
    spectrum = np.fft.fft2(record.images.astype(float)) / mtf
    return np.clip(np.real(np.fft.ifft2(spectrum)), 1e-9, None)


def shift_bound_px(expected: np.ndarray, reference: int) -> np.ndarray:
    """Cramer-Rao bound (C, 2): the smallest standard deviation (x, y) in px that any
    unbiased estimate of each channel's shift against the reference channel can have
    under Poisson dose noise, knowing both noise-free frames: inverse Fisher information
    ``sum grad(lambda) grad(lambda)^T / lambda`` of the two frames, added."""
    h, w = expected.shape[-2:]
    ky, kx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    inverse = []
    for lam in expected:
        spectrum = np.fft.fft2(lam)
        gx = np.real(np.fft.ifft2(2j * np.pi * kx * spectrum))
        gy = np.real(np.fft.ifft2(2j * np.pi * ky * spectrum))
        fisher = np.array(
            [
                [(gx * gx / lam).sum(), (gx * gy / lam).sum()],
                [(gx * gy / lam).sum(), (gy * gy / lam).sum()],
            ]
        )
        inverse.append(np.linalg.inv(fisher))
    return np.stack([np.sqrt(np.diag(inv + inverse[reference])) for inv in inverse])


def simulated_errors(
    config: dict, vibrations: pd.DataFrame, n: int, seed: int, rotation: bool = False
) -> pd.DataFrame:
    """Part 1: one row per simulated series and shifted channel."""
    hr = copy.deepcopy(config["hrtem"])
    if not rotation:
        hr["microscope"]["frame_rotation_deg"] = [0.0, 0.0]
    shifted_cfg = HrtemConfig.from_mapping(hr)
    still = copy.deepcopy(hr)
    still["microscope"]["frame_shift_A"] = [0.0, 0.0]
    still["microscope"]["frame_rotation_deg"] = [0.0, 0.0]
    still_cfg = HrtemConfig.from_mapping(still)
    cutoffs = config["md"]["cutoffs_A"]
    rows = []
    for k in tqdm(range(n), desc="series", mininterval=10):
        substrate = ("bare", "graphene")[k % 2]
        a = make_image(shifted_cfg, substrate, seed + k, vibrations, cutoffs)
        b = make_image(still_cfg, substrate, seed + k, vibrations, cutoffs, noise=False)
        s = a.attrs["sampling_A"]
        truth = _shifts(a)
        reference = a.attrs["reference_channel"]
        bound = shift_bound_px(expected_counts(b), reference)
        turned = np.asarray(a.attrs["frame_rotation_deg"])
        if rotation:
            found, angles = register_series_rigid(
                a.images, s, max_rotation_deg=MAX_FRAME_ROTATION_DEG, mode="grid-wrap"
            )
            baseline, base_angles = register_series_rigid(
                b.images, s, max_rotation_deg=MAX_FRAME_ROTATION_DEG, mode="grid-wrap"
            )
        else:
            found, baseline = register_series(a.images, s), register_series(b.images, s)
            angles = base_angles = np.zeros(len(found))
        for c in np.flatnonzero(np.any(truth != 0, axis=1)):
            rows.append(
                {
                    "substrate": substrate,
                    "dose_e_per_A2": a.attrs["dose_e_per_A2"],
                    "shift_A": float(np.hypot(*truth[c])),
                    "err_truth_px": float(np.abs(found[c] - truth[c]).max() / s),
                    "err_baseline_px": float(np.abs(found[c] - baseline[c] - truth[c]).max() / s),
                    "apparent_px": float(np.abs(baseline[c]).max() / s),
                    "bound_px": float(bound[c].max()),
                    "image_px": int(a.images.shape[-1]),
                    "rotation_deg": float(turned[c]),
                    "rot_err_deg": float(angles[c] - base_angles[c] - turned[c]),
                }
            )
    return pd.DataFrame(rows)


def f1_table(run: Path, config: dict, shift_range: tuple[float, float], seed: int) -> pd.DataFrame:
    """Part 2: mean F1 per (network, substrate) and version of the validation series."""
    from temflow.segmentation.card import load_segmenter, resolve_threshold
    from temflow.segmentation.data import load_column_images
    from temflow.segmentation.detect import detect_columns

    seg = config["segmentation"]
    rows = []
    for substrate in seg["substrates"]:
        val = sorted((run / "hrtem" / seg["datasets"][substrate]["val"]).glob("shard_*.h5"))
        data = load_column_images(val)
        rng = np.random.default_rng(seed)
        drifts = [draw_frame_shifts(shift_range, data.images.shape[1], rng) for _ in data.images]
        original = data.images.copy()
        versions = {
            "as simulated": original,
            "shifted": np.stack(
                [
                    shift_frames(x, d, s)
                    for x, d, s in zip(original, drifts, data.sampling_A, strict=True)
                ]
            ),
        }
        versions["shifted + registered"] = np.stack(
            [
                align_series(x, register_series(x, s), s)
                for x, s in zip(versions["shifted"], data.sampling_A, strict=True)
            ]
        )
        versions["registered"] = np.stack(
            [
                align_series(x, register_series(x, s), s)
                for x, s in zip(original, data.sampling_A, strict=True)
            ]
        )
        for net in seg["networks"]:
            path = run / "models" / f"{net}_{substrate}.pt"
            model, card = load_segmenter(path, net, data)
            threshold = resolve_threshold(seg["peak_threshold"], card, str(path))
            for name, images in versions.items():
                data.images = images.astype(np.float32)
                det = detect_columns(
                    model,
                    data,
                    threshold,
                    seg["min_separation_A"],
                    seg["match_radius_A"],
                    seg["border_A"],
                    device="cpu",
                )
                f1 = [d.match.overall()[2] for d in det]
                f1_s1 = [d.match.per_class("S1")[2] for d in det]
                rows.append(
                    {
                        "net": net,
                        "substrate": substrate,
                        "version": name,
                        "mean_f1": float(np.mean(f1)),
                        "mean_f1_S1": float(np.nanmean(f1_s1)),
                        "n_images": len(f1),
                    }
                )
            data.images = original
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--vibrations", help="a run's md/vibrations.csv (part 1)")
    ap.add_argument("--n-sim", type=int, default=0, help="simulated series (part 1)")
    ap.add_argument("--n-configs", type=int, default=None, help="override n_configs (part 1)")
    ap.add_argument("--results", type=Path, help="a finished run's results_dir (part 2)")
    ap.add_argument("--shift-range", type=float, nargs=2, default=None)
    ap.add_argument(
        "--rotation", action="store_true", help="part 1 with the config's frame rotations"
    )
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--name", default="frame_registration")
    args = ap.parse_args()
    config = load_config([args.configfile])
    result: dict = {}
    if args.n_sim:
        if args.n_configs:
            config["hrtem"]["simulation"]["n_configs"] = args.n_configs
        errors = simulated_errors(
            config, read_vibrations(args.vibrations), args.n_sim, args.seed, args.rotation
        )
        bins = pd.cut(errors.dose_e_per_A2, [0, 300, 1000, 3000, 1e9]).astype(str)
        errors["dose_bin"] = bins
        frames = [errors, errors.assign(dose_bin="all")]
        summary = (
            pd.concat(frames)
            .groupby("dose_bin", sort=False)
            .agg(
                n=("err_baseline_px", "size"),
                err_median=("err_baseline_px", "median"),
                err_p90=("err_baseline_px", lambda v: v.quantile(0.9)),
                within_01px=("err_baseline_px", lambda v: (v < 0.1).mean()),
                bound_median=("bound_px", "median"),
                bound_below_005=("bound_px", lambda v: (v < 0.05).mean()),
                within_01px_where_bound_below_005=(
                    "err_baseline_px",
                    lambda v: (v[errors.loc[v.index, "bound_px"] < 0.05] < 0.1).mean(),
                ),
                apparent_median=("apparent_px", "median"),
                rot_err_abs_median_deg=("rot_err_deg", lambda v: v.abs().median()),
                rot_err_abs_max_deg=("rot_err_deg", lambda v: v.abs().max()),
            )
            .reset_index()
        )
        print_table(summary.round(3).to_dict("records"), list(summary.columns))
        result["registration"] = summary.to_dict("records")
        result["registration_rows"] = errors.to_dict("records")
    if args.results:
        shift_range = tuple(args.shift_range or config["hrtem"]["microscope"]["frame_shift_A"])
        f1 = f1_table(args.results, config, shift_range, args.seed)
        print_table(f1.round(4).to_dict("records"), list(f1.columns))
        result["f1"] = f1.to_dict("records")
        result["shift_range_A"] = list(shift_range)
    write_result(args.name, result)


if __name__ == "__main__":
    main()
