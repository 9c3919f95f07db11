"""Study: trained segmentation models on validation images of two data generations.

Scores each ``{net}_{substrate}.pt`` of ``--models`` on the first ``--n-images`` validation
images of ``--old-data`` (the data the models were trained for) and of ``--new-data`` (shards
made with another microscope/specimen model, e.g. this checkout's defaults), with the
model card's calibrated peak threshold and the config's detection settings, as
``segmentation_evaluate`` scores them. Reports, per network, substrate and class (Mo, S2,
S1), the F1 of the pooled matches over the images (2 TP / (n_true + n_pred)) and the mean
per-image F1, old data against new: what the old data did not prepare the models for.
``--per-image-out`` adds every image's scores with its simulation parameters
(:data:`temflow.segmentation.IMAGE_PARAMETERS`, where its shards store them all).

    # validation shards with this checkout's defaults (the workflow's seeds):
    PYTHONPATH=src python -m bench.tools.gen_shards --vibrations OLD/md/vibrations.csv \
        --out /tmp/new/hrtem --datasets val_bare val_graphene \
        --n-images val_bare=20 val_graphene=20 --workers 2
    PYTHONPATH=src python -m bench.studies.bench_old_models_new_data \
        --models OLD/models --old-data OLD/hrtem --new-data /tmp/new/hrtem --n-images 20
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from temflow.errors import TemflowError
from temflow.hrtem.columns import CLASSES
from temflow.segmentation import IMAGE_PARAMETERS


def score(model_path: Path, net: str, paths: list[Path], n_images: int, detection: dict):
    """Per-image evaluation table of the model on the first ``n_images`` of ``paths``."""
    from temflow.segmentation.card import load_segmenter, resolve_threshold
    from temflow.segmentation.data import load_column_images, subset
    from temflow.segmentation.detect import detect_columns
    from temflow.segmentation.evaluate import evaluation_table, image_parameters

    data = load_column_images(paths)
    data = subset(data, range(min(n_images, len(data))))
    model, card = load_segmenter(model_path, net, data)
    threshold = resolve_threshold(detection["peak_threshold"], card, str(model_path))
    detections = detect_columns(
        model,
        data,
        threshold,
        detection["min_separation_A"],
        detection["match_radius_A"],
        detection["border_A"],
        device="cpu",
    )
    table = evaluation_table(detections, data)
    keys = [k for k in IMAGE_PARAMETERS if k not in table.columns]
    try:
        table = table.assign(**image_parameters(paths, keys, data))
    except TemflowError:  # shards of an older layout lack some of the parameters
        pass
    return table, threshold


def summarise(table: pd.DataFrame) -> dict[str, float]:
    """Pooled and mean per-image F1, overall and per class."""
    out: dict[str, float] = {"n_images": len(table), "f1_mean": float(table["f1"].mean())}
    tp, n_true, n_pred = (table[c].sum() for c in ("tp", "n_true", "n_pred"))
    out["f1_pooled"] = float(2 * tp / (n_true + n_pred)) if n_true + n_pred else np.nan
    for name in CLASSES:
        tp, n_true, n_pred = (table[f"{c}_{name}"].sum() for c in ("tp", "n_true", "n_pred"))
        out[f"f1_{name}_pooled"] = float(2 * tp / (n_true + n_pred)) if n_true + n_pred else np.nan
        out[f"f1_{name}_mean"] = float(table[f"f1_{name}"].mean())
        out[f"n_true_{name}"] = int(n_true)
    return out


def main() -> None:
    from temflow.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, required=True, help="holds {net}_{substrate}.pt")
    ap.add_argument("--old-data", type=Path, required=True, help="hrtem/ of the models' run")
    ap.add_argument("--new-data", type=Path, required=True, help="hrtem/ of the new data")
    ap.add_argument("--n-images", type=int, default=20, help="validation images per substrate")
    ap.add_argument("--configfile", type=Path, default=None, help="detection settings' config")
    ap.add_argument("--out", type=Path, default=Path("results/bench/old_models_new_data.csv"))
    ap.add_argument(
        "--per-image-out",
        type=Path,
        default=None,
        help="also write every image's scores and simulation parameters (CSV)",
    )
    args = ap.parse_args()

    config = load_config([args.configfile] if args.configfile else [])
    seg = config["segmentation"]
    detection = {k: seg[k] for k in ("peak_threshold", "min_separation_A", "match_radius_A")}
    detection["border_A"] = seg["border_A"]
    rows, per_image = [], []
    for net in seg["networks"]:
        for substrate in seg["substrates"]:
            model_path = args.models / f"{net}_{substrate}.pt"
            val = seg["datasets"][substrate]["val"]
            for label, root in (("old", args.old_data), ("new", args.new_data)):
                paths = sorted((root / val).glob("shard_*.h5"))
                if not paths:
                    raise SystemExit(f"no shards in {root / val}")
                t0 = time.perf_counter()
                table, threshold = score(model_path, net, paths, args.n_images, detection)
                per_image.append(table.assign(network=net, substrate=substrate, data=label))
                rows.append(
                    {
                        "network": net,
                        "substrate": substrate,
                        "data": label,
                        "peak_threshold": threshold,
                        **summarise(table),
                        "seconds": time.perf_counter() - t0,
                    }
                )
                print(
                    f"{net} {substrate} {label}: F1 {rows[-1]['f1_pooled']:.3f} "
                    f"({rows[-1]['n_images']} images, {rows[-1]['seconds']:.0f} s)",
                    flush=True,
                )
    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False, float_format="%.4f")
    if args.per_image_out is not None:
        pd.concat(per_image).to_csv(args.per_image_out, index=False, float_format="%.6g")
    long = []
    for _, r in df.iterrows():
        for name in ("all", *CLASSES):
            key = "f1_pooled" if name == "all" else f"f1_{name}_pooled"
            long.append(
                {
                    "network": r.network,
                    "substrate": r.substrate,
                    "class": name,
                    "data": r.data,
                    "f1": r[key],
                }
            )
    table = pd.DataFrame(long).pivot_table(
        index=["network", "substrate", "class"], columns="data", values="f1", sort=False
    )[["old", "new"]]
    table["new - old"] = table["new"] - table["old"]
    print("\npooled F1 (2 TP / (n_true + n_pred)) over the first", args.n_images, "images")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"(load {os.getloadavg()[0]:.1f}; per-image means in {args.out})")


if __name__ == "__main__":
    main()
