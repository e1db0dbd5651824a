"""``rae-bench``: the commands the Snakemake rules call, usable by hand.

    rae-bench train --dataset mnist --model rae_l2 --out results/mnist/rae_l2/seed0 [--tensorboard]
    rae-bench curves --log results/mnist/rae_l2/seed0/train_log.csv --out results/mnist/rae_l2/seed0/losses.png
    rae-bench curves --results results     # losses.png of every run folder that lacks one
    rae-bench train-classifier --dataset mnist --out results/mnist/features/classifier/classifier.pt
    rae-bench reference-stats --dataset mnist --extractor classifier --n 2000 --out ...npz
    rae-bench fit-sampler --model-path .../model.pt --sampler gmm --out .../gmm/sampler.pt
    rae-bench evaluate --model-path ... --sampler-path ... --reference ... --out-dir ...
    rae-bench table --name table3 --csv tables/table3.csv --tex tables/table3.tex
    rae-bench claims --csv tables/claims.csv --tex tables/claims.tex     # config/claims.yaml tested
    rae-bench score samples/ reference.npz --metrics fid,kid,prd --json score.json
    rae-bench sample --model-path .../model.pt --sampler-path .../sampler.pt --n 1000 --out samples.npz
    rae-bench models
    rae-bench plan --configfile config/paper.yaml [table3 ...]

Settings come from ``--config`` files (default ``config/config.yaml``). The
workflow instead puts on each job's command line, as Snakemake params, what
defines its outputs (``--run-config``, ``--spec``, ``--extractor``,
``--precision``, ...), so that a job reruns exactly when they change, and as
``--settings`` JSON what only says where and how fast it runs (data root,
device, checkpoint interval, extractor batch size). Every JSON argument is
checked once, before any work (``cli_checks.check_json_args``).
A :class:`RaeBenchError`, or a write the file system refuses (full disk,
read-only folder), prints one line and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .cli_checks import OneLineParser, check_args, check_json_args, checked_json
from .errors import WRITE_ERRNOS, ConfigError, RaeBenchError, output_error
from .native import keep_freed_memory, limit_native_threads

# Each command imports the library modules it runs in its own body: `rae-bench --help` takes 0.23 s so, and
# 4 to 7 s with them imported up here (torch, pandas, scipy; /usr/bin/time on a 2-core machine).


def _count(text: str) -> int:
    """An argparse type for a count: an integer, also written as 1e6 or 1_000_000."""
    try:
        value = float(text.replace("_", "")) if any(c in text.lower() for c in ".e") else int(text)
        if value == int(value):
            return int(value)
    except (ValueError, OverflowError):  # OverflowError: 1e400 is inf
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (write e.g. 1000 or 1e6)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="append", default=None, metavar="FILE",
                   help="workflow config file(s), merged in order (default: config/config.yaml)")
    p.add_argument("--settings", help="JSON with the config's data, device and checkpoint settings and the extractor's "
                                      "weights/batch_size/backend (what the workflow passes; instead of --config)")
    p.add_argument("--data-root", help="data root (else RAE_BENCH_DATA, else data_root in config)")
    p.add_argument("--cache-dir", help="writable folder for extracted/preprocessed data (else cache_dir in config)")
    p.add_argument("--download", action="store_true", default=None, help="allow downloads when online")
    p.add_argument("--no-verify", action="store_true", help="skip checksum verification of data files")
    p.add_argument("--device", default=None, help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _config(args: argparse.Namespace, required: bool = False) -> dict[str, Any]:
    """Settings: ``--settings`` JSON (what the workflow passes; checked up front), else ``--config`` files,
    else config/config.yaml."""
    from .config.files import DEFAULT_CONFIG

    if getattr(args, "settings", None) is not None:
        return args.settings
    files = args.config or ([DEFAULT_CONFIG] if (required or DEFAULT_CONFIG.exists()) else [])
    if not files:
        return {}
    from .config.validate import load_config  # only here: it builds models, which the settings branch never needs

    return load_config(files)


def _source(args: argparse.Namespace, cfg: dict[str, Any]):
    from .data import DataSource

    return DataSource.from_config(
        data_root=args.data_root or cfg.get("data_root", "data"),
        cache=args.cache_dir or cfg.get("cache_dir", "results/cache"),
        download=bool(args.download if args.download is not None else cfg.get("download", False)),
        verify=not args.no_verify and bool(cfg.get("verify_checksums", True)),
    )


def _device(args: argparse.Namespace, cfg: dict[str, Any]) -> str:
    """The torch device to use: ``auto`` resolves to CUDA when present, else CPU."""
    from .runs import pick_device

    return str(pick_device(str(args.device or cfg.get("device", "auto"))))


def _setup(args: argparse.Namespace, cfg: dict[str, Any]) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def cmd_train(args: argparse.Namespace) -> None:
    from .config.resolve import resolve_run
    from .train import train

    cfg = _config(args, required=args.run_config is None)
    if args.run_config is not None:
        run = args.run_config  # checked up front (check_json_args)
    else:
        if not args.dataset or not args.model:
            raise ConfigError("train needs --dataset and --model (or --run-config JSON)")
        run = checked_json(resolve_run(cfg, args.dataset, args.model, args.seed), "run-config",
                           f"run {args.model} on {args.dataset}")
    every = args.checkpoint_every or int(cfg.get("checkpoint_every", 500))
    tensorboard = bool(cfg.get("tensorboard", False)) if args.tensorboard is None else args.tensorboard
    result = train(run, args.out, _source(args, cfg), device=_device(args, cfg), threads=args.threads,
                   progress=not args.quiet, checkpoint_every=every, tensorboard=tensorboard)
    from .report.curves import plot_losses

    out = Path(args.out)  # the loss curves of the Snakemake report, beside the log
    plot_losses(out / "train_log.csv", out / "losses.png", f"{run['dataset']} / {run['run']} / seed {run['seed']}")
    print(json.dumps(result))


def cmd_curves(args: argparse.Namespace) -> None:
    from .report.curves import missing_curves, plot_losses

    if args.results:  # run folders trained before the train job drew losses.png (the report needs it)
        for log, out, title in missing_curves(args.results):
            print(plot_losses(log, out, title))
    elif args.log and args.out:
        print(plot_losses(args.log, args.out, args.title))
    else:
        raise ConfigError("curves needs --log and --out, or --results")


def cmd_train_classifier(args: argparse.Namespace) -> None:
    from .config.resolve import classifier_spec
    from .metrics import train_dataset_classifier
    from .runs import pick_device

    cfg = _config(args)
    _setup(args, cfg)
    spec = args.spec if args.spec is not None else classifier_spec(cfg, args.dataset)
    quality = train_dataset_classifier(spec, _source(args, cfg), args.out, pick_device(_device(args, cfg)))
    print(json.dumps(quality))


def _precision(args: argparse.Namespace, cfg: dict[str, Any]) -> str:
    """Inception's precision: --precision (what the workflow passes, a param: it changes the numbers), else
    ``features.precision`` of --config, else fp32."""
    return str(args.precision or cfg.get("features", {}).get("precision", "fp32"))


def _extractor(name: str, args: argparse.Namespace, cfg: dict[str, Any]):
    from .metrics.features import configured_extractor

    return configured_extractor(name, cfg.get("features", {}), classifier_path=args.classifier,
                                download=bool(cfg.get("download", False)), device=_device(args, cfg),
                                precision=_precision(args, cfg))


def cmd_reference_stats(args: argparse.Namespace) -> None:
    from .config.resolve import dataset_entry
    from .evaluate import test_subset
    from .metrics import extract_features, reference_stats

    cfg = _config(args)
    _setup(args, cfg)
    ds = args.dataset_spec if args.dataset_spec is not None else {"dataset": args.dataset, **dataset_entry(cfg, args.dataset)}
    extractor = _extractor(args.extractor, args, cfg)
    test = test_subset(ds, _source(args, cfg), args.n)
    reference_stats(Path(args.out), lambda: extract_features(extractor, test))


def _sampler_params(given: dict[str, Any] | None, cfg: dict[str, Any], sampler: str,
                    model_path: str | None = None) -> dict[str, Any]:
    """Sampler parameters: the JSON object given on the command line, else the config's ``samplers.<name>``
    on the dataset of the run beside ``model_path`` (its config.json), with that run's own overrides."""
    if given is not None:
        return given
    from .config.resolve import sampler_beside_model

    return sampler_beside_model(cfg, sampler, model_path)


