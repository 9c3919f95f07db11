"""Benchmark: the cost of one HR-TEM training image as the workflow makes it.

Times :func:`temflow.hrtem.generate.make_image` (sample, sigmas, microscope draw, frozen-phonon
multislice, detector, labels) for ``--n-images`` seeds per substrate, single-threaded as an
``hrtem_shard`` job runs, after one untimed warm-up image (imports, numba, FFT plans). The
config is ``ROOT/config/config.yaml`` with ``--set`` overrides, so the same script compares two
checkouts (run it with ``PYTHONPATH=OTHER/src --root OTHER``) or one config with and without an
option. Prints a table and writes ``--out`` (JSON, with the machine and versions).

    OMP_NUM_THREADS=1 PYTHONPATH=src python -m bench.speed.bench_hrtem_image \
        --vibrations results/md/vibrations.csv --n-images 6 \
        --set hrtem.sample.contamination_thickness_A=[5,10] --out results/bench/image.json
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml


def _override(item: str) -> dict[str, Any]:
    """``a.b.c=VALUE`` (VALUE in YAML) as ``{"a": {"b": {"c": VALUE}}}``."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"--set: expected KEY=VALUE, got {item!r}")
    out: dict[str, Any] = {}
    node = out
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = yaml.safe_load(value)
    return out


def ctf_kernel_times(hrtem, repeats: int) -> dict[str, Any]:
    """Median seconds of the CTF kernel (``make_ctf(...)._evaluate_kernel``) on the default
    field's potential grid, for one drawn parameter set with its residual aberrations and
    angular spread and with them zeroed, calls interleaved."""
    import dataclasses

    import abtem

    from bench.common import interleaved_median_times
    from temflow.hrtem.microscope import RESIDUAL_KEYS, sample_microscope
    from temflow.hrtem.simulate import make_ctf

    params = sample_microscope(hrtem.microscope, np.random.default_rng(0))
    bare = dataclasses.replace(params, **dict.fromkeys(RESIDUAL_KEYS, 0.0))
    s = hrtem.simulation.potential_sampling_A
    gpts = tuple(int(np.ceil(L / s)) for L in hrtem.sample.field_of_view_A)
    waves = abtem.Waves(np.zeros(gpts, np.complex64), energy=params.energy_eV, sampling=s)
    times = interleaved_median_times(
        {
            "with": lambda: make_ctf(params)._evaluate_kernel(waves),
            "without": lambda: make_ctf(bare)._evaluate_kernel(waves),
        },
        repeats,
    )
    return {"gpts": list(gpts), "with_s": times["with"], "without_s": times["without"]}


def main() -> None:
    from snakemake.utils import update_config

    from bench.common import write_result
    from temflow.config import load_config
    from temflow.hrtem.config import HrtemConfig
    from temflow.hrtem.generate import make_image
    from temflow.md.vibrations import read_vibrations

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("."), help="repository whose config is used")
    ap.add_argument("--vibrations", type=Path, required=True, help="md/vibrations.csv")
    ap.add_argument("--n-images", type=int, default=6, help="timed images per substrate")
    ap.add_argument("--set", nargs="*", default=[], help="KEY=VALUE config overrides")
    ap.add_argument("--label", default="", help="a name for this run in the output")
    ap.add_argument("--out", type=Path, default=Path("results/bench/hrtem_image.json"))
    ap.add_argument(
        "--ctf-repeats",
        type=int,
        default=0,
        help="also time the CTF kernel with and without the residual aberrations and angular "
        "spread, interleaved in one process (this checkout only)",
    )
    args = ap.parse_args()

    overrides: dict[str, Any] = {}
    for item in args.set:
        update_config(overrides, _override(item))
    config = load_config(overrides=overrides, root=args.root)
    hrtem = HrtemConfig.from_mapping(config["hrtem"])
    vib = read_vibrations(args.vibrations)
    cutoffs = config["md"]["cutoffs_A"]
    make_image(hrtem, "graphene", 10_000, vib, cutoffs)  # warm-up, untimed
    rows = []
    for substrate in ("bare", "graphene"):
        for seed in range(args.n_images):
            t0 = time.perf_counter()
            rec = make_image(hrtem, substrate, seed, vib, cutoffs)
            rows.append(
                {
                    "substrate": substrate,
                    "seed": seed,
                    "n_atoms": len(rec.numbers),
                    "n_contamination_atoms": int(rec.attrs.get("n_contamination_atoms", 0)),
                    "seconds": time.perf_counter() - t0,
                }
            )
    df = pd.DataFrame(rows)
    summary = df.groupby("substrate").agg(
        n_atoms=("n_atoms", "mean"),
        n_contamination_atoms=("n_contamination_atoms", "mean"),
        mean_s=("seconds", "mean"),
        median_s=("seconds", "median"),
    )
    print(summary.to_string(float_format=lambda v: f"{v:.3g}"))
    print(
        f"{args.label or args.root}: {df.seconds.mean():.3f} s per image over {len(df)} images "
        f"(load {os.getloadavg()[0]:.1f}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})"
    )
    ctf = ctf_kernel_times(hrtem, args.ctf_repeats) if args.ctf_repeats else None
    if ctf:
        print(
            f"CTF kernel on a {ctf['gpts']} grid, median of {args.ctf_repeats}: "
            f"{ctf['with_s']:.4f} s with the residual terms, {ctf['without_s']:.4f} s without"
        )
    write_result(
        args.out.stem,
        {
            "label": args.label,
            "root": str(args.root.resolve()),
            "set": args.set,
            "rows": rows,
            "mean_s": float(np.mean(df.seconds)),
            "load_average_1min": os.getloadavg()[0],
            "ctf_kernel": ctf,
        },
        args.out.parent,
    )


if __name__ == "__main__":
    main()
