# rae_bench workflow: train every (dataset, model, seed), fit samplers, evaluate,
# and build the paper's tables from cached runs.
#   snakemake --cores 2 tables/table3.tex
#   snakemake --cores 8 --configfile config/paper.yaml tables/table3.tex
import sys

from snakemake.utils import min_version

from rae_bench.config.files import deep_merge, read_config_files
from rae_bench.config.validate import validate_config
from rae_bench.errors import ConfigError

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config/config.yaml")


# Snakemake deep-merges every --configfile over config.yaml; a profile (a file with `profile:`, such as
# config/paper.yaml) must instead own its run sections whole. Rebuild `config` from the same files with
# rae_bench's rule (rae_bench.config.files.merge_config_file), then --config key=value on top, so that jobs
# see exactly what rae_bench.config.validate.load_config gives.
try:
    _merged = read_config_files(
        [os.path.join(workflow.basedir, "config/config.yaml"), *workflow.config_settings.configfiles]
    )
except ConfigError as exc:
    sys.exit(f"error: {exc}")
config.clear()
config.update(deep_merge(_merged, dict(workflow.config_settings.config)))


report: "workflow/report/workflow.rst"


# The schema (rae_bench/config/config.schema.yaml, shipped with the package), then the names: sweeps become runs, and every model,
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
        "tables/claims.csv",
        "tables/claims.tex",
