"""Compare two results directories file by file: which outputs a change left identical.

    PYTHONPATH=src python -m bench.tools.compare_results RESULTS_BEFORE RESULTS_AFTER

Byte-identical files are counted; for the others it says what differs: HDF5 datasets and
attributes (shards, trajectory sets), model weights and card keys (.pt / .json), CSV
columns. Logs, benchmark files, checkpoints and figures are skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import torch

SKIP_DIRS = ("logs/", "benchmarks/", "models/work/")
SKIP_SUFFIXES = (".png", ".pdf")


def h5_items(path: Path) -> dict[str, Any]:
    """Every dataset (``D:name``) and attribute (``A:name@key``) of an HDF5 file."""
    out: dict[str, Any] = {}
    with h5py.File(path) as f:
        out.update({f"A:/@{k}": v for k, v in f.attrs.items()})

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                out["D:" + name] = obj[()]
            out.update({f"A:{name}@{k}": v for k, v in obj.attrs.items()})

        f.visititems(visit)
    return out


def same(x: Any, y: Any) -> bool:
    if isinstance(x, bytes | str) or isinstance(y, bytes | str):
        return x == y
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape:
        return False
    if x.dtype.names or x.dtype.kind in "OSU":
        return bool((x == y).all())
    return bool(np.array_equal(x, y, equal_nan=True))


def card_keys_differing(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def describe(pa: Path, pb: Path) -> str:
    """What differs between two files of the same name."""
    if pa.suffix == ".h5":
        ia, ib = h5_items(pa), h5_items(pb)
        keys = sorted(
            k for k in set(ia) | set(ib) if k not in ia or k not in ib or not same(ia[k], ib[k])
        )
        return "HDF5 entries differing: " + ", ".join(keys)
    if pa.suffix == ".pt":
        sa, sb = (torch.load(p, weights_only=True) for p in (pa, pb))
        wa, wb = sa["state_dict"], sb["state_dict"]
        weights = set(wa) == set(wb) and all(torch.equal(wa[k], wb[k]) for k in wa)
        keys = card_keys_differing(sa["card"], sb["card"])
        return f"weights identical: {weights}; card keys differing: {keys}"
    if pa.suffix == ".json":
        keys = card_keys_differing(json.loads(pa.read_text()), json.loads(pb.read_text()))
        return f"keys differing: {keys}"
    if pa.suffix == ".csv":
        da, db = pd.read_csv(pa), pd.read_csv(pb)
        cols = [c for c in da.columns if c in db.columns and not da[c].equals(db[c])]
        return (
            f"shape {da.shape} -> {db.shape}; columns added {sorted(set(db) - set(da))}, "
            f"removed {sorted(set(da) - set(db))}, values differing in {cols}"
        )
    return "bytes differ"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    args = ap.parse_args()

    def files(root: Path) -> set[Path]:
        return {
            p.relative_to(root)
            for p in root.rglob("*")
            if p.is_file()
            and not str(p.relative_to(root)).startswith(SKIP_DIRS)
            and p.suffix not in SKIP_SUFFIXES
        }

    before, after = files(args.before), files(args.after)
    identical = 0
    for rel in sorted(before & after):
        pa, pb = args.before / rel, args.after / rel
        if pa.read_bytes() == pb.read_bytes():
            identical += 1
        else:
            print(f"differs: {rel}: {describe(pa, pb)}")
    print(f"only before: {sorted(map(str, before - after))}")
    print(f"only after: {sorted(map(str, after - before))}")
    print(f"byte-identical: {identical} of {len(before & after)} common files")


if __name__ == "__main__":
    main()