def cmd_fit_sampler(args: argparse.Namespace) -> None:
    from .evaluate import fit_sampler

    cfg = _config(args)
    _setup(args, cfg)
    params = _sampler_params(args.params, cfg, args.sampler, args.model_path)
    fit_sampler(args.model_path, args.sampler, params, args.out, _source(args, cfg), _device(args, cfg), args.seed)


def _per_sample_settings(args: argparse.Namespace, cfg: dict[str, Any]) -> dict[str, Any]:
    """k of the k-NN metrics and FID-infinity's points: --knn-k / --fid-infinity-points (what the workflow
    passes), else ``features.knn_k`` and ``features.fid_infinity`` (+ ``fid_infinity_points``) of --config."""
    from .metrics import FID_INFINITY_POINTS, KNN_K

    feats = cfg.get("features", {})
    points = getattr(args, "fid_infinity_points", None)
    if points is None and feats.get("fid_infinity"):
        points = int(feats.get("fid_infinity_points", FID_INFINITY_POINTS))
    replicates = getattr(args, "fid_bootstrap", None)
    replicates = int(feats.get("bootstrap", 0)) if replicates is None else replicates
    return {"knn_k": int(args.knn_k or feats.get("knn_k", KNN_K)), "fid_infinity_points": points,
            "fid_bootstrap_replicates": replicates}


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate
    from .metrics import FeatureSpace

    if args.snapshots and not args.sampler:  # before any work (the extractor can take seconds to build)
        raise ConfigError("--snapshots fits a sampler per snapshot: give --sampler NAME (and --sampler-params)")
    if not args.snapshots and not args.sampler_path:
        raise ConfigError("give --sampler-path (the fitted sampler state, or where --sampler writes it)")
    cfg = _config(args)
    _setup(args, cfg)
    extractor = _extractor(args.extractor, args, cfg)
    fit = None
    if args.sampler:  # fit it here first (the workflow's way), else load --sampler-path
        fit = (args.sampler, _sampler_params(args.sampler_params, cfg, args.sampler, args.model_path), args.seed)
    settings = dict(features=FeatureSpace.of(extractor), reference=args.reference, n_samples=args.n_samples,
                    source=_source(args, cfg), device=_device(args, cfg), **_per_sample_settings(args, cfg))
    if args.snapshots:  # the authors' best-checkpoint selection over the run's snapshots
        from .selection import evaluate_snapshots
        metrics = evaluate_snapshots(args.model_path, args.out_dir, fit=fit, **settings)
    else:
        metrics = evaluate(args.model_path, args.sampler_path, args.out_dir, fit=fit, **settings)
    print(json.dumps({k: metrics[k] for k in ("fid_rec", "fid_gen", "mse_rec")}))


