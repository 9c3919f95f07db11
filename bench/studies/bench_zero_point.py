"""Zero-point motion: classical MD amplitudes against the quantum-corrected ones.

Runs the workflow's MD (one run per system, the config's ``md`` section and seeds: the
library calls of ``workflow/scripts/md_run.py``) and prints, per system and
(element, coordination) group, the classical sigma_xy / sigma_z, the zero-point factors
from the group's own vibrational DOS and the mean-square displacements U = sigma^2
(A^2) classical and corrected, for comparison with experimental Debye-Waller factors
(docs/2026-12-02-focal-series-and-zero-point.md).

    PYTHONPATH=src python -m bench.studies.bench_zero_point --systems mos2_sheet graphene
"""

from __future__ import annotations

import argparse

from bench.common import print_table, write_result
from temflow.config import load_config
from temflow.md.coordination import coordination_numbers
from temflow.md.dynamics import make_calculator, relax, run_langevin
from temflow.md.structures import build_system
from temflow.md.vibrations import group_by_environment, zero_point_factors
from temflow.seeding import derive_rng


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--systems", nargs="+", default=["mos2_sheet", "graphene"])
    ap.add_argument("--production-steps", type=int, default=None)
    ap.add_argument(
        "--sample-interval-steps", type=int, default=None, help="override (DOS Nyquist)"
    )
    ap.add_argument(
        "--velocity-interval-steps", type=int, default=None, help="override (DOS Nyquist)"
    )
    ap.add_argument("--name", default="zero_point")
    args = ap.parse_args()
    md = load_config([args.configfile])["md"]
    rows = []
    for system in args.systems:
        rng = derive_rng(2026, "bench_zero_point", system)
        atoms = build_system(system, md[system], rng)
        atoms.calc = make_calculator(atoms, md["kim_model"])
        relax(atoms, md["relax_fmax_eV_per_A"])
        cn = coordination_numbers(atoms, md["cutoffs_A"])
        stats = run_langevin(
            atoms,
            temperature_K=md["temperature_K"],
            timestep_fs=md["timestep_fs"],
            friction_per_fs=md["friction_per_fs"],
            equilibration_steps=md["equilibration_steps"],
            production_steps=args.production_steps or md["production_steps"],
            sample_interval_steps=args.sample_interval_steps or md["sample_interval_steps"],
            seed=int(rng.integers(2**31)),
            velocity_interval_steps=args.velocity_interval_steps,
        )
        factors = zero_point_factors(
            atoms.get_chemical_symbols(),
            cn,
            stats.velocities,
            stats.velocity_interval_fs,
            md["temperature_K"],
        )
        table = group_by_environment(
            system,
            0,
            atoms.get_chemical_symbols(),
            cn,
            stats.sigma_xy_A,
            stats.sigma_z_A,
            stats.n_frames,
            md["temperature_K"],
            stats.atom_steps_per_s,
            zero_point=factors,
        )
        for r in table.itertuples():
            rows.append(
                {
                    "system": system,
                    "element": r.element,
                    "cn": int(r.coordination),
                    "n_atoms": int(r.n_atoms),
                    "sigma_xy_A": r.sigma_xy,
                    "sigma_z_A": r.sigma_z,
                    "zp_xy": r.zero_point_xy,
                    "zp_z": r.zero_point_z,
                    "U_xy_cl_A2": r.sigma_xy**2,
                    "U_xy_q_A2": (r.sigma_xy * r.zero_point_xy) ** 2,
                    "U_z_cl_A2": r.sigma_z**2,
                    "U_z_q_A2": (r.sigma_z * r.zero_point_z) ** 2,
                    "atom_steps_per_s": stats.atom_steps_per_s,
                }
            )
    print_table(rows, list(rows[0]))
    write_result(args.name, {"rows": rows, "md": {k: md[k] for k in md if k != "systems"}})


if __name__ == "__main__":
    main()
