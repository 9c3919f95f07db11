# Trajectories stage: Brownian / FBM / CTRW sets for MoNet, one job per set.


rule trajectories_generate:
    output:
        h5=TRAJ_H5,
    log:
        log_path("trajectories_generate", "{set}"),
    benchmark:
        bench_path("trajectories_generate", "{set}")
    wildcard_constraints:
        set="|".join(TRAJ_SETS),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        kind=lambda wc: TRAJ_SETS[wc.set][0],
        n=lambda wc: TRAJ_SETS[wc.set][1],
        noise_step_std=lambda wc: TRAJ_SETS[wc.set][2],
        trajectories={
            k: TRAJ[k]
            for k in (
                "length",
                "fbm_alpha_range",
                "ctrw_alpha_range",
                "diffusion_range_px2_per_frame",
                "ctrw_waiting_time",
                "noise_step_std",
            )
        },
        master_seed=MASTER_SEED,
        seed_key=job_seed("trajectories_generate"),
    script:
        "../scripts/traj_generate.py"
