"""Whole-workflow wall time per rule from the `benchmark:` files of a finished run, summed
along the critical path of the rule graph.

    .venv/bin/snakemake --cores all [--configfile config/config.yaml]     # the run itself
    .venv/bin/python -m bench.speed.bench_workflow [--configfile config/config.yaml]

Per rule: number of jobs, summed job seconds and the longest job. Critical path: the
longest chain through Snakemake's rule graph where each rule counts with its longest job
(jobs of one rule can run side by side given enough cores), i.e. the wall time on a machine
with unlimited cores; the summed seconds divided by the cores give the other bound.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd

from bench.common import print_table, write_result
from temflow.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def rule_graph(configfile: str) -> dict[str, set[str]]:
    """{rule: rules it depends on} from `snakemake --rulegraph` (dot)."""
    snakemake = Path(sys.executable).parent / "snakemake"
    dot = subprocess.run(
        [str(snakemake), "--rulegraph", "--configfile", configfile, "--forceall", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', dot, flags=re.M))
    deps: dict[str, set[str]] = {name: set() for name in names.values()}
    for src, dst in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M):
        deps[names[dst]].add(names[src])
    return deps


def rule_of(bench_file: Path, rules: list[str]) -> str | None:
    # benchmark files are named {rule}[_{wildcards}].tsv (workflow/rules/common.smk)
    stem = bench_file.stem
    matches = [r for r in rules if stem == r or stem.startswith(r + "_")]
    return max(matches, key=len) if matches else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/config.yaml")
    args = parser.parse_args()
    config = load_config([args.configfile], root=ROOT)
    bench_dir = ROOT / config.get("results_dir", "results") / "benchmarks"
    deps = rule_graph(args.configfile)
    rules = [r for r in deps if r != "all"]
    seconds: dict[str, list[float]] = defaultdict(list)
    for f in sorted(bench_dir.glob("*.tsv")):
        rule = rule_of(f, rules)
        if rule is not None:
            seconds[rule].append(float(pd.read_csv(f, sep="\t")["s"].iloc[-1]))
    missing = [r for r in rules if r not in seconds]
    if missing:
        sys.exit(f"no benchmark files for rules {missing} in {bench_dir}: run the workflow first")

    longest = {r: max(seconds[r]) for r in rules}
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}

    def finish_time(rule: str) -> float:
        if rule not in finish:
            parents = [p for p in deps[rule] if p != "all"]
            best = max(parents, key=finish_time, default=None)
            via[rule] = best
            finish[rule] = (finish_time(best) if best else 0.0) + longest.get(rule, 0.0)
        return finish[rule]

    end = max(rules, key=finish_time)
    path, node = [], end
    while node:
        path.append(node)
        node = via[node]
    rows = [
        {
            "rule": r,
            "jobs": len(seconds[r]),
            "sum_s": sum(seconds[r]),
            "longest_s": longest[r],
            "on_critical_path": "yes" if r in path else "",
        }
        for r in sorted(rules, key=lambda r: -sum(seconds[r]))
    ]
    print_table(rows, list(rows[0]))
    total = sum(sum(v) for v in seconds.values())
    print(
        f"\nsummed job time {total:.0f} s; critical path {finish[end]:.0f} s: "
        + " -> ".join(reversed(path))
    )
    out = write_result(
        "workflow",
        {
            "configfile": args.configfile,
            "rows": rows,
            "summed_job_s": total,
            "critical_path_s": finish[end],
            "critical_path": list(reversed(path)),
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
