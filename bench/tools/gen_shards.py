"""HR-TEM shards of a config's datasets without Snakemake, in parallel worker processes.

Writes exactly the shards the workflow's ``hrtem_shard`` rule writes (same seeds: master
seed, dataset name and shard index), so a learning-curve or throughput benchmark can run
on a machine that has abTEM but not the workflow's tools (a lent GPU machine). A
dataset's image count can be raised: its first shards are then the workflow's own.

    PYTHONPATH=src python -m bench.tools.gen_shards --configfile config/config.yaml \
        --vibrations results/md/vibrations.csv --out /tmp/run/hrtem --workers 16 \
        --n-images train_bare=2000
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from temflow.config import load_config
from temflow.hrtem.config import HrtemConfig
from temflow.hrtem.generate import shard_sizes


def _one_shard(job: dict[str, Any]) -> tuple[str, float]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from temflow.hrtem.generate import generate_shard
    from temflow.md.vibrations import read_vibrations
    from temflow.seeding import derive_seed, workflow_seed_key

    start = time.perf_counter()
    generate_shard(
        job["path"],
        job["hrtem"],
        dataset=job["dataset"],
        substrate=job["substrate"],
        shard=job["shard"],
        n_images=job["n_images"],
        shard_seed=derive_seed(
            *workflow_seed_key(
                job["seed"], "hrtem_shard", {"dataset": job["dataset"], "shard": str(job["shard"])}
            )
        ),
        vibrations=read_vibrations(job["vibrations"]),
        cutoffs_A=job["cutoffs_A"],
        device=job["device"],
    )
    return job["path"], time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--vibrations", type=Path, required=True, help="md/vibrations.csv")
    ap.add_argument("--out", type=Path, required=True, help="receives {dataset}/shard_*.h5")
    ap.add_argument("--datasets", nargs="*", help="default: every hrtem dataset")
    ap.add_argument("--n-images", nargs="*", default=[], help="DATASET=N overrides")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    args = ap.parse_args()
    config = load_config([args.configfile])
    hrtem, datasets = config["hrtem"], config["hrtem"]["datasets"]
    hrtem_config = HrtemConfig.from_mapping(hrtem)
    counts = {ds: spec["n_images"] for ds, spec in datasets.items()}
    for item in args.n_images:
        name, _, n = item.partition("=")
        if name not in datasets or not n.isdigit():
            raise SystemExit(f"--n-images: expected DATASET=N with DATASET in {list(datasets)}")
        counts[name] = int(n)
    per_shard = hrtem["images_per_shard"]
    jobs = []
    for ds in args.datasets or list(datasets):
        if ds not in datasets:
            raise SystemExit(f"--datasets: {ds!r} is not one of {list(datasets)}")
        for shard, n_images in enumerate(shard_sizes(counts[ds], per_shard)):
            path = args.out / ds / f"shard_{shard:04d}.h5"
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            jobs.append({
                "path": str(path), "dataset": ds, "shard": shard,
                "substrate": datasets[ds]["substrate"],
                "n_images": n_images,
                "hrtem": hrtem_config,
                "seed": config["seed"], "vibrations": str(args.vibrations),
                "cutoffs_A": config["md"]["cutoffs_A"], "device": args.device,
            })  # fmt: skip
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        for fut in as_completed([pool.submit(_one_shard, job) for job in jobs]):
            path, seconds = fut.result()
            print(f"{path}: {seconds:.1f} s", flush=True)
    n = sum(job["n_images"] for job in jobs)
    wall = time.perf_counter() - start
    print(f"{len(jobs)} shards, {n} images in {wall:.1f} s with {args.workers} workers")


if __name__ == "__main__":
    main()
