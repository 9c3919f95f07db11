# Segmentation stage: train MSD-net and U-net per substrate on the HR-TEM shards, calibrate
# each one's peak threshold, evaluate per validation image (peaks -> matching -> F1),
# figures and summary table.


rule segmentation_train:
    input:
        train=seg_train_shards,
    output:
        model=SEG_TRAINED,
        card=SEG_TRAINED_CARD,
        metrics=SEG_METRICS,
    log:
        log_path("segmentation_train", "{net}", "{substrate}"),
    benchmark:
        bench_path("segmentation_train", "{net}", "{substrate}")
    conda:
        CONDA_ENV
    # One thread: a step is many small kernels that a second thread hardly speeds up; two
    # trainings side by side use two cores fully (and the result is the same for any --cores).
    threads: 1
    resources:
        mem_mb=4000,
        runtime=SEG["runtime_min"],
        gpu=TRAINING_GPUS,
    params:
        arch=seg_arch,
        training=seg_training,
        target_width_A=SEG["target_width_A"],
        crop_px=SEG["crop_px"],
        class_weights=SEG["class_weights"],
        training_val_images=SEG["training_val_images"],
        device=DEVICE,
        master_seed=MASTER_SEED,
        seed_key=job_seed("segmentation_train"),
        work_dir=model_work_dir("{net}_{substrate}"),
    script:
        "../scripts/segmentation_train.py"


# The peak threshold that gives the best mean F1 on the training images held out of
# training, written into the final model's card (peak_threshold: auto uses it).
rule segmentation_calibrate:
    input:
        model=SEG_TRAINED,
        train=seg_train_shards,
    output:
        model=SEG_MODEL,
        card=SEG_CARD,
    log:
        log_path("segmentation_calibrate", "{net}", "{substrate}"),
    benchmark:
        bench_path("segmentation_calibrate", "{net}", "{substrate}")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,  # reads the training shards, as segmentation_train
        runtime=30,
    params:
        **seg_detection(peak_threshold=False),
        training_val_images=SEG["training_val_images"],
        device=DEVICE,
    script:
        "../scripts/segmentation_calibrate.py"


rule segmentation_evaluate:
    input:
        model=SEG_MODEL,
        val=seg_val_shards,
    output:
        csv=SEG_EVAL,
    log:
        log_path("segmentation_evaluate", "{net}", "{substrate}"),
    benchmark:
        bench_path("segmentation_evaluate", "{net}", "{substrate}")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        **seg_detection(),
        device=DEVICE,
        image_parameters=SEG_IMAGE_PARAMETERS,
    script:
        "../scripts/segmentation_evaluate.py"


# The same evaluation on each substrate's robustness set, for f1_by_parameter.
use rule segmentation_evaluate as segmentation_evaluate_robustness with:
    input:
        model=SEG_MODEL,
        val=seg_robustness_shards,
    output:
        csv=SEG_ROBUSTNESS_EVAL,
    log:
        log_path("segmentation_evaluate_robustness", "{net}", "{substrate}"),
    benchmark:
        bench_path("segmentation_evaluate_robustness", "{net}", "{substrate}")


rule segmentation_figures:
    input:
        evals=SEG_EVALS,
        robustness=SEG_ROBUSTNESS_EVALS,
        models=expand(
            SEG_MODEL, net=SEG["networks"], substrate=SEG["figure"]["substrate"]
        ),
        val=seg_shards(SEG["figure"]["substrate"], "val"),
    output:
        histograms=report(
            results("figures", "f1_histograms.png"),
            caption="../report/f1_histograms.rst",
            category="Segmentation",
            labels={"figure": "per-image F1 (Fig. 2)"},
        ),
        by_parameter=report(
            results("figures", "f1_by_parameter.png"),
            caption="../report/f1_by_parameter.rst",
            category="Segmentation",
            labels={"figure": "per-image F1 against microscope parameters"},
        ),
        correlations=report(
            results("eval", "f1_by_parameter.csv"),
            caption="../report/f1_by_parameter_table.rst",
            category="Segmentation",
            labels={"figure": "F1 rank correlations"},
        ),
        detections=report(
            results("figures", "detections.png"),
            caption="../report/detections.rst",
            category="Segmentation",
            labels={"figure": "detected columns (Fig. 1)"},
        ),
        summary=report(
            results("eval", "f1_summary.csv"),
            caption="../report/f1_summary.rst",
            category="Segmentation",
            labels={"figure": "F1 table"},
        ),
    log:
        log_path("segmentation_figures"),
    benchmark:
        bench_path("segmentation_figures")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        **seg_detection(),
        networks=SEG["networks"],
        substrates=SEG["substrates"],
        robustness_substrates=SEG_ROBUSTNESS_SUBSTRATES,
        figure_substrate=SEG["figure"]["substrate"],
        figure_image=SEG["figure"]["image"],
        dpi=PLOTS["dpi"],
    script:
        "../scripts/segmentation_figures.py"
