"""Benchmark: time to generate 10,000 trajectories of 300 frames (all three classes).

Ours: temflow.trajectories.generate_set("classify", ...). andi-datasets (the AnDi
challenge's reference generators: FBM by Davies-Harte, CTRW with Pareto waits) pins
numpy <= 1.26 and cannot live beside abtem (numpy >= 2), so it is measured in a separate
Python given by ``--andi-python /path/to/python`` (or $ANDI_PYTHON) whose environment has
``andi-datasets`` installed; without one, only ours is reported and the reason printed.

    python -m bench.speed.bench_trajectories [--n 10000] [--length 300] [--andi-python PY]

Prints a table and writes results/bench/trajectories.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from temflow.trajectories import generate_set

PARAMS = {
    "length": 300,
    "fbm_alpha_range": [0.2, 0.96],
    "ctrw_alpha_range": [0.1, 0.99],
    "diffusion_range_px2_per_frame": [0.5, 2.0],
    "ctrw_waiting_time": "mittag_leffler",
    "noise_step_std": 0.0,
}

# Runs inside the andi-datasets environment: models 1 (CTRW) and 2 (FBM) of
# datasets_theory().avail_models_name == ['attm', 'ctrw', 'fbm', 'lw', 'sbm'], Brownian as
# FBM with alpha 1, 2-D, the same split as ours (a third per class). N_models counts
# trajectories per model and exponent, so it is divided by the number of exponents.
ANDI_SNIPPET = """
import sys, time, numpy as np
from andi_datasets.datasets_theory import datasets_theory
n, T = int(sys.argv[1]), int(sys.argv[2])
ad = datasets_theory()
per = n // 3
times = []
for _ in range(int(sys.argv[3])):
  t0 = time.perf_counter()
  ad.create_dataset(T=T, N_models=per // 20, exponents=np.linspace(0.2, 0.96, 20), models=[2],
                  dimension=2)
  ad.create_dataset(T=T, N_models=per // 20, exponents=np.linspace(0.1, 0.99, 20), models=[1],
                  dimension=2)
  ad.create_dataset(T=T, N_models=n - 2 * per, exponents=[1.0], models=[2], dimension=2)
  times.append(time.perf_counter() - t0)
print(float(np.median(times)))
"""


def time_ours(n: int, length: int, repeats: int = 3) -> float:
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        generate_set("classify", n, {**PARAMS, "length": length}, seed=r)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_andi(python: str, n: int, length: int) -> tuple[float | None, str]:
    proc = subprocess.run(
        [python, "-c", ANDI_SNIPPET, str(n), str(length), "3"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        return None, f"andi-datasets run failed: {proc.stderr.strip().splitlines()[-1:]}"
    return float(proc.stdout.strip().splitlines()[-1]), "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--andi-python", default=os.environ.get("ANDI_PYTHON"))
    parser.add_argument("--out", default="results/bench/trajectories.json")
    args = parser.parse_args()
    ours = time_ours(args.n, args.length)
    andi, note = (
        None,
        (
            "no --andi-python / $ANDI_PYTHON given: andi-datasets needs numpy "
            "<= 1.26 and cannot be installed beside abtem (numpy >= 2)"
        ),
    )
    if args.andi_python:
        andi, note = time_andi(args.andi_python, args.n, args.length)
    print(f"{'generator':<16}{'trajectories':>14}{'frames':>8}{'seconds':>10}")
    print(f"{'temflow':<16}{args.n:>14}{args.length:>8}{ours:>10.3f}")
    if andi is not None:
        print(f"{'andi-datasets':<16}{args.n:>14}{args.length:>8}{andi:>10.3f}")
        print(f"ratio andi-datasets / temflow: {andi / ours:.1f}x")
    else:
        print(f"andi-datasets: not measured ({note})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "n": args.n,
                "length": args.length,
                "temflow_s": ours,
                "andi_datasets_s": andi,
                "note": note,
                "ratio": andi / ours if andi else None,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