def _score_extractor(args: argparse.Namespace, cfg: dict[str, Any]):
    """The extractor ``score`` asked for; a classifier from --classifier or the --dataset's workflow output."""
    from .metrics.features import configured_extractor

    classifier = args.classifier or (args.dataset and Path(args.results) / args.dataset / "features" / "classifier" / "classifier.pt")
    if args.extractor == "classifier" and not classifier:
        raise ConfigError("--extractor classifier needs --classifier PATH or --dataset NAME "
                          "(then results/NAME/features/classifier/classifier.pt)")
    return configured_extractor(args.extractor, cfg.get("features", {}), classifier_path=classifier,
                                inception_weights=args.inception_weights, batch_size=args.batch_size,
                                download=bool(cfg.get("download", False)), device=_device(args, cfg),
                                precision=_precision(args, cfg))


def cmd_score(args: argparse.Namespace) -> None:
    from .atomic import write_json
    from .score import open_inputs, parse_metrics, result_lines, score

    cfg = _config(args)
    _setup(args, cfg)
    metrics = parse_metrics(args.metrics)
    a, b = open_inputs(args.a, args.b, args.n, _device(args, cfg))
    result = score(a, b, metrics, lambda: _score_extractor(args, cfg), seed=args.seed,
                   knn_k=_per_sample_settings(args, cfg)["knn_k"])
    print("\n".join(result_lines(result)))
    if args.json:
        write_json(args.json, result)


