"""MD throughput: temflow's run_langevin (sampling, unwrapping, statistics) against a bare
asap3 Langevin loop on the same system, in one run.

    .venv/bin/python -m bench.speed.bench_md [--repeats 5] [--steps 5000]
"""

from __future__ import annotations

import argparse

from bench.common import interleaved_median_times, print_table, write_result
from temflow.md.dynamics import make_calculator, relax, run_langevin
from temflow.md.structures import graphene_sheet, mos2_sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--sample-interval", type=int, default=10)
    args = parser.parse_args()
    import numpy as np
    from asap3.md.langevin import Langevin
    from ase import units
    from ase.md.velocitydistribution import thermalize_momenta

    rows = []
    for name, atoms in (
        ("mos2_sheet 12x12", mos2_sheet((12, 12))),
        ("graphene 12x12", graphene_sheet((12, 12))),
    ):
        atoms.calc = make_calculator(atoms)
        relax(atoms, 0.02)

        def pipeline(atoms=atoms):
            a = atoms.copy()
            a.calc = make_calculator(a)
            run_langevin(a, 300.0, 1.0, 0.02, 0, args.steps, args.sample_interval, seed=1)

        def bare(atoms=atoms):
            a = atoms.copy()
            a.calc = make_calculator(a)
            # Same start as the pipeline: thermal momenta, so both rebuild neighbour lists alike.
            thermalize_momenta(a, temperature_K=300.0, rng=np.random.default_rng(1))
            Langevin(a, units.fs, temperature_K=300.0, friction=0.02 / units.fs, seed=1).run(
                args.steps
            )

        t = interleaved_median_times({"pipeline": pipeline, "bare": bare}, args.repeats)
        t_pipe, t_bare = t["pipeline"], t["bare"]
        n = len(atoms) * args.steps
        rows.append(
            {
                "system": name,
                "atoms": len(atoms),
                "steps": args.steps,
                "temflow_atom_steps_per_s": n / t_pipe,
                "bare_asap3_atom_steps_per_s": n / t_bare,
                "overhead_pct": 100 * (t_pipe / t_bare - 1),
            }
        )
    print_table(rows, list(rows[0]))
    path = write_result("md", {"repeats": args.repeats, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
