# HR-TEM stage: frozen-phonon focal series of MoS2 (bare, on graphene) + column labels.


rule hrtem_shard:
    input:
        vibrations=results("md", "vibrations.csv"),
    output:
        h5=HRTEM_SHARD_H5,
    log:
        log_path("hrtem_shard", "{dataset}", "{shard}"),
    benchmark:
        bench_path("hrtem_shard", "{dataset}", "{shard}")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    params:
        sample=hrtem_dataset_sample,
        microscope=hrtem_dataset_microscope,
        simulation=HRTEM["simulation"],
        substrate=hrtem_substrate,
        n_images=hrtem_shard_images,
        cutoffs_A=MD["cutoffs_A"],
        master_seed=MASTER_SEED,
        seed_key=job_seed("hrtem_shard"),
        device=DEVICE,
    script:
        "../scripts/hrtem_shard.py"


rule hrtem_figure:
    input:
        shards=[hrtem_shards(ds)[0] for ds in HRTEM["figure_datasets"]],
    output:
        png=report(
            results("figures", "hrtem_examples.png"),
            caption="../report/hrtem_examples.rst",
            category="HR-TEM",
            labels={"figure": "HR-TEM examples"},
        ),
    log:
        log_path("hrtem_figure"),
    benchmark:
        bench_path("hrtem_figure")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        datasets=HRTEM["figure_datasets"],
        dpi=PLOTS["dpi"],
    script:
        "../scripts/hrtem_figure.py"
