"""Throughput of ``temflow segment`` on a 2048 x 2048 focal series.

Times the whole library path the command runs (resampling skipped: the series is at the
model sampling; whole-image normalisation, tiled network pass with the exact
receptive-field margin, peak finding) for MSD-net and U-net at the architectures of the
test / default / paper configs (weights random: speed does not depend on them).

    python -m bench.speed.bench_segment [--size 2048] [--device auto] [--configs test default]
        [--repeats 1] [--tile 512]

Prints a table and writes results/bench/segment.json (machine and versions included).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import median_time, print_table, write_result
from temflow.apply.images import FocalSeries
from temflow.apply.segment import segment_series
from temflow.config import load_config
from temflow.models import MSDNet, UNet

CONFIG_FILES = {"test": "test.yaml", "default": "config.yaml", "paper": "paper.yaml"}


def config_archs(name: str) -> dict[str, dict]:
    """The ``segmentation.msdnet`` / ``segmentation.unet`` arguments of a shipped config,
    read from config/ so that the benchmark follows the configs."""
    root = Path(__file__).resolve().parents[2]
    seg = load_config([Path("config") / CONFIG_FILES[name]], root=root)["segmentation"]
    return {"msdnet": dict(seg["msdnet"]), "unet": dict(seg["unet"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--configs", nargs="+", default=["test", "default"], choices=list(CONFIG_FILES))
    ap.add_argument("--nets", nargs="+", default=["msdnet", "unet"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--out-dir", default="results/bench")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    images = rng.normal(size=(1, 3, args.size, args.size)).astype(np.float32)
    series = FocalSeries(list(images), [0.1], "random", "bench")
    card = {"classes": ["Mo", "S2", "S1"], "in_channels": 3, "sampling_A": 0.1}
    rows = []
    for cfg in args.configs:
        for net in args.nets:
            torch.manual_seed(0)
            arch = config_archs(cfg)[net]
            model = (MSDNet if net == "msdnet" else UNet)(3, 3, **arch).eval()

            def run(model=model) -> None:
                segment_series(series, model, card, device=args.device, tile_px=args.tile)

            start = time.perf_counter()
            run()  # warm-up (also the first timing on slow machines)
            first = time.perf_counter() - start
            sec = median_time(run, args.repeats)[0] if args.repeats > 0 else first
            mpx = args.size**2 / sec / 1e6
            rows.append({"config": cfg, "net": net, "arch": arch, "seconds": sec,
                         "first_call_seconds": first, "margin_px": model.receptive_radius_px,
                         "megapixels_per_s": mpx})  # fmt: skip
            print(f"{cfg} {net}: {sec:.2f} s", flush=True)
    print_table(rows, ["config", "net", "margin_px", "seconds", "megapixels_per_s"])
    result = {"size_px": args.size, "tile_px": args.tile, "device": args.device, "results": rows}
    path = write_result("segment", result, args.out_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
