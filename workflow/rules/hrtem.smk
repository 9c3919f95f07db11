# HR-TEM stage: frozen-phonon focal series of MoS2 (bare, on graphene) + column labels.


wildcard_constraints:
    dataset="|".join(HRTEM["datasets"]) or "none",
    shard="[0-9]{4}",


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
        sample=HRTEM["sample"],
        microscope=HRTEM["microscope"],
        simulation=HRTEM["simulation"],
        substrate=lambda wc: HRTEM["datasets"][wc.dataset]["substrate"],
        n_images=lambda wc: hrtem_shard_size(wc.dataset, int(wc.shard)),
        cutoffs_A=MD["cutoffs_A"],
        master_seed=MASTER_SEED,
        device=DEVICE,
    script:
        "../scripts/hrtem_shard.py"


rule hrtem_figure:
    input:
        shards=[hrtem_shards(ds)[0] for ds in HRTEM["figure_datasets"]],
    output:
        png=results("figures", "hrtem_examples.png"),
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
