# rae_bench workflow: train every (dataset, model, seed), fit samplers, evaluate,
# and build the paper's tables from cached runs.
#   snakemake --cores 2 tables/table3.tex
#   snakemake --cores 8 --configfile config/paper.yaml tables/table3.tex
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config/config.yaml")


report: "workflow/report/workflow.rst"


validate(config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml"))


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand("tables/{table}.{ext}", table=list(config.get("tables", {})), ext=["csv", "tex"]),
        expand("figures/{figure}.{ext}", figure=list(config.get("figures", {})), ext=["pdf", "png", "csv", "tex"]),