def cmd_sample(args: argparse.Namespace) -> None:
    from .score import export_samples

    cfg = _config(args)
    _setup(args, cfg)
    source = _source(args, cfg) if args.reconstructions else None
    written = export_samples(args.model_path, args.sampler_path, args.n, args.out, _device(args, cfg), source,
                             progress=not args.quiet)
    print("wrote " + ", ".join(map(str, written)))


def cmd_table(args: argparse.Namespace) -> None:
    from .report.agreement import summary
    from .report.outputs import write_table_files
    from .report.specs import table_spec

    spec = args.spec if args.spec is not None else table_spec(_config(args, required=True), args.name)
    agreement_path = args.agreement or args.csv.removesuffix(".csv") + ".agreement.csv"
    df, agree = write_table_files(args.name, spec, args.results, args.csv, args.tex, agreement_path, args.html)
    print(f"wrote {args.csv}, {args.tex} and {agreement_path} ({df['ours'].notna().sum()} of {len(df)} cells filled)")
    print(summary(agree))


def cmd_claims(args: argparse.Namespace) -> None:
    from .report.claims import load_claims, summary, write_claims
    from .report.specs import claims_spec

    spec = args.spec  # checked up front, with the claims inside it (check_json_args)
    # the workflow passes the claims inside --spec (editing the file reruns the rule); by hand: --claims
    claims = spec["claims"] if spec is not None and "claims" in spec else load_claims(args.claims)
    spec = spec if spec is not None else claims_spec(_config(args, required=True), claims)
    frame = write_claims(claims, spec, args.results, args.csv, args.tex, args.html)
    print(f"wrote {args.csv} and {args.tex}" + (f" and {args.html}" if args.html else ""))
    print(summary(frame))


def cmd_plan(args: argparse.Namespace) -> None:
    from .config.files import DEFAULT_CONFIG
    from .config.validate import load_config
    from .plan import format_plan, load_step_costs, plan

    cfg = load_config([DEFAULT_CONFIG, *(args.configfile or [])])
    costs = load_step_costs()
    print(format_plan(plan(cfg, args.targets or None, costs), costs))


def cmd_models(args: argparse.Namespace) -> None:
    from .models import MODELS, PLUGINS

    for name in sorted(MODELS):
        print(f"{name}\t{'plugin ' + PLUGINS[name] if name in PLUGINS else 'built-in'}")


