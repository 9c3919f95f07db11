"""The ``temflow`` command line."""

from __future__ import annotations

import argparse
import sys

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="temflow", description="temflow: TEM training data and networks"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="software versions and devices")
    info.set_defaults(func=_info)
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
