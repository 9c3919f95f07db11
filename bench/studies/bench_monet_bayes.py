"""The Bayes bound for MoNet's classifier on a run's held-out sets.

Brownian motion and FBM (with Gaussian localisation noise) have exact Gaussian
likelihoods (temflow.trajectories.likelihood), so the Bayes-optimal Brownian-vs-FBM
decision can be computed track by track. This script scores it on ``classify_test``
(noiseless) and ``classify_test_noisy`` of a finished run, counting CTRW as always
recognised (MoNet misses at most a few in 3,000), and reports

* the oracle that knows each set's noise level (an upper bound for any classifier);
* the Bayes rule for a training noise prior ``f * delta(0) + (1 - f) * U(lo, hi)``
  step std, for a range of noiseless shares ``f``: what the best classifier trained
  with that augmentation (``monet.augment_noise_free_fraction`` = f,
  ``augment_noise_step_std`` = hi) can reach on both sets at once; and the same rule
  applied to each axis alone with the two posteriors averaged, the best a network
  that averages per-axis outputs (``monet.combine_axes: outputs``) can do.

Prints the tables last and writes results/bench/monet_bayes.json.

    PYTHONPATH=src python -m bench.studies.bench_monet_bayes \
        --trajectories /tmp/paper_monet3/trajectories --fbm-alpha-range 0.2 0.96
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.special import expit, logsumexp
from tqdm import tqdm

from bench.common import print_table, write_result
from temflow.trajectories import CLASSES, read_trajectories
from temflow.trajectories.likelihood import log_likelihoods


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trajectories", type=Path, required=True, help="results_dir/trajectories")
    ap.add_argument("--fbm-alpha-range", type=float, nargs=2, default=[0.2, 0.96])
    ap.add_argument("--noise-max", type=float, default=0.75, help="hi of the training prior")
    ap.add_argument("--noise-min", type=float, default=0.0, help="lo of the training prior")
    ap.add_argument("--fractions", type=float, nargs="+",
                    default=[0.0, 0.25, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0])  # fmt: skip
    ap.add_argument("--n-hurst", type=int, default=39)
    args = ap.parse_args()
    hurst = np.linspace(args.fbm_alpha_range[0] / 2, args.fbm_alpha_range[1] / 2, args.n_hurst)
    noise_grid = np.round(np.arange(0.0, 1.0001, 0.05), 4)
    sets = {}
    for name in ("classify_test", "classify_test_noisy"):
        data = read_trajectories(args.trajectories / f"{name}.h5")
        keep = data.label < CLASSES.index("ctrw")
        pos, label, alpha = data.positions[keep], data.label[keep], data.alpha[keep]
        n_ctrw = int((~keep).sum())

        # log-likelihoods (joint, then per axis) of every track under Brownian motion /
        # FBM(H), per noise level: arrays (noise levels, N, 3)
        def both(h: float, r: float, pos: np.ndarray = pos) -> np.ndarray:
            joint, per_axis = log_likelihoods(pos, h, r)
            return np.concatenate([joint[:, None], per_axis], axis=1)

        bm = np.stack([both(0.5, r) for r in tqdm(noise_grid, desc=f"{name} BM")])
        fbm = np.stack([
            logsumexp([both(h, r) for h in hurst], axis=0) - np.log(len(hurst))
            for r in tqdm(noise_grid, desc=f"{name} FBM")
        ])  # fmt: skip
        sets[name] = (bm, fbm, label, alpha, n_ctrw, float(data.attrs.get("noise_step_std", 0)))

    def accuracy(
        name: str, weights: np.ndarray, per_axis: bool = False
    ) -> tuple[float, np.ndarray]:
        """Accuracy of the Bayes rule for the noise prior ``weights``: joint, or per axis
        with the two axes' posteriors averaged (as MoNet averages per-axis outputs)."""
        bm, fbm, label, _, n_ctrw, _ = sets[name]
        logw = np.log(np.maximum(weights, 1e-300))[:, None, None]
        log_odds = logsumexp(fbm + logw, axis=0) - logsumexp(bm + logw, axis=0)
        if per_axis:
            is_fbm = expit(log_odds[:, 1:]).mean(axis=1) > 0.5
        else:
            is_fbm = log_odds[:, 0] > 0
        right = is_fbm == (label == 1)
        return float((right.sum() + n_ctrw) / (len(label) + n_ctrw)), right

    oracle_rows = []
    for name, (_, _, label, alpha, _, noise) in sets.items():
        weights = (np.abs(noise_grid - noise) < 1e-9).astype(float)
        acc, right = accuracy(name, weights)
        row = {"test set": name, "noise (step std)": noise, "accuracy": acc,
               "Brownian correct": float(right[label == 0].mean())}  # fmt: skip
        for lo, hi in ((0.0, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0)):
            sel = (label == 1) & (alpha >= lo) & (alpha < hi)
            row[f"FBM alpha {lo:g}-{hi:g}"] = float(right[sel].mean())
        oracle_rows.append(row)

    inside = (noise_grid >= args.noise_min - 1e-9) & (noise_grid <= args.noise_max + 1e-9)
    prior_rows = []
    for f in args.fractions:
        weights = np.where(inside, (1.0 - f) / inside.sum(), 0.0)
        weights[0] += f
        prior_rows.append({
            "noise-free fraction": f,
            "accuracy, noiseless": accuracy("classify_test", weights)[0],
            "accuracy, noisy": accuracy("classify_test_noisy", weights)[0],
            "per axis averaged, noiseless": accuracy("classify_test", weights, True)[0],
            "per axis averaged, noisy": accuracy("classify_test_noisy", weights, True)[0],
        })  # fmt: skip
    print("\nOracle (knows each set's noise level):")
    print_table(oracle_rows, list(oracle_rows[0]))
    print(f"\nBayes rule for the training prior f delta(0) + (1-f) U({args.noise_min:g}, "
          f"{args.noise_max:g}) step std:")  # fmt: skip
    print_table(prior_rows, list(prior_rows[0]))
    write_result("monet_bayes", {"args": {**vars(args), "trajectories": str(args.trajectories)},
                                 "oracle": oracle_rows, "training_prior": prior_rows})  # fmt: skip


if __name__ == "__main__":
    main()
