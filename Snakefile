# convexadv: reproducible pipeline for section VII of "Practical Convex Formulations of
# One-hidden-layer Neural Network Adversarial Training" (Bai, Gautam, Gai, Sojoudi).
#
#   snakemake --cores 2                      # the whole paper (results/), see README.md
#   snakemake --cores 2 --configfile tests/config/test_config.yaml   # the small CI run
#   snakemake --report results/report.html   # HTML report with every table and figure
#   snakemake --cores 2 solver_benchmark      # solver benchmark (results/benchmark/), not part of `all`
#   snakemake --cores 2 solver_benchmark_patterns   # solve time vs surviving patterns, not part of `all`
#
# data -> patterns (Alg. 1/2) -> solve_convex -> recover (7) -> evaluate -> report
#                                 baselines (GD-STD/FGSM/PGD) -^

import os


# config.yaml beside this Snakefile; --configfile FILE (e.g. tests/config/test_config.yaml) overrides its keys
configfile: os.path.join(workflow.basedir, "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/patterns.smk"
include: "workflow/rules/solve.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/benchmark.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
