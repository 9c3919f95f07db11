"""One MD run: build the system, relax, Langevin MD, per-environment sigmas."""

from temflow.md.coordination import coordination_numbers
from temflow.md.dynamics import make_calculator, relax, run_langevin
from temflow.md.structures import build_system
from temflow.md.vibrations import group_by_environment, write_table, zero_point_factors
from temflow.seeding import derive_rng
from temflow.workflow import script_context

with script_context(snakemake) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    p = sm.params
    system, run = sm.wildcards.system, int(sm.wildcards.run)
    rng = derive_rng(*p.seed_key)
    atoms = build_system(system, p.system_params, rng)
    atoms.calc = make_calculator(atoms, p.kim_model)
    relax(atoms, p.relax_fmax_eV_per_A)
    coordination = coordination_numbers(atoms, p.cutoffs_A)
    log.info("%s run %d: %d atoms, relaxed", system, run, len(atoms))
    stats = run_langevin(
        atoms,
        temperature_K=p.temperature_K,
        timestep_fs=p.timestep_fs,
        friction_per_fs=p.friction_per_fs,
        equilibration_steps=p.equilibration_steps,
        production_steps=p.production_steps,
        sample_interval_steps=p.sample_interval_steps,
        seed=int(rng.integers(2**31)),
        progress=True,
    )
    log.info("MD speed: %.4g atom-steps/s", stats.atom_steps_per_s)
    factors = zero_point_factors(
        atoms.get_chemical_symbols(),
        coordination,
        stats.velocities,
        stats.velocity_interval_fs,
        p.temperature_K,
    )
    log.info("zero-point amplitude factors:\n%s", factors.to_string(index=False))
    table = group_by_environment(
        system,
        run,
        atoms.get_chemical_symbols(),
        coordination,
        stats.sigma_xy_A,
        stats.sigma_z_A,
        stats.n_frames,
        p.temperature_K,
        stats.atom_steps_per_s,
        zero_point=factors,
        correct_zero_point=p.zero_point_motion,
    )
    write_table(table, sm.output.csv)
