"""MoNet quality under training augmentation: one task, trained and scored on existing sets.

Trains one MoNet task (``classify``, ``fbm_alpha`` or ``ctrw_alpha``) with the shared
loop on the trajectory sets of a finished run (``results_dir/trajectories``), with a
chosen localisation-noise augmentation and random rotation, then scores it on that run's
held-out sets: accuracy on ``classify_test`` and ``classify_test_noisy``, or the alpha
MAE (with its standard error) on ``fbm_test`` / ``ctrw_test``. The workflow does the same
through ``monet_train`` / ``monet_evaluate``; this script varies the augmentation without
regenerating data or retraining the other tasks. Prints a table last and writes
results/bench/monet_augment_<task>.json.

    PYTHONPATH=src python -m bench.studies.bench_monet_augment \
        --trajectories /tmp/paper_monet/trajectories --task classify \
        --noise 0.75 --rotate --epochs 20 --threads 1 --work /tmp/monet_aug
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml

from bench.common import print_table, write_result
from temflow.evaluation.classification import accuracy
from temflow.monet.card import load_monet
from temflow.monet.data import inputs_of
from temflow.monet.evaluate import evaluate_task
from temflow.monet.tasks import TASKS
from temflow.monet.train import train_task
from temflow.training import predict
from temflow.trajectories.io import read_trajectories


def told_precision_scores(args: argparse.Namespace, model_pt: Path) -> dict[str, float]:
    """Accuracy of a noise-aware classifier told a wrong localisation precision."""
    model, _ = load_monet(model_pt, "classify")
    scores = {}
    cases = [("classify_test_noisy", f, None) for f in args.told_noise_factors]
    cases += [("classify_test", None, v) for v in args.told_noise_noiseless]
    for test, factor, value in cases:
        data = read_trajectories(args.trajectories / f"{test}.h5")
        x = inputs_of(data, noise_input=True)
        x[..., 2] = x[..., 2] * factor if factor is not None else value
        pred = predict(model, x, batch_size=512, device="cpu").argmax(1).numpy()
        key = f"told_x{factor:g}" if factor is not None else f"told_{value:g}"
        scores[f"accuracy_{test}_{key}"] = accuracy(data.label, pred)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trajectories", type=Path, required=True, help="results_dir/trajectories")
    ap.add_argument("--task", choices=list(TASKS), default="classify")
    ap.add_argument("--noise", type=float, default=0.0, help="augmentation noise, max step std")
    ap.add_argument("--rotate", action="store_true", help="random-rotation augmentation")
    ap.add_argument(
        "--noise-free-fraction",
        type=float,
        default=0.0,
        help="share of training tracks left without augmentation noise",
    )
    ap.add_argument(
        "--resimulate",
        type=Path,
        default=None,
        metavar="CONFIG",
        help="fresh training tracks every batch, from CONFIG's trajectories section",
    )
    ap.add_argument("--combine-axes", choices=["outputs", "features"], default="outputs")
    ap.add_argument(
        "--noise-input",
        action="store_true",
        help="noise-aware MoNet: the network is told each track's localisation error std",
    )
    ap.add_argument(
        "--told-noise-factors",
        type=float,
        nargs="*",
        default=[],
        help="noise-aware classifier: also score the noisy test set with the precision it "
        "is told scaled by these factors (a user's misjudged localisation precision)",
    )
    ap.add_argument(
        "--told-noise-noiseless",
        type=float,
        nargs="*",
        default=[],
        help="noise-aware classifier: also score the noiseless test set told these "
        "precisions (step std) instead of 0",
    )
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--lr-decay-patience", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--work", type=Path, required=True, help="folder for model + checkpoints")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prefix = {"classify": "classify", "fbm_alpha": "fbm", "ctrw_alpha": "ctrw"}[args.task]
    training = {
        "epochs": args.epochs,
        "batch_size": 64,
        "learning_rate": 0.001,
        "patience": args.patience,
        "lr_decay_patience": args.lr_decay_patience,
        "device": "cpu",
    }
    model_pt = args.work / "model.pt"
    card = train_task(
        args.task,
        args.trajectories / f"{prefix}_train.h5",
        model_pt,
        args.work / "metrics.csv",
        args.work / "checkpoints",
        training=training,
        val_fraction=0.1,
        augment_noise_step_std=args.noise,
        augment_rotate=args.rotate,
        augment_noise_free_fraction=args.noise_free_fraction,
        resimulate=(
            None
            if args.resimulate is None
            else yaml.safe_load(args.resimulate.read_text())["trajectories"]
        ),
        seed=args.seed,
        combine_axes=args.combine_axes,
        noise_input=args.noise_input,
    )
    row: dict = {"task": args.task, "noise": args.noise, "rotate": args.rotate,
                 "noise_free_fraction": args.noise_free_fraction,
                 "resimulate": args.resimulate is not None, "combine": args.combine_axes,
                 "noise_input": args.noise_input,
                 "best_epoch": card["metrics"]["best_epoch"],
                 "epochs_run": card["metrics"]["epochs_run"]}  # fmt: skip
    if args.task == "classify":
        for test in ("classify_test", "classify_test_noisy"):
            path = args.trajectories / f"{test}.h5"
            frame = evaluate_task(args.task, model_pt, path, args.work / f"{test}.csv", "cpu")
            row[f"accuracy_{test}"] = accuracy(frame.label, frame.predicted)
        if args.noise_input:
            row |= told_precision_scores(args, model_pt)
    else:
        path = args.trajectories / f"{prefix}_test.h5"
        frame = evaluate_task(args.task, model_pt, path, args.work / "test.csv", "cpu")
        err = np.abs(frame.alpha_predicted - frame.alpha)
        row["alpha_mae"] = float(err.mean())
        row["alpha_mae_se"] = float(err.std(ddof=1) / np.sqrt(len(err)))
    print_table([row], list(row))
    paths = {"trajectories": str(args.trajectories), "work": str(args.work),
             "resimulate": None if args.resimulate is None else str(args.resimulate)}  # fmt: skip
    write_result(f"monet_augment_{args.task}", {"args": {**vars(args), **paths}, "row": row})


if __name__ == "__main__":
    main()
