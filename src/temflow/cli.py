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
    result = cl.classify_file(
        args.tracks,
        monet,
        stride=args.stride,
        device=args.device,
        batch_size=args.batch_size,
        fmt=args.format,
        mat_variable=args.mat_variable,
    )
    cl.write_csv(result.tracks, args.output)
    written = [args.output]
    if args.windows:
        cl.write_csv(result.windows, args.windows)
        written.append(args.windows)
    if args.figure:
        from temflow.plots.apply import plot_track_classes

        plot_track_classes(result.tracks, args.figure, title=Path(args.tracks).name)
        written.append(args.figure)
    print("\n".join(cl.summary_lines(result)))
    print("wrote " + ", ".join(str(p) for p in written))
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
        help="CSV/Parquet with columns track_id (or trackpy's particle), frame, x, y; "
        "or a MATLAB .mat array with columns x, y, id[, frame]",
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
    cls.add_argument("--batch-size", type=int, default=256, help="windows per batch")
    cls.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="torch device")
    cls.set_defaults(func=_classify)
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
