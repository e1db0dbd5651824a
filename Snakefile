# rae_bench workflow: train every (dataset, model, seed), fit samplers, evaluate,
# and build the paper's tables from cached runs.
#   snakemake --cores 2 tables/table3.tex
#   snakemake --cores 8 --configfile config/paper.yaml tables/table3.tex
import sys

from snakemake.utils import min_version

from rae_bench.config import validate_config
from rae_bench.errors import ConfigError

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config/config.yaml")


report: "workflow/report/workflow.rst"


# The schema (workflow/schemas/config.schema.yaml), then the names: sweeps become runs, and every model,
# sampler and dataset a table or figure names must exist. A bad config stops here with one line.
try:
    validate_config(config)
except ConfigError as exc:
    sys.exit(f"error: {exc}")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand("tables/{table}.{ext}", table=list(config.get("tables", {})), ext=["csv", "tex"]),
        expand("figures/{figure}.{ext}", figure=list(config.get("figures", {})), ext=["pdf", "png", "csv", "tex"]),