def cmd_figure(args: argparse.Namespace) -> None:
    from .report.outputs import draw_figure
    from .report.specs import figure_spec

    spec = args.spec if args.spec is not None else figure_spec(_config(args, required=True), args.name)
    draw_figure(spec, args.results, args.out)
    print(f"wrote {args.out}.pdf, .png, .csv and .tex")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rae-bench", description=__doc__.split("\n")[0])  # usage errors: one line too
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one (dataset, model, seed) run; resumes from its checkpoint")
    _add_common(p)
    p.add_argument("--dataset")
    p.add_argument("--model", help="a name under models: in the config")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-config", help="resolved run config as JSON (what the workflow passes)")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None,
                   help="TensorBoard events in OUT/tb/ (default: tensorboard in the config, else off)")
    p.add_argument("--out", required=True, help="run folder, e.g. results/mnist/rae_l2/seed0")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("curves", help="draw a run's loss curves from its train_log.csv as a PNG")
    p.add_argument("--log", help="a run's train_log.csv")
    p.add_argument("--title", help="figure title (default: none)")
    p.add_argument("--out", help="PNG path, e.g. results/mnist/rae_l2/seed0/losses.png")
    p.add_argument("--results", help="instead: draw losses.png in every run folder under this folder that lacks it")
    p.set_defaults(func=cmd_curves)

    p = sub.add_parser("train-classifier", help="train the feature classifier of a dataset")
    _add_common(p)
    p.add_argument("--dataset")
    p.add_argument("--spec", help="JSON {source, options, epochs, batch_size, lr, seed}")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_train_classifier)

    p = sub.add_parser("reference-stats", help="Gaussian statistics of the first N test items' features")
    _add_common(p)
    p.add_argument("--dataset")
    p.add_argument("--dataset-spec", help="JSON {dataset, source, options}")
    p.add_argument("--extractor", required=True)
    p.add_argument("--classifier", help="classifier.pt for the classifier extractor")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--precision", choices=("fp32", "bf16"),  # metrics.inception.PRECISIONS
                   help="Inception's precision (default: features.precision of the config, else fp32)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_reference_stats)

    p = sub.add_parser("fit-sampler", help="fit an ex-post sampler on a trained model's training codes")
    _add_common(p)
    p.add_argument("--model-path", required=True)
    p.add_argument("--sampler", required=True)
    p.add_argument("--params", help="sampler parameters as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_fit_sampler)

    p = sub.add_parser("evaluate", help="Rec./Gen. FID of a (model, sampler) pair -> metrics.json")
    _add_common(p)
    p.add_argument("--model-path", required=True)
    p.add_argument("--sampler-path",
                   help="fitted sampler state; with --sampler, where the state fitted here is written "
                        "(not with --snapshots: each snapshot's goes into --out-dir/stepN/)")
    p.add_argument("--snapshots", action="store_true",
                   help="evaluate the run's snapshots (training.snapshots) and write the best-checkpoint metrics "
                        "(minimum Rec. and Gen. FID, chosen separately) to --out-dir")
    p.add_argument("--sampler", help="fit this sampler on the model first (its params: --sampler-params)")
    p.add_argument("--sampler-params", help="sampler parameters as JSON (with --sampler)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler fit (with --sampler)")
    p.add_argument("--extractor", required=True)
    p.add_argument("--classifier")
    p.add_argument("--precision", choices=("fp32", "bf16"),  # metrics.inception.PRECISIONS
                   help="Inception's precision (default: features.precision of the config, else fp32)")
    p.add_argument("--reference", required=True)
    p.add_argument("--n-samples", type=int, required=True)
    p.add_argument("--knn-k", type=int, help="k of k-NN precision/recall, density/coverage (default: features.knn_k, else 5)")
    p.add_argument("--fid-infinity-points", type=int,
                   help="also FID-infinity (fid_gen_inf) from this many sample sizes N/10..N (default: features.fid_infinity)")
    p.add_argument("--fid-bootstrap", type=int, metavar="B",
                   help="also B bootstrap replicates of Rec./Gen. FID over the test items and samples "
                        "(fid_rec_boot, fid_gen_boot; default: features.bootstrap, else 0 = none)")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("score", help="FID (KID, PRD) of image folders, image/statistics .npz files or sampler folders")
    _add_common(p)
    p.add_argument("a", metavar="A", help="evaluated set: image folder, .npz (images or mu/sigma), or sampler folder")
    p.add_argument("b", metavar="B", help="reference set, the same kinds")
    p.add_argument("--metrics", default="fid",
                   help="comma-separated: fid, kid, prd (Sajjadi et al.'s precision/recall), knn (k-NN precision/"
                        "recall, density, coverage), fid_inf (FID-infinity) (default: fid)")
    p.add_argument("--knn-k", type=int, default=None, help="k of the knn metrics (default: 5)")
    p.add_argument("--extractor", choices=("inception", "classifier"), default="inception")
    p.add_argument("--classifier", help="classifier.pt for --extractor classifier")
    p.add_argument("--dataset", help="use results/DATASET/features/classifier/classifier.pt (with --results)")
    p.add_argument("--results", default="results", help="results folder for --dataset (default: results)")
    p.add_argument("--inception-weights", help="FID Inception weights file (else config, $RAE_BENCH_INCEPTION_WEIGHTS, hub cache)")
    p.add_argument("--batch-size", type=int, help="extractor batch size (default: features.batch_size of the config)")
    p.add_argument("--precision", choices=("fp32", "bf16"),  # metrics.inception.PRECISIONS
                   help="Inception's precision (default: features.precision of the config, else fp32)")
    p.add_argument("--n", type=int, help="at most N images per side; the number a sampler folder draws "
                                         "(default: as many as the other side holds)")
    p.add_argument("--seed", type=int, default=0, help="seed of KID's subsets and PRD's clusterings")
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("sample", help="export a (model, sampler) pair's samples as PNG files or one .npz")
    _add_common(p)
    p.add_argument("--model-path", required=True)
    p.add_argument("--sampler-path", required=True)
    p.add_argument("--n", type=_count, required=True,
                   help="how many samples (1000, 1e6); refused when the output cannot fit the free disk, "
                        "streamed in chunks with a progress bar when it is larger than memory should hold")
    p.add_argument("--out", required=True, help="a folder (PNG files) or a file ending in .npz (N x H x W x C uint8)")
    p.add_argument("--reconstructions", action="store_true",
                   help="also the first N test items and their reconstructions, as OUT_test and OUT_reconstructions")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("plan", help="the runs, training steps and estimated GPU-hours of tables/figures (default all)")
    p.add_argument("--configfile", action="append", metavar="FILE",
                   help="a config file over config/config.yaml, as for snakemake --configfile (repeat for more)")
    p.add_argument("targets", nargs="*", help="table or figure names (table3, figure2); default: all")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("models", help="list the model names a config can use (built-ins and installed plugins)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("figure", help="draw a sweep figure (PDF, PNG, CSV of the plotted numbers, LaTeX snippet)")
    p.add_argument("--config", action="append", default=None, metavar="FILE")
    p.add_argument("--name", required=True)
    p.add_argument("--spec", help="figure spec as JSON (what the workflow passes)")
    p.add_argument("--results", default="results")
    p.add_argument("--out", required=True, help="output path without extension, e.g. figures/figure2")
    p.set_defaults(func=cmd_figure)

    p = sub.add_parser("table", help="write a table as CSV and LaTeX from metrics.json files")
    p.add_argument("--config", action="append", default=None, metavar="FILE")
    p.add_argument("--name", required=True)
    p.add_argument("--spec", help="table spec as JSON (what the workflow passes)")
    p.add_argument("--results", default="results")
    p.add_argument("--csv", required=True)
    p.add_argument("--tex", required=True)
    p.add_argument("--agreement", metavar="PATH",
                   help="agreement with the paper per column as CSV (default: the --csv path, .agreement.csv)")
    p.add_argument("--html", metavar="PATH", help="also the table as an HTML page (ours and the paper's values)")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("claims", help="test the papers' claims (config/claims.yaml) on metrics.json files: CSV, LaTeX")
    p.add_argument("--config", action="append", default=None, metavar="FILE")
    p.add_argument("--claims", default=str(Path(__file__).resolve().parents[1] / "config" / "claims.yaml"),
                   help="the claims file (default: this checkout's config/claims.yaml)")
    p.add_argument("--spec", help="the claims' table and sweep specs as JSON (what the workflow passes)")
    p.add_argument("--results", default="results")
    p.add_argument("--csv", required=True)
    p.add_argument("--tex", required=True)
    p.add_argument("--html", metavar="PATH", help="also the claims as an HTML page (the Snakemake report's view)")
    p.set_defaults(func=cmd_claims)
    return parser


def _stdout_closed() -> int:
    """A reader that went away (``rae-bench models | head -1``): end quietly. Python's documented pattern:
    point stdout at devnull so that the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor behind sys.stdout (captured in tests)
        pass
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # a broken pipe shows here, inside the handler, not at interpreter exit
        return code
    except BrokenPipeError:
        return _stdout_closed()


def _main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error: one line already printed (OneLineParser), 2
        return exc.code if isinstance(exc.code, int) else 2
    if isinstance(getattr(args, "threads", None), int) and "numpy" not in sys.modules:
        limit_native_threads(args.threads)
    keep_freed_memory()
    try:
        check_args(args)  # counts, ranges, names, existing inputs: before any work
        check_json_args(args)  # then every JSON argument, parsed and checked once, in place
        args.func(args)
    except RaeBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # a write outside the atomic helpers (the training log, a folder): the same one line
        if exc.errno not in WRITE_ERRNOS:
            raise
        print(f"error: {output_error(exc.filename or '(unknown file)', exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
