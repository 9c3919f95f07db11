"""Benchmark: temflow's HR-TEM focal series vs the documented abTEM pattern.

Reference (abTEM docs): FrozenPhonons -> Potential -> PlaneWave.multislice -> CTF with a
defocus ensemble -> intensity -> mean over configurations, lazy with abTEM's default dask
scheduler, one sample after another. Ours: :func:`temflow.hrtem.simulate.exit_focal_series`
(eager potential build, empty slices skipped exactly, all configurations batched, abTEM's
CTF kernel on the Fourier-space exit waves). Same samples, sampling, slice thickness,
configurations and seeds; the noise-free images must agree (max relative difference <
1e-3). Prints a table and writes results/bench/hrtem.json.

Two ratios come out of one run:

* per sample: temflow's path with ``--threads`` FFT workers against the reference, sample
  by sample (both on all cores);
* stage throughput: the same samples through ``--workers`` single-threaded processes,
  which is how the workflow runs the stage (``hrtem_shard`` jobs have ``threads: 1`` and
  Snakemake runs one per core), against the reference's total time one sample after
  another with its default (all-core) dask scheduler. Worker start-up and warm-up
  (abTEM import, numba compilation, FFTW plans) are excluded, as the reference's are.
  For transparency the abTEM pattern is also run in the same single-threaded workers
  (dask's synchronous scheduler), which separates the gain of the path from that of
  the parallel layout.

    PYTHONPATH=src python -m bench.speed.bench_hrtem --n-samples 6 --n-configs 8 \
        --threads 2 --workers 2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from temflow.hrtem.config import MicroscopeConfig, SampleConfig
from temflow.hrtem.microscope import sample_microscope
from temflow.hrtem.samples import make_sample
from temflow.hrtem.simulate import exit_focal_series, reference_focal_series
from temflow.io import atomic_path, software_versions

# The default config's sample and microscope ranges, so the benchmark follows them.
_DEFAULTS = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "config" / "config.yaml").read_text()
)
SAMPLE = SampleConfig.from_mapping(_DEFAULTS["hrtem"]["sample"])
MICROSCOPE = MicroscopeConfig.from_mapping(_DEFAULTS["hrtem"]["microscope"])
CUTOFFS = {"Mo-S": 2.9, "C-C": 1.8}
#: Representative MD sigmas (A); the benchmark needs no MD run.
SIGMA = {"Mo": (0.05, 0.06), "S": (0.07, 0.09), "C": (0.06, 0.10)}


def make_cases(n: int, seed: int):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        substrate = ("bare", "graphene")[i % 2]
        sample = make_sample(SAMPLE, substrate, rng, CUTOFFS)
        sig = np.array(
            [(SIGMA[s][0], SIGMA[s][0], SIGMA[s][1]) for s in sample.atoms.get_chemical_symbols()]
        )
        cases.append(
            (
                substrate,
                sample.atoms,
                sig,
                sample_microscope(MICROSCOPE, rng),
                int(rng.integers(2**31 - 1)),
            )
        )
    return cases


def _worker_init(case, common) -> None:
    """Warm a stage worker up on an untimed sample (imports, numba, FFTW plans)."""
    _, atoms, sig, mp, seed = case
    exit_focal_series(atoms, sig, mp, seed=seed, threads=1, **common)


def _worker_run(case, common) -> np.ndarray:
    _, atoms, sig, mp, seed = case
    return exit_focal_series(atoms, sig, mp, seed=seed, threads=1, **common)


def _reference_init(case, common) -> None:
    import dask

    dask.config.set(scheduler="synchronous")  # one thread per worker process
    _, atoms, sig, mp, seed = case
    reference_focal_series(atoms, sig, mp, seed=seed, **common)


def _reference_run(case, common) -> np.ndarray:
    _, atoms, sig, mp, seed = case
    return reference_focal_series(atoms, sig, mp, seed=seed, **common)


def stage_throughput(
    cases, common, workers: int, reference: bool = False
) -> tuple[float, list[np.ndarray]]:
    """Wall time (s) of ``cases[1:]`` through ``workers`` single-threaded warm processes
    running temflow's path (or, with ``reference``, the abTEM pattern)."""
    init, run = (_reference_init, _reference_run) if reference else (_worker_init, _worker_run)
    with concurrent.futures.ProcessPoolExecutor(
        workers, initializer=init, initargs=(cases[0], common)
    ) as pool:
        # Make every worker start and warm up before the clock starts.
        list(pool.map(time.sleep, [0.5] * workers))
        t0 = time.perf_counter()
        futures = [pool.submit(run, case, common) for case in cases[1:]]
        images = [f.result() for f in futures]
        return time.perf_counter() - t0, images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-samples", type=int, default=6)
    ap.add_argument("--n-configs", type=int, default=8)
    ap.add_argument("--sampling-A", type=float, default=0.05)
    ap.add_argument("--slice-thickness-A", type=float, default=1.0)
    ap.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="FFT workers for ours (the reference's dask uses all cores)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="single-threaded processes for the stage-throughput run (0: skip it)",
    )
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/bench/hrtem.json")
    args = ap.parse_args()

    cases = make_cases(args.n_samples + 1, args.seed)
    common = dict(
        n_configs=args.n_configs,
        potential_sampling_A=args.sampling_A,
        slice_thickness_A=args.slice_thickness_A,
    )
    # Warm-up (FFTW plans, numba compilation) on an extra sample, not timed.
    _, atoms, sig, mp, seed = cases[0]
    reference_focal_series(atoms, sig, mp, seed=seed, **common)
    exit_focal_series(atoms, sig, mp, seed=seed, device=args.device, threads=args.threads, **common)
    rows, references = [], []
    for substrate, atoms, sig, mp, seed in cases[1:]:
        t0 = time.perf_counter()
        ref = reference_focal_series(atoms, sig, mp, seed=seed, **common)
        t1 = time.perf_counter()
        ours = exit_focal_series(
            atoms, sig, mp, seed=seed, device=args.device, threads=args.threads, **common
        )
        t2 = time.perf_counter()
        rel = float(np.abs(ours - ref).max() / np.abs(ref).max())
        if rel >= 1e-3:
            raise SystemExit(f"images differ: max relative difference {rel:.2e} >= 1e-3")
        references.append(ref)
        rows.append(
            {
                "substrate": substrate,
                "n_atoms": len(atoms),
                "reference_s": t1 - t0,
                "temflow_s": t2 - t1,
                "max_rel_diff": rel,
            }
        )
    df = pd.DataFrame(rows)
    ref_rate = len(df) / df.reference_s.sum()
    our_rate = len(df) / df.temflow_s.sum()
    stage = None
    if args.workers > 0 and args.device == "cpu":
        stage_s, stage_images = stage_throughput(cases, common, args.workers)
        stage_rel = max(
            float(np.abs(a - r).max() / np.abs(r).max())
            for a, r in zip(stage_images, references, strict=True)
        )
        if stage_rel >= 1e-3:
            raise SystemExit(f"stage images differ: max relative difference {stage_rel:.2e}")
        # For transparency: the reference run the same way (single-threaded workers).
        ref_stage_s, _ = stage_throughput(cases, common, args.workers, reference=True)
        stage = {
            "workers": args.workers,
            "wall_s": stage_s,
            "temflow_per_s": len(df) / stage_s,
            "ratio": len(df) / stage_s / ref_rate,
            "max_rel_diff": stage_rel,
            "reference_workers_per_s": len(df) / ref_stage_s,
            "ratio_to_reference_workers": ref_stage_s / stage_s,
        }
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(
        f"\nfocal series / s: abTEM documented pattern {ref_rate:.3f}, temflow {our_rate:.3f}, "
        f"ratio {our_rate / ref_rate:.2f}x  ({args.n_configs} configs, "
        f"{args.sampling_A} A sampling, {list(SAMPLE.field_of_view_A)} A field, "
        f"threads={args.threads}, device={args.device}, load={os.getloadavg()[0]:.1f})"
    )
    if stage is not None:
        print(
            f"stage throughput ({stage['workers']} single-threaded workers): temflow "
            f"{stage['temflow_per_s']:.3f} focal series/s, ratio {stage['ratio']:.2f}x "
            f"(max relative difference {stage['max_rel_diff']:.1e}); the abTEM pattern in the "
            f"same single-threaded workers: {stage['reference_workers_per_s']:.3f} focal "
            f"series/s, temflow {stage['ratio_to_reference_workers']:.2f}x that"
        )
    result = {
        "args": vars(args),
        "rows": rows,
        "reference_per_s": ref_rate,
        "temflow_per_s": our_rate,
        "ratio": our_rate / ref_rate,
        "stage": stage,
        "load_average_1min": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "versions": software_versions(),
    }
    with atomic_path(Path(args.out)) as tmp:
        tmp.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
