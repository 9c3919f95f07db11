# MoNet stage: train the classifier and the two alpha regressors, evaluate, figures.


rule monet_train:
    input:
        h5=lambda wc: TRAJ_H5.format(set=MONET_TRAIN_SET[wc.task]),
    output:
        pt=MONET_MODEL,
        card=results("models", "monet_{task}.json"),
        metrics=results("models", "monet_{task}_metrics.csv"),
    log:
        log_path("monet_train", "{task}"),
    benchmark:
        bench_path("monet_train", "{task}")
    wildcard_constraints:
        task="|".join(MONET_TRAIN_SET),
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=MONET["runtime_min"],
        gpu=1,
    params:
        training=MONET["training"],
        val_fraction=MONET["val_fraction"],
        combine_axes=MONET["combine_axes"],
        augment_noise_step_std=lambda wc: monet_augment(
            wc.task, "augment_noise_step_std"
        ),
        augment_rotate=lambda wc: monet_augment(wc.task, "augment_rotate"),
        augment_noise_free_fraction=lambda wc: monet_augment(
            wc.task, "augment_noise_free_fraction"
        ),
        augment_resimulate=lambda wc: monet_augment(wc.task, "augment_resimulate"),
        noise_input=lambda wc: monet_augment(wc.task, "noise_input"),
        trajectories=TRAJ_GENERATOR,
        device=DEVICE,
        master_seed=MASTER_SEED,
        seed_key=job_seed("monet_train"),
        # checkpoints live outside the outputs so an interrupted job resumes
        work_dir=lambda wc: results("models", "work", f"monet_{wc.task}"),
    script:
        "../scripts/monet_train.py"


rule monet_evaluate:
    input:
        model=lambda wc: MONET_MODEL.format(task=MONET_EVALS[wc.name][0]),
        h5=lambda wc: TRAJ_H5.format(set=MONET_EVALS[wc.name][1]),
    output:
        csv=MONET_EVAL_CSV,
    log:
        log_path("monet_evaluate", "{name}"),
    benchmark:
        bench_path("monet_evaluate", "{name}")
    wildcard_constraints:
        name="|".join(MONET_EVALS),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        task=lambda wc: MONET_EVALS[wc.name][0],
        device=DEVICE,
        batch_size=MONET["eval_batch_size"],
    script:
        "../scripts/monet_evaluate.py"


rule monet_report:
    input:
        unpack(
            lambda wc: {
                ("noisy" if name == "classify_noisy" else name.split("_")[0]): (
                    MONET_EVAL_CSV.format(name=name)
                )
                for name in MONET_EVALS
            }
        ),
    output:
        summary=report(
            results("eval", "monet_summary.csv"),
            caption="../report/monet_summary.rst",
            category="MoNet",
            labels={"figure": "summary"},
        ),
        confusion=results("eval", "monet_confusion.csv"),
        by_range=results("eval", "monet_alpha_mae_by_range.csv"),
        confusion_png=report(
            results("figures", "monet_confusion.png"),
            caption="../report/monet_confusion.rst",
            category="MoNet",
            labels={"figure": "confusion matrix"},
        ),
        alpha_png=report(
            results("figures", "monet_alpha.png"),
            caption="../report/monet_alpha.rst",
            category="MoNet",
            labels={"figure": "alpha regression"},
        ),
    log:
        log_path("monet_report"),
    benchmark:
        bench_path("monet_report")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        dpi=PLOTS["dpi"],
    script:
        "../scripts/monet_report.py"
