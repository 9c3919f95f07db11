# MoNet stage: train the classifier and the two alpha regressors, evaluate, figures.


rule monet_train:
    input:
        h5=monet_train_set,
    output:
        pt=MONET_MODEL,
        card=results("models", "monet_{task}.json"),
        metrics=results("models", "monet_{task}_metrics.csv"),
    log:
        log_path("monet_train", "{task}"),
    benchmark:
        bench_path("monet_train", "{task}")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=MONET["runtime_min"],
        gpu=TRAINING_GPUS,
    params:
        training=monet_task_training,
        val_fraction=MONET["val_fraction"],
        combine_axes=MONET["combine_axes"],
        augment_noise_step_std=monet_task_setting("augment_noise_step_std"),
        augment_rotate=monet_task_setting("augment_rotate"),
        augment_noise_free_fraction=monet_task_setting("augment_noise_free_fraction"),
        augment_resimulate=monet_task_setting("augment_resimulate"),
        noise_input=monet_task_setting("noise_input"),
        trajectories=TRAJ_GENERATOR,
        device=DEVICE,
        master_seed=MASTER_SEED,
        seed_key=job_seed("monet_train"),
        work_dir=model_work_dir("monet_{task}"),
    script:
        "../scripts/monet_train.py"


rule monet_evaluate:
    input:
        model=monet_eval_model,
        h5=monet_eval_set,
    output:
        csv=MONET_EVAL_CSV,
    log:
        log_path("monet_evaluate", "{name}"),
    benchmark:
        bench_path("monet_evaluate", "{name}")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        task=monet_eval_task,
        device=DEVICE,
        batch_size=MONET["eval_batch_size"],
    script:
        "../scripts/monet_evaluate.py"


rule monet_report:
    input:
        unpack(monet_report_inputs),
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
        reliability_png=report(
            results("figures", "monet_reliability.png"),
            caption="../report/monet_reliability.rst",
            category="MoNet",
            labels={"figure": "calibration"},
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
