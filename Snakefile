# temflow: physics -> training data -> networks for TEM. Stages live in workflow/rules/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# Light jobs (aggregation, figures) run on the submitting host, not as cluster jobs.
localrules:
    md_vibrations,
    md_figure,
    hrtem_figure,
    segmentation_figures,
    monet_report,
    report_summary,


include: "workflow/rules/common.smk"
include: "workflow/rules/md.smk"
include: "workflow/rules/hrtem.smk"
include: "workflow/rules/segmentation.smk"
include: "workflow/rules/trajectories.smk"
include: "workflow/rules/monet.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        MD_TARGETS,
        HRTEM_TARGETS,
        SEG_TARGETS,
        TRAJ_TARGETS,
        MONET_TARGETS,
        REPORT_TARGETS,
