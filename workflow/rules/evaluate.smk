# Ex-post samplers and metrics of each (model, sampler) pair: one job fits the sampler on the model's
# training codes and evaluates the pair (one start-up and one model load per pair; `rae-bench fit-sampler`
# does the fit alone by hand).


rule evaluate:
    input:
        model="results/{dataset}/{model}/seed{seed}/model.pt",
        reference=lambda w: reference_path(w.dataset),
        extractor=lambda w: extractor_inputs(w.dataset, extractor_for(config, w.dataset)),
    output:
        sampler="results/{dataset}/{model}/seed{seed}/{sampler}/sampler.pt",
        metrics="results/{dataset}/{model}/seed{seed}/{sampler}/metrics.json",
        samples=report(
            "results/{dataset}/{model}/seed{seed}/{sampler}/samples.png",
            caption="../report/samples.rst",
            category="Samples",
            subcategory="{dataset}",
            # one label for the pair: Snakemake's report makes a label with two values, each on half the
            # results, a toggle, and its page fails to load unless every model has both samplers
            labels={"run": "{model} + {sampler}", "seed": "{seed}"},
        ),
    log:
        "results/{dataset}/{model}/seed{seed}/{sampler}/evaluate.log",
    benchmark:
        "results/{dataset}/{model}/seed{seed}/{sampler}/evaluate.benchmark.tsv"
    conda:
        ENV
    threads: res("evaluate", "threads", 1)
    resources:
        mem_mb=res("evaluate", "mem_mb", 4000),
        runtime=res("evaluate", "runtime", 30),
        gpu=res("evaluate", "gpu", 0),
        host=HOST_SETTINGS,
    params:
        sampler=lambda w: json.dumps(resolve_sampler(config, w.dataset, w.sampler, w.model), sort_keys=True),
        extractor=lambda w: extractor_for(config, w.dataset),
        n=lambda w: n_samples_for(config, w.dataset),
        classifier=lambda w: (
            f"--classifier {classifier_path(w.dataset)}" if extractor_for(config, w.dataset) == "classifier" else ""
        ),
        out=lambda w, output: os.path.dirname(output.metrics),
        precision=lambda w: feature_precision(extractor_for(config, w.dataset)),
        per_sample=lambda w: per_sample_args(config),
    shell:
        "rae-bench evaluate --settings {resources.host:q} --model-path {input.model} --sampler {wildcards.sampler} "
        "--sampler-params {params.sampler:q} --seed {wildcards.seed} --sampler-path {output.sampler} "
        "--extractor {params.extractor} {params.classifier} --precision {params.precision} "
        "--reference {input.reference} "
        "--n-samples {params.n} {params.per_sample} --threads {threads} --out-dir {params.out} 2>&1 | tee {log}"


# The authors' best-checkpoint protocol (MaskAAE, FlexAE; rae_bench/selection.py): every snapshot of a run
# with training.snapshots is evaluated like model.pt and the minimum Rec. and Gen. FIDs are reported. The
# snapshots are written by the train job beside model.pt (its input here).
rule evaluate_best_checkpoint:
    input:
        model="results/{dataset}/{model}/seed{seed}/model.pt",
        reference=lambda w: reference_path(w.dataset),
        extractor=lambda w: extractor_inputs(w.dataset, extractor_for(config, w.dataset)),
    output:
        metrics="results/{dataset}/{model}/seed{seed}/{sampler}/best_checkpoint/metrics.json",
        snapshots="results/{dataset}/{model}/seed{seed}/{sampler}/best_checkpoint/snapshots.csv",
    log:
        "results/{dataset}/{model}/seed{seed}/{sampler}/best_checkpoint/evaluate.log",
    benchmark:
        "results/{dataset}/{model}/seed{seed}/{sampler}/best_checkpoint/evaluate.benchmark.tsv"
    conda:
        ENV
    threads: res("evaluate_best_checkpoint", "threads", res("evaluate", "threads", 1))
    resources:
        mem_mb=res("evaluate_best_checkpoint", "mem_mb", res("evaluate", "mem_mb", 4000)),
        runtime=res("evaluate_best_checkpoint", "runtime", res("evaluate", "runtime", 30)),
        gpu=res("evaluate_best_checkpoint", "gpu", res("evaluate", "gpu", 0)),
        host=HOST_SETTINGS,
    params:
        sampler=lambda w: json.dumps(resolve_sampler(config, w.dataset, w.sampler, w.model), sort_keys=True),
        extractor=lambda w: extractor_for(config, w.dataset),
        n=lambda w: n_samples_for(config, w.dataset),
        classifier=lambda w: (
            f"--classifier {classifier_path(w.dataset)}" if extractor_for(config, w.dataset) == "classifier" else ""
        ),
        out=lambda w, output: os.path.dirname(output.metrics),
        precision=lambda w: feature_precision(extractor_for(config, w.dataset)),
        per_sample=lambda w: per_sample_args(config),
    shell:
        "rae-bench evaluate --settings {resources.host:q} --snapshots --model-path {input.model} "
        "--sampler {wildcards.sampler} --sampler-params {params.sampler:q} --seed {wildcards.seed} "
        "--extractor {params.extractor} {params.classifier} --precision {params.precision} "
        "--reference {input.reference} "
        "--n-samples {params.n} {params.per_sample} --threads {threads} --out-dir {params.out} 2>&1 | tee {log}"
