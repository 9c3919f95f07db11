"""The ``temflow`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from temflow.errors import TemflowError


def _info(args: argparse.Namespace) -> int:
    from temflow.io import software_versions

    for name, version in software_versions().items():
        print(f"{name:10s} {version}")
    try:
        import asap3

        print(f"{'OpenKIM':10s} {'yes' if asap3.OpenKIMsupported else 'no'}")
    except ImportError:
        print(f"{'OpenKIM':10s} asap3 missing")
    try:
        import torch

        print(f"{'CUDA':10s} {'yes' if torch.cuda.is_available() else 'no'}")
    except ImportError:
        pass
    return 0


DEVICE_CHOICES = ("auto", "cpu", "cuda")


def _classify(args: argparse.Namespace) -> int:
    import pandas as pd

    from temflow.apply import classify as cl

    paths = cl.default_model_paths(args.models)
    for task, given in (
        ("classify", args.classifier),
        ("fbm_alpha", args.fbm_model),
        ("ctrw_alpha", args.ctrw_model),
    ):
        if given is not None:
            paths[task] = given
    monet = cl.load_monet_models(paths)
    precision = cl.parse_precision(args.localisation_precision, args.exposure_time_frames)
    several = len(args.tracks) > 1
    grouped = several or args.group_by is not None
    group = args.group_by or "file"
    if (args.fractions or args.fractions_figure) and not grouped:
        raise TemflowError(
            "--fractions / --fractions-figure: give several track files or --group-by"
        )
    results = []
    for path in args.tracks:
        result = cl.classify_file(
            path,
            monet,
            stride=args.stride,
            device=args.device,
            batch_size=args.batch_size,
            fmt=args.format,
            mat_variable=args.mat_variable,
            localisation_precision=precision,
            group_by=args.group_by,
            subtract_drift=args.subtract_drift,
            drift_smoothing_frames=args.drift_smoothing_frames,
        )
        if several:
            result.tracks.insert(0, "file", Path(path).name)
            result.windows.insert(0, "file", Path(path).name)
        results.append(result)
    tracks = pd.concat([r.tracks for r in results], ignore_index=True)
    windows = pd.concat([r.windows for r in results], ignore_index=True)
    fractions = None
    if grouped:
        from temflow.apply.conditions import group_fractions

        fractions = group_fractions(tracks, group)
    cl.write_csv(tracks, args.output)
    written = [args.output]
    if args.windows:
        cl.write_csv(windows, args.windows)
        written.append(args.windows)
    if args.figure:
        from temflow.plots.apply import plot_track_classes

        title = ", ".join(Path(p).name for p in args.tracks)
        plot_track_classes(tracks, args.figure, title=title)
        written.append(args.figure)
    if args.fractions:
        cl.write_csv(fractions, args.fractions)
        written.append(args.fractions)
    if args.fractions_figure:
        from temflow.plots.apply import plot_class_fractions

        plot_class_fractions(fractions, tracks, args.fractions_figure, group)
        written.append(args.fractions_figure)
    for path, result in zip(args.tracks, results, strict=True):
        if several:
            print(f"{path}:")
        print("\n".join(cl.summary_lines(result)))
    if fractions is not None:
        for _, row in fractions.iterrows():
            shares = ", ".join(
                f"{c} {row[f'fraction_{c}']:.0%} [{row[f'fraction_{c}_low']:.0%}, "
                f"{row[f'fraction_{c}_high']:.0%}]"
                for c in cl.CLASSES
            )
            print(f"  {group} {row[group]}: {int(row.n_classified)} tracks; {shares}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _segment(args: argparse.Namespace) -> int:
    from temflow.apply import images as im
    from temflow.apply import segment as sg
    from temflow.plots.apply import plot_overlay
    from temflow.segmentation.card import find_default_model, load_segmenter

    model_path = args.model or find_default_model(args.models)
    model, card = load_segmenter(model_path)
    series = im.read_focal_series(args.images, args.sampling, channels=int(card["in_channels"]))
    result = sg.segment_series(
        series,
        model,
        card,
        threshold=args.threshold,
        min_separation_A=args.min_separation,
        device=args.device,
        tile_px=args.tile,
        margin_px=args.margin,
        model_path=model_path,
        register=not args.no_register,
        max_shift_A=args.max_shift,
        max_rotation_deg=args.max_rotation,
    )
    from temflow.apply.classify import write_csv

    write_csv(result.columns, args.output)
    shifts_path = sg.frame_shifts_path(args.output)
    write_csv(sg.frame_shift_table(result), shifts_path)
    written = [str(args.output), str(shifts_path)]
    if args.overlay:
        n = len(result.resampled)
        for k, img in enumerate(result.resampled):
            path = (
                args.overlay if n == 1 else args.overlay.with_stem(f"{args.overlay.stem}_{k:03d}")
            )
            cols = result.columns[result.columns.image == k]
            plot_overlay(img, cols, result.sampling_A[k], path, list(card["classes"]))
            written.append(str(path))
    counts = result.columns["class"].value_counts()
    lo, hi = result.sampling_range_A
    given = sorted(set(result.input_sampling_A))
    at = f"{given[0]:g}" if len(given) == 1 else f"{given[0]:g}-{given[-1]:g}"
    print(
        f"{series.source}: {len(result.resampled)} image(s) at {at} A/px "
        f"({series.sampling_from}); model trained on {lo:g}-{hi:g} A/px, "
        f"{result.n_resampled} image(s) resampled into that range; "
        f"model {model_path} on {result.device}"
    )
    if result.registered:
        for k, found in enumerate(result.frame_shifts_A or []):
            print(
                f"image {k}: frame shifts against channel {len(found) // 2} (dx, dy) A: "
                + ", ".join(f"({dx:+.3f}, {dy:+.3f})" for dx, dy in found)
            )
            if args.max_rotation > 0:
                turned = (result.frame_rotations_deg or [])[k]
                print(
                    f"image {k}: frame rotations against channel {len(found) // 2} (deg): "
                    + ", ".join(f"{a:+.3f}" for a in turned)
                )
    else:
        print("frames not registered (--no-register)")
    print(
        f"{len(result.columns)} columns: "
        + ", ".join(f"{c} {int(counts.get(c, 0))}" for c in card["classes"])
    )
    print("wrote " + ", ".join(written))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="temflow", description="temflow: TEM training data and networks"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="software versions and devices")
    info.set_defaults(func=_info)

    cls = sub.add_parser(
        "classify",
        help="classify particle tracks (brownian / fbm / ctrw) and estimate alpha with MoNet",
        description=(
            "Classify particle tracks with the trained MoNet networks. Tracks longer than "
            "the trained length are classified over windows (per-window and per-track "
            "results); shorter ones are listed as skipped. Frame gaps split a track into "
            "gap-free segments (windows never span a gap); a track with duplicate frames "
            "is skipped. Nothing is interpolated."
        ),
    )
    cls.add_argument(
        "tracks",
        type=Path,
        nargs="+",
        help="CSV/Parquet with columns track_id (or trackpy's particle), frame, x, y; "
        "or a MATLAB .mat array with columns x, y, id[, frame]; several files are "
        "several conditions (grouped by file name unless --group-by)",
    )
    cls.add_argument(
        "--group-by",
        metavar="COLUMN",
        help="a column holding each track's condition (dose rate, temperature, liquid)",
    )
    cls.add_argument(
        "--fractions",
        type=Path,
        help="per-group CSV: class counts, fractions with 95%% Wilson intervals, alpha "
        "quartiles per class",
    )
    cls.add_argument(
        "--fractions-figure",
        type=Path,
        help="figure: class fraction against the condition, alpha per class and condition",
    )
    cls.add_argument("-o", "--output", type=Path, required=True, help="per-track CSV to write")
    cls.add_argument("--windows", type=Path, help="also write a per-window CSV here")
    cls.add_argument("--figure", type=Path, help="summary figure (PNG, with a PDF beside it)")
    cls.add_argument(
        "--models",
        type=Path,
        default=Path("results/models"),
        help="folder with monet_classify.pt, monet_fbm_alpha.pt, monet_ctrw_alpha.pt "
        "and their .json cards (default: results/models)",
    )
    cls.add_argument("--classifier", type=Path, help="classifier checkpoint (overrides --models)")
    cls.add_argument("--fbm-model", type=Path, help="FBM alpha regressor checkpoint")
    cls.add_argument("--ctrw-model", type=Path, help="CTRW alpha regressor checkpoint")
    cls.add_argument(
        "--stride",
        type=int,
        help="frames between window starts (default: the model length, i.e. no overlap)",
    )
    cls.add_argument(
        "--format",
        choices=("auto", "csv", "parquet", "mat"),
        default="auto",
        help="input format (default: from the file suffix)",
    )
    cls.add_argument("--mat-variable", help="variable holding the tracks in a .mat file")
    cls.add_argument(
        "--localisation-precision",
        metavar="SIGMA|auto|auto-track|COLUMN",
        help="localisation error std in the units of x and y: a number; 'auto' to estimate "
        "one value from all tracks of the file, 'auto-track' one per track (covariance-based "
        "estimator, Vestergaard et al. 2014); or a per-localisation column of the file "
        "(trackpy's 'ep'). Required by networks trained with monet.noise_input; reported "
        "in the per-track CSV",
    )
    cls.add_argument(
        "--subtract-drift",
        action="store_true",
        help="subtract each file's ensemble drift (stage drift, flow: the mean displacement of "
        "all particles between consecutive frames, trackpy.compute_drift) before classifying",
    )
    cls.add_argument(
        "--drift-smoothing-frames",
        type=int,
        default=0,
        metavar="N",
        help="rolling mean of the drift over N frames (default 0: none)",
    )
    cls.add_argument(
        "--exposure-time-frames",
        type=float,
        default=0.0,
        metavar="T",
        help="camera exposure per frame in frame times (0..1; 1 = exposed the whole frame), "
        "for the motion-blur term of --localisation-precision auto (default 0)",
    )
    cls.add_argument("--batch-size", type=int, default=256, help="windows per batch")
    cls.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="torch device")
    cls.set_defaults(func=_classify)

    seg = sub.add_parser(
        "segment",
        help="find atomic columns (Mo, S2, S1) in a focal series with MSD-net / U-net",
        description=(
            "Detect atomic columns in an HR-TEM focal series with a trained segmentation "
            "network. An image whose pixel size lies outside the range the model was "
            "trained on is resampled to the nearest end of it (others are kept as given); "
            "images are processed in overlapping tiles (margin >= the receptive-field "
            "radius, so tile borders do not change the result). The frames of each focal "
            "series are first registered to the middle one (drift between exposures; "
            "--no-register skips it) and columns are reported in its frame. Output: CSV "
            "with image, x_A, y_A, class, confidence (the class map's value at the peak; "
            "1 = a training Gaussian) and, beside it, OUTPUT_frame_shifts.csv with the "
            "shifts found."
        ),
    )
    seg.add_argument(
        "images",
        nargs="+",
        type=Path,
        help="a multi-page TIFF, three single TIFFs (in focal order), a .npy (3, H, W), "
        "a temflow HDF5 shard, or a .dm3/.dm4/.emd/.ser file",
    )
    seg.add_argument("-o", "--output", type=Path, required=True, help="CSV of columns to write")
    seg.add_argument("--overlay", type=Path, help="overlay PNG (one per image: _NNN suffix)")
    seg.add_argument(
        "--sampling",
        type=float,
        help="pixel size in A/px, used when the file has none in its metadata",
    )
    seg.add_argument(
        "--model", type=Path, help="checkpoint (.pt) with its .json model card beside it"
    )
    seg.add_argument(
        "--models",
        type=Path,
        default=Path("results/models"),
        help="without --model: the newest segmentation model in this folder "
        "(default: results/models)",
    )
    seg.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="minimum peak height (default: the threshold calibrated on held-out training "
        "images, from the model card; 0.5 for a card without one)",
    )
    seg.add_argument(
        "--min-separation",
        type=float,
        default=2.0,
        help="minimum distance between columns of one class in A (default 2.0)",
    )
    seg.add_argument("--tile", type=int, default=512, help="tile core size in px (default 512)")
    seg.add_argument(
        "--margin",
        type=int,
        help="context per tile side in px (default: the receptive-field radius, exact)",
    )
    seg.add_argument(
        "--no-register",
        action="store_true",
        help="do not register the frames of the focal series before inference",
    )
    seg.add_argument(
        "--max-shift",
        type=float,
        default=0.75,
        help="largest drift between two frames the registration searches, A (default "
        "0.75: below a quarter of the MoS2 lattice vector, so the lattice cannot alias it)",
    )
    seg.add_argument(
        "--max-rotation",
        type=float,
        default=0.0,
        help="also measure and undo a rotation of each frame about the image centre of at "
        "most this many degrees (default 0: translations only, as in the training data)",
    )
    seg.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="torch device")
    seg.set_defaults(func=_segment)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TemflowError as err:
        print(f"temflow: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
