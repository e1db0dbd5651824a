# Helpers shared by the rules: config lookups and the settings every command gets.
import json
import shlex

from rae_bench.report.specs import figure_spec, required_metrics, table_spec
from rae_bench.config import check_references, expand_sweeps, extractor_for, n_samples_for, resolve_run

expand_sweeps(config)  # each (model, m) of a latent sweep becomes a run named {model}_m{m}
check_references(config)

RESULTS = "results"
RUN = RESULTS + "/{dataset}/{model}/seed{seed}"


wildcard_constraints:
    dataset="[A-Za-z0-9_\-]+",
    model="[A-Za-z0-9_\-]+",
    sampler="[A-Za-z0-9_\-]+",
    seed="[0-9]+",
    n="[0-9]+",
    extractor="inception|classifier|raw",


# Where data lives and which device runs: passed on the command line, not as params, so moving the
# data or switching CPU/GPU does not invalidate results.
_SETTINGS = {
    "data_root": config.get("data_root", "data"),
    "cache_dir": config.get("cache_dir", "results/cache"),
    "download": config.get("download", False),
    "verify_checksums": config.get("verify_checksums", True),
    "device": config.get("device", "auto"),
    "features": {k: v for k, v in config.get("features", {}).items() if k in ("inception_weights", "batch_size")},
}
# quoted for the shell, braces doubled for Snakemake's formatter
SETTINGS = shlex.quote(json.dumps(_SETTINGS)).replace("{", "{{").replace("}", "}}")


def res(rule_name, key, default):
    return config.get("resources", {}).get(rule_name, {}).get(key, default)


def run_config(w):
    return json.dumps(resolve_run(config, w.dataset, w.model, int(w.seed)), sort_keys=True)


def dataset_spec(w):
    ds = config["datasets"][w.dataset]
    return json.dumps({"dataset": w.dataset, "source": ds["source"], "options": ds.get("options", {})}, sort_keys=True)


def classifier_path(dataset):
    return f"{RESULTS}/{dataset}/features/classifier/classifier.pt"


def reference_path(dataset):
    return f"{RESULTS}/{dataset}/features/{extractor_for(config, dataset)}/reference_test_n{n_samples_for(config, dataset)}.npz"


def extractor_inputs(dataset, extractor):
    return [classifier_path(dataset)] if extractor == "classifier" else []


def table_metrics(w):
    return required_metrics(table_spec(config, w.table), RESULTS)


def figure_metrics(w):
    return required_metrics(figure_spec(config, w.figure), RESULTS)
