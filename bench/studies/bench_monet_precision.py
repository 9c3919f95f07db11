"""Bias and spread of the localisation-precision estimate (temflow classify
``--localisation-precision auto``) on simulated tracks with a known sigma.

Brownian motion, FBM and CTRW of 300 frames (alphas from ``--fbm-alpha`` /
``--ctrw-alpha``), with motion blur of a fixed exposure and Gaussian localisation noise
of ``sigma`` step std; the covariance-based estimator
(:mod:`temflow.trajectories.precision`, told the true exposure) per track and pooled
over groups of ``--pool`` tracks (one file of a movie). Prints the table and writes
results/bench/monet_precision.json.

    PYTHONPATH=src python -m bench.studies.bench_monet_precision --n 1000
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import print_table, write_result
from temflow.trajectories.io import add_localisation_noise, simulate_process
from temflow.trajectories.precision import localisation_precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="tracks per row")
    ap.add_argument("--length", type=int, default=300, help="frames per track")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--exposures", type=float, nargs="+", default=[0.0, 1.0])
    ap.add_argument("--fbm-alpha", type=float, nargs=2, default=[0.2, 0.96])
    ap.add_argument("--ctrw-alpha", type=float, nargs=2, default=[0.1, 0.99])
    ap.add_argument("--pool", type=int, default=100, help="tracks per pooled estimate")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    n, d = args.n, np.full(args.n, 0.5)  # D = 0.5: one step std is 1, sigma is in steps
    rows = []
    processes = (("brownian", (1.0, 1.0)), ("fbm", args.fbm_alpha), ("ctrw", args.ctrw_alpha))
    for name, arange in processes:
        for exposure in args.exposures:
            params = {"exposure_time_range_frames": [exposure, exposure]}
            alpha = rng.uniform(*arange, n)
            clean = simulate_process(name, alpha, args.length, d, params, rng)
            for sigma in args.sigmas:
                x = add_localisation_noise(clean, d, sigma, rng)
                per_track = localisation_precision(x, exposure)
                groups = x[: n // args.pool * args.pool].reshape(-1, args.pool, *x.shape[1:])
                pooled = np.array(
                    [localisation_precision(g, exposure, pooled=True)[0] for g in groups]
                )
                err = per_track - sigma
                rows.append(
                    {
                        "process": name,
                        "alpha": f"{arange[0]:g}-{arange[1]:g}",
                        "exposure_frames": exposure,
                        "sigma_step": sigma,
                        "bias_track": float(err.mean()),
                        "std_track": float(err.std()),
                        "q95_abs_err_track": float(np.quantile(np.abs(err), 0.95)),
                        "zero_share_track": float(np.mean(per_track == 0)),
                        "bias_pooled": float(pooled.mean() - sigma),
                        "std_pooled": float(pooled.std()),
                    }
                )
    print_table(rows, list(rows[0]))
    write_result("monet_precision", {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
