# MD stage: asap3 Langevin runs -> per-atom vibration amplitudes -> vibrations.csv.


rule md_run:
    input:
        structure=md_structure_input,
    output:
        csv=MD_RUN_CSV,
    log:
        log_path("md_run", "{system}", "{run}"),
    benchmark:
        bench_path("md_run", "{system}", "{run}")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        system_params=md_system_params,
        temperature_K=MD["temperature_K"],
        timestep_fs=MD["timestep_fs"],
        friction_per_fs=MD["friction_per_fs"],
        relax_fmax_eV_per_A=MD["relax_fmax_eV_per_A"],
        equilibration_steps=MD["equilibration_steps"],
        production_steps=MD["production_steps"],
        sample_interval_steps=MD["sample_interval_steps"],
        cutoffs_A=MD["cutoffs_A"],
        kim_model=MD["kim_model"],
        zero_point_motion=MD["zero_point_motion"],
        master_seed=MASTER_SEED,
        seed_key=job_seed("md_run"),
    script:
        "../scripts/md_run.py"


rule md_vibrations:
    input:
        runs=MD_RUNS,
    output:
        csv=report(
            results("md", "vibrations.csv"),
            caption="../report/vibrations_table.rst",
            category="MD",
            labels={"figure": "vibration table"},
        ),
    log:
        log_path("md_vibrations"),
    benchmark:
        bench_path("md_vibrations")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        temperature_K=MD["temperature_K"],
    script:
        "../scripts/md_vibrations.py"


rule md_figure:
    input:
        csv=results("md", "vibrations.csv"),
    output:
        png=report(
            results("figures", "vibrations.png"),
            caption="../report/vibrations.rst",
            category="MD",
            labels={"figure": "vibration amplitudes"},
        ),
    log:
        log_path("md_figure"),
    benchmark:
        bench_path("md_figure")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        dpi=PLOTS["dpi"],
    script:
        "../scripts/md_figure.py"
