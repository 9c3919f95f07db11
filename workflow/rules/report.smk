# Report: one table of headline numbers; `snakemake --report` collects every figure.


rule report_summary:
    input:
        unpack(report_summary_inputs),
    output:
        csv=report(
            results("summary.csv"),
            caption="../report/summary.rst",
            category="Summary",
            labels={"figure": "headline numbers"},
        ),
    log:
        log_path("report_summary"),
    benchmark:
        bench_path("report_summary")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/report_summary.py"
