"""HR-TEM shard size and read time: uncompressed vs gzip (the writer's default) vs lzf.

Reads existing shards (the layout temflow.hrtem.shards reads), rewrites their records with
each filter setting into a temporary directory and reports the file size, the write time
and the time to read every image with its columns (``open_dataset(...)[i]`` for all i,
warm page cache, median of ``--repeats``), plus the input file as it was.

    python -m bench.speed.bench_shards SHARD.h5 [SHARD.h5 ...] [--repeats 5]

Prints a table and writes results/bench/shards.json (machine and versions included).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py

from bench.common import interleaved_median_times, print_table, write_result
from temflow.hrtem.shards import (
    COMPRESSION,
    ImageRecord,
    open_dataset,
    read_attrs,
    write_shard,
)

VARIANTS = {
    "none": {},
    "gzip4+shuffle (default)": COMPRESSION,
    "lzf+shuffle": {"compression": "lzf", "shuffle": True},
}


def read_records(path: Path) -> tuple[list[ImageRecord], dict]:
    ds = open_dataset(path)
    records = []
    for images, columns, meta in ds:
        with h5py.File(path, "r") as f:
            g = f[f"image_{meta['index']:05d}"]
            arrays = {n: g[n][()] for n in ("positions_A", "numbers", "cell_A", "sigmas_A",
                                            "coordination")}  # fmt: skip
        attrs = {k: v for k, v in meta.items() if k not in ("shard", "index")}
        records.append(ImageRecord(images=images, columns=columns, attrs=attrs, **arrays))
    return records, read_attrs(path)


def read_all(path: Path) -> None:
    ds = open_dataset(path)
    for i in range(len(ds)):
        ds[i]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shards", nargs="+", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out-dir", default="results/bench")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, src in enumerate(args.shards):
            records, attrs = read_records(src)
            files = {"input as found": src}
            writes = {}
            for name, options in VARIANTS.items():
                dst = Path(tmp) / f"{k}_{len(files)}" / "shard_0000.h5"
                start = time.perf_counter()
                write_shard(dst, records, attrs, compression=options)
                writes[name] = time.perf_counter() - start
                files[name] = dst
            reads = interleaved_median_times(
                {name: (lambda p=p: read_all(p)) for name, p in files.items()}, args.repeats
            )
            raw = files["none"].stat().st_size
            for name, p in files.items():
                size = p.stat().st_size
                rows.append({"shard": str(src), "images": len(records), "layout": name,
                             "MB": size / 1e6, "ratio_vs_none": raw / size,
                             "write_s": writes.get(name, float("nan")),
                             "read_all_s": reads[name],
                             "read_ms_per_image": 1e3 * reads[name] / len(records)})  # fmt: skip
    print_table(rows, ["shard", "images", "layout", "MB", "ratio_vs_none", "write_s",
                       "read_all_s", "read_ms_per_image"])  # fmt: skip
    path = write_result("shards", {"repeats": args.repeats, "results": rows}, args.out_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
