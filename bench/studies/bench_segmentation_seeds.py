"""Spread between trainings: one segmentation network trained with several training seeds.

Runs exactly what the workflow's ``segmentation_train`` and ``segmentation_evaluate`` rules
run (the same library calls, the same config section, the same held-out images and
automatic peak threshold) on the HR-TEM shards of a finished run, once per master seed
given, and reports the mean per-image F1 on the validation set. Only the training seed
(initial weights, crop order, augmentation) changes between runs; the data do not, so the
spread is that of the training alone. The workflow's own run is ``--seeds`` = the config's
``seed``. Prints a table last and writes results/bench/{--name}.json after every seed;
each seed's per-image evaluation table (as the workflow writes it) goes to
``{--work}/{net}_{substrate}_seed{seed}/eval.csv``.

    PYTHONPATH=src python -m bench.studies.bench_segmentation_seeds \
        --configfile config/config.yaml --results /tmp/default_run --net msdnet \
        --substrate graphene --seeds 1 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench.common import print_table, write_result
from temflow.config import load_config
from temflow.seeding import derive_seed, workflow_seed_key
from temflow.segmentation.data import holdout_split, load_column_images
from temflow.segmentation.detect import calibrate_model
from temflow.segmentation.evaluate import evaluate_segmentation
from temflow.segmentation.train import train_segmentation
from temflow.training import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--results", required=True, help="results_dir of a run with HR-TEM shards")
    ap.add_argument("--net", choices=["msdnet", "unet"], default="msdnet")
    ap.add_argument("--substrate", choices=["bare", "graphene"], default="bare")
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="master seeds")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--work", default="/tmp/temflow_seed_bench", help="models go here")
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config([args.configfile])
    seg = config["segmentation"]
    hrtem = Path(args.results) / "hrtem"
    sets = seg["datasets"][args.substrate]
    train_shards = sorted(str(p) for p in (hrtem / sets["train"]).glob("shard_*.h5"))
    val_shards = sorted(str(p) for p in (hrtem / sets["val"]).glob("shard_*.h5"))
    if not train_shards or not val_shards:
        raise SystemExit(f"no HR-TEM shards under {hrtem}/{sets['train']} and {sets['val']}")
    training = {**seg["training"], **seg.get("network_training", {}).get(args.net, {})}
    detection = {k: seg[k] for k in ("min_separation_A", "match_radius_A", "border_A")}
    train_data, held_out = holdout_split(
        load_column_images(train_shards), seg["training_val_images"]
    )
    name = args.name or f"segmentation_seeds_{args.net}_{args.substrate}"
    rows = []
    for master_seed in args.seeds:
        out = Path(args.work) / f"{args.net}_{args.substrate}_seed{master_seed}"
        seed = derive_seed(
            *workflow_seed_key(
                master_seed, "segmentation_train", {"net": args.net, "substrate": args.substrate}
            )
        )
        train_config = TrainConfig.from_dict(
            {**training, "device": "auto", "seed": seed, "progress": False}
        )
        start = time.perf_counter()
        card = train_segmentation(
            args.net,
            seg[args.net],
            train_data,
            held_out,
            train_config,
            seg["target_width_A"],
            out / "work",
            out / "metrics.csv",
            out / "trained.pt",
            {"train": train_shards},
            substrate=args.substrate,
            crop_px=seg["crop_px"],
            class_weighting=seg["class_weights"],
        )
        calibrate_model(
            out / "trained.pt",
            out / "model.pt",
            train_shards,
            seg["training_val_images"],
            device="auto",
            **detection,
        )
        minutes = (time.perf_counter() - start) / 60
        table, threshold = evaluate_segmentation(
            out / "model.pt", args.net, val_shards, seg["peak_threshold"], **detection
        )
        table.to_csv(out / "eval.csv", index=False, float_format="%.6g")
        low = table["f1"][table["dose_e_per_A2"] < 300]
        rows.append(
            {
                "master_seed": master_seed,
                "best_epoch": card["metrics"]["best_epoch"],
                "epochs_run": card["metrics"]["epochs_run"],
                "threshold": threshold,
                "mean_f1": round(float(table["f1"].mean()), 4),
                "median_f1": round(float(table["f1"].median()), 4),
                "f1_below_300_e_per_A2": round(float(low.mean()), 4) if len(low) else None,
                "f1_S1": round(float(table["f1_S1"].mean()), 4),
                "f1_any_class": round(float(table["f1_any_class"].mean()), 4),
                "train_minutes": round(minutes, 1),
            }
        )
        meta = {"net": args.net, "substrate": args.substrate, "config": args.configfile}
        write_result(name, {**meta, "results": args.results, "rows": rows})
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
