"""MSD-net learning curve: mean per-image F1 on a validation set against Adam steps.

Trains one network on HR-TEM shards of a finished run (random crops, dihedral
augmentation, class-weighted MSE to Gaussian targets, as the workflow does) and scores
the whole validation set every ``--every`` steps at fixed peak thresholds. Used to choose the
default learning rate and step budget (the segmentation studies in docs/README.md). Runs on
the GPU when torch sees one (``--device``), with bf16 autocast there as the workflow trains
(``--amp``). The
learning rate is constant or follows a cosine decay to zero over ``--steps``;
``--max-minutes`` ends the run early at an evaluation. Prints a table last and writes
results/bench/{--name}.json after every evaluation.

    PYTHONPATH=src python -m bench.studies.bench_msdnet_learning --shards /tmp/default_run/hrtem \
        --substrate bare --learning-rate 0.01 --steps 2500 --every 500
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import torch

from bench.common import print_table, write_result
from temflow.segmentation.data import (
    SegmentationDataset,
    load_column_images,
    make_augment,
    normalise,
    subset,
)
from temflow.segmentation.detect import detect_in_maps, predict_maps
from temflow.segmentation.evaluate import evaluation_table
from temflow.segmentation.train import (
    CLASS_WEIGHTINGS,
    build_network,
    class_weights,
    weighted_mse_loss,
)
from temflow.training import autocast, resolve_amp, torch_device


def dead_channels(model, probe: torch.Tensor) -> int:
    """MSD-net feature channels that are positive on fewer than 0.1 % of the probe's
    pixels (a dead width-1 layer carries no information to the layers after it)."""
    with torch.no_grad():
        buf = model.features(probe)
    active = (buf[probe.shape[1] :] > 0).float().mean(dim=(1, 2, 3))
    return int((active < 1e-3).sum())


def binned(data, factor: int):
    """``data`` with its images average-pooled ``factor`` x ``factor`` (pixel size times
    ``factor``); column positions shift into the coarser pixel frame."""
    n, c, h, w = data.images.shape
    h, w = h // factor * factor, w // factor * factor
    img = data.images[..., :h, :w].reshape(n, c, h // factor, factor, w // factor, factor)
    shift = [(factor - 1) / 2 * s for s in data.sampling_A]
    cols = [
        df.assign(x_A=df["x_A"] - d, y_A=df["y_A"] - d)
        for df, d in zip(data.columns, shift, strict=True)
    ]
    lo, hi = data.sampling_range_A
    return dataclasses.replace(
        data,
        images=img.mean(axis=(3, 5)),
        columns=cols,
        sampling_A=data.sampling_A * factor,
        sampling_range_A=(lo * factor, hi * factor),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, required=True, help="results_dir/hrtem of a run")
    ap.add_argument("--substrate", default="bare", choices=["bare", "graphene"])
    ap.add_argument("--net", default="msdnet", choices=["msdnet", "unet"])
    ap.add_argument("--depth", type=int, default=24)
    ap.add_argument("--width", type=int, default=None, help="MSD-net width / U-net base width")
    ap.add_argument("--learning-rate", type=float, default=0.01)
    ap.add_argument("--schedule", default="constant", choices=["constant", "cosine"])
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--bin", type=int, default=1, help="average-pool the images by this factor")
    ap.add_argument("--target-width", type=float, default=0.4, help="Gaussian target sigma, A")
    ap.add_argument("--train-images", type=int, default=None, help="use the first N only")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--amp", default="bf16", choices=["none", "bf16", "fp16"])
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--name", default="msdnet_learning", help="results/bench/NAME.json")
    ap.add_argument(
        "--class-weights",
        default="balanced",
        choices=CLASS_WEIGHTINGS,
        help="per-class weights of the squared error, as segmentation.class_weights",
    )
    ap.add_argument(
        "--final-init",
        default="zero",
        choices=["zero", "pytorch"],
        help="MSD-net final 1x1 layer at the start: zero (MSDNet) or PyTorch's default "
        "random init (MSDNet before 2026-11-23)",
    )
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch_device(args.device)
    amp = resolve_amp(args.amp, device)
    train = load_column_images(sorted((args.shards / f"train_{args.substrate}").glob("*.h5")))
    if args.train_images is not None:
        train = subset(train, range(min(args.train_images, len(train))))
    val = load_column_images(sorted((args.shards / f"val_{args.substrate}").glob("*.h5")))
    if args.bin > 1:
        train, val = binned(train, args.bin), binned(val, args.bin)
    torch.manual_seed(0)
    arch = (
        {"depth": args.depth, "width": args.width or 1}
        if args.net == "msdnet"
        else {"depth": args.depth, "base_width": args.width or 16}
    )
    model = build_network(args.net, arch, 3, 3).to(device)
    if args.net == "msdnet" and args.final_init == "pytorch":
        model.final.reset_parameters()
    probe = torch.from_numpy(normalise(val.images[:4])).to(device)
    data = SegmentationDataset(train, args.target_width)
    # targets once, up front: building them costs ~5 ms per image, more than a GPU step
    inputs = data._inputs
    targets = torch.stack([data[i][1] for i in range(len(data))])
    loss_fn = weighted_mse_loss(class_weights(train, args.class_weights))
    opt = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    augment = make_augment(args.crop)
    gen = torch.Generator().manual_seed(1)
    rows, losses, start = [], [], time.perf_counter()
    meta = {"args": {**vars(args), "shards": str(args.shards)}, "device": str(device),
            "n_train": len(train), "n_val": len(val)}  # fmt: skip
    for step in range(1, args.steps + 1):
        if args.schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = args.learning_rate * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        idx = torch.randint(0, len(data), (args.batch,), generator=gen).tolist()
        x, y = inputs[idx], targets[idx]
        x, y = augment(x, y, gen)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        model.train()
        opt.zero_grad()
        with autocast(device, amp):
            out = model(x)
        loss = loss_fn(out.float(), y)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        minutes = (time.perf_counter() - start) / 60
        late = args.max_minutes is not None and minutes > args.max_minutes
        if step % args.every == 0 or step == args.steps or late:
            model.eval()
            mean_loss = float(torch.stack(losses[-args.every :]).mean())
            row = {"step": step, "train_loss": mean_loss}
            if args.net == "msdnet":
                row["dead_channels"] = dead_channels(model, probe)
            maps = predict_maps(model, val, device=str(device))
            for thr in args.thresholds:
                det = detect_in_maps(maps, val, thr, 2.0, 0.5, 1.0)
                table = evaluation_table(det, val)
                row[f"mean_f1_at_{thr:g}"] = float(table["f1"].mean())
                with_s1 = table[table["n_true_S1"] > 0]
                row[f"mean_f1_S1_at_{thr:g}"] = float(with_s1["f1_S1"].mean())
            row["minutes"] = (time.perf_counter() - start) / 60
            rows.append(row)
            print(row, flush=True)
            write_result(args.name, {**meta, "rows": rows})
            if late:
                break
    print_table(rows, list(rows[0]) if rows else [])


if __name__ == "__main__":
    main()
