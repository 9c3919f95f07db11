"""MSD-net learning curve: mean per-image F1 on a validation set against Adam steps.

Trains one network on HR-TEM shards of a finished run (random crops, dihedral
augmentation, MSE to Gaussian targets, as the workflow does) and scores the whole
validation set every ``--every`` steps at fixed peak thresholds. Used to choose the
default learning rate and step budget (BENCHMARKS.md). Prints a table last and writes
results/bench/msdnet_learning.json.

    PYTHONPATH=src python bench/bench_msdnet_learning.py --shards /tmp/default_run/hrtem \
        --substrate bare --learning-rate 0.01 --steps 2500 --every 500
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import print_table, write_result

from temflow.segmentation.data import SegmentationDataset, load_column_images, make_augment
from temflow.segmentation.pipeline import (
    build_network,
    detect_columns,
    evaluation_table,
    mse_loss,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, required=True, help="results_dir/hrtem of a run")
    ap.add_argument("--substrate", default="bare", choices=["bare", "graphene"])
    ap.add_argument("--net", default="msdnet", choices=["msdnet", "unet"])
    ap.add_argument("--depth", type=int, default=24)
    ap.add_argument("--learning-rate", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train = load_column_images(sorted((args.shards / f"train_{args.substrate}").glob("*.h5")))
    val = load_column_images(sorted((args.shards / f"val_{args.substrate}").glob("*.h5")))
    torch.manual_seed(0)
    arch = (
        {"depth": args.depth, "width": 1}
        if args.net == "msdnet"
        else {"depth": args.depth, "base_width": 16}
    )
    model = build_network(args.net, arch, 3, 3)
    data = SegmentationDataset(train, 0.4)
    opt = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    augment = make_augment(args.crop)
    gen = torch.Generator().manual_seed(1)
    rows, losses, start = [], [], time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(data), (args.batch,), generator=gen).tolist()
        x = torch.stack([data[i][0] for i in idx])
        y = torch.stack([data[i][1] for i in idx])
        x, y = augment(x, y, gen)
        model.train()
        opt.zero_grad()
        loss = mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % args.every == 0:
            model.eval()
            row = {"step": step, "train_loss": float(np.mean(losses[-args.every :]))}
            for thr in args.thresholds:
                det = detect_columns(model, val, thr, 2.0, 0.5, 1.0, device="cpu")
                row[f"mean_f1_at_{thr:g}"] = float(evaluation_table(det, val)["f1"].mean())
            row["minutes"] = (time.perf_counter() - start) / 60
            rows.append(row)
            print(row, flush=True)
    print_table(rows, list(rows[0]) if rows else [])
    write_result("msdnet_learning", {"args": {**vars(args), "shards": str(args.shards)},
                                     "rows": rows})  # fmt: skip


if __name__ == "__main__":
    main()
