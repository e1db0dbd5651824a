# Helpers shared by the rules: config lookups and the settings every command gets.
import json
import os

from rae_bench.config.resolve import (
    classifier_spec,
    extractor_for,
    host_settings,
    n_samples_for,
    resolve_run,
    resolve_sampler,
)
from rae_bench.deploy import workflow_env_file
from rae_bench.report.claims import load_claims
from rae_bench.report.specs import claims_metrics, claims_spec, figure_spec, required_metrics, table_spec

# (the Snakefile has validated the config and expanded its sweeps: each (model, m) is a run {model}_m{m})

RESULTS = "results"
# The papers' claims (config/claims.yaml) and the table/sweep specs they read: rule claims
try:
    _claims = load_claims(os.path.join(workflow.basedir, "config", "claims.yaml"))
except ConfigError as exc:
    sys.exit(f"error: {exc}")
CLAIMS_SPEC = {"claims": _claims, **claims_spec(config, _claims)}


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    model=r"[A-Za-z0-9_\-]+",
    sampler=r"[A-Za-z0-9_\-]+",
    seed=r"[0-9]+",
    n=r"[0-9]+",
    extractor="inception|classifier|raw",


# Where data lives, which device runs, how often to checkpoint, whether to write TensorBoard events, and the
# extractor's weights file, batch size and fp32 engine (same features to 1e-4): where and how fast a job runs,
# not what it makes. Every job gets them on its command line as `--settings {resources.host:q}`, a string
# resource: Snakemake's rerun triggers (params, code, input, ...) never look at resources, so moving the
# data, switching CPU/GPU or changing the checkpoint interval reruns nothing. Everything that defines a
# job's outputs is a param of its command line instead (run config, specs, extractor, precision, k, ...).
HOST_SETTINGS = host_settings(config)
# The conda environment of all jobs (with --software-deployment-method conda): the repository's
# environment.yml with this checkout's absolute path in place of its "-e ." (Snakemake copies an env file
# into .snakemake/conda/, where "." is no longer this repository); see rae_bench/deploy.py.
ENV = workflow_env_file(workflow.basedir, ".snakemake/rae_bench")


def per_sample_args(cfg):
    """evaluate's k-NN k, FID-infinity points and FID bootstrap replicates: params, so that changing them
    reruns the evaluations."""
    feats = cfg.get("features", {})
    points = f" --fid-infinity-points {feats.get('fid_infinity_points', 15)}" if feats.get("fid_infinity") else ""
    boot = f" --fid-bootstrap {feats['bootstrap']}" if feats.get("bootstrap") else ""
    return f"--knn-k {feats.get('knn_k', 5)}{points}{boot}"


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


def feature_precision(extractor):
    """Inception's precision (fp32, or the explicit bf16 option) changes the numbers, so it is a param (and
    --precision) of the jobs that extract Inception features: switching it reruns their reference statistics
    and evaluations, and no other job (the others always get fp32)."""
    return config.get("features", {}).get("precision", "fp32") if extractor == "inception" else "fp32"
