# Trajectories stage: Brownian / FBM / CTRW sets for MoNet, one job per set.


rule trajectories_generate:
    output:
        h5=TRAJ_H5,
    log:
        log_path("trajectories_generate", "{set}"),
    benchmark:
        bench_path("trajectories_generate", "{set}")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        kind=traj_kind,
        n=traj_size,
        noise_step_std=traj_noise_step_std,
        trajectories=TRAJ_SETTINGS,
        master_seed=MASTER_SEED,
        seed_key=job_seed("trajectories_generate"),
    script:
        "../scripts/traj_generate.py"
