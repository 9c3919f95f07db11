"""Mean per-image F1 of a finished run's segmentation models by imaging condition.

Reads the run's evaluation tables (``RUN/eval/{net}_{substrate}.csv``, one row per
validation image with its simulation parameters) and prints mean F1 (all classes and
S1), with the image count, in bins of |Cs| (um) and, where the tables carry it, of
``defocus_scherzer_fraction`` for the images with |Cs| above ``--large-cs-um``: how far
the networks read an image whose focus is set for its Cs, and one whose focus is not.

    python -m bench.studies.bench_f1_by_condition --results RUN [--label NAME]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import print_table, write_result

CS_BINS_UM = [0, 5, 10, 15, 20.001]
FRACTION_BINS = [0, 0.25, 0.5, 0.75, 1.001]


def binned(table: pd.DataFrame, column: pd.Series, edges: list[float]) -> pd.DataFrame:
    """Mean F1, S1 F1 and image count of ``table`` per bin of ``column``."""
    bins = pd.cut(column, edges, right=False).astype(str)
    return (
        table.groupby(bins, sort=False)
        .agg(n=("f1", "size"), mean_f1=("f1", "mean"), mean_f1_S1=("f1_S1", "mean"))
        .reset_index(names="bin")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True, help="a finished run's results_dir")
    ap.add_argument("--large-cs-um", type=float, default=10.0)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    rows = []
    for path in sorted((args.results / "eval").glob("*_*.csv")):
        net, _, substrate = path.stem.partition("_")
        if net not in ("msdnet", "unet"):
            continue
        table = pd.read_csv(path)
        abs_cs = table["Cs_um"].abs()
        for axis, column, edges, subset in [
            ("abs_Cs_um", abs_cs, CS_BINS_UM, table),
            (
                f"scherzer_fraction, abs(Cs) >= {args.large_cs_um:g} um",
                table.get("defocus_scherzer_fraction"),
                FRACTION_BINS,
                table[abs_cs >= args.large_cs_um],
            ),
        ]:
            if column is None:
                continue
            for row in binned(subset, column[subset.index], edges).to_dict("records"):
                rows.append({"net": net, "substrate": substrate, "axis": axis, **row})
        rows.append(
            {
                "net": net,
                "substrate": substrate,
                "axis": "all",
                "bin": "all",
                "n": len(table),
                "mean_f1": float(table.f1.mean()),
                "mean_f1_S1": float(np.nanmean(table.f1_S1)),
            }
        )
    if not rows:
        raise SystemExit(f"no evaluation tables {args.results}/eval/{{msdnet,unet}}_*.csv")
    out = pd.DataFrame(rows)
    print_table(out.round(3).to_dict("records"), list(out.columns))
    write_result(f"f1_by_condition{args.label}", {"rows": out.to_dict("records")})


if __name__ == "__main__":
    main()
