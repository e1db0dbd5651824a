# Feature extractors and reference statistics, once per dataset.


rule feature_classifier:
    output:
        "results/{dataset}/features/classifier/classifier.pt",
    log:
        "results/{dataset}/features/classifier/train.log",
    benchmark:
        "results/{dataset}/features/classifier/train.benchmark.tsv"
    # every evaluation of its dataset waits for it: schedule it (and the reference statistics) first
    priority: 50
    conda:
        ENV
    threads: res("features", "threads", 1)
    resources:
        mem_mb=res("features", "mem_mb", 4000),
        runtime=res("features", "runtime", 30),
        gpu=res("features", "gpu", 0),
        host=HOST_SETTINGS,
    params:
        spec=lambda w: json.dumps(classifier_spec(config, w.dataset), sort_keys=True),
    shell:
        "rae-bench train-classifier --settings {resources.host:q} --spec {params.spec:q} --threads {threads} "
        "--quiet --out {output} 2>&1 | tee {log}"


rule reference_stats:
    input:
        lambda w: extractor_inputs(w.dataset, w.extractor),
    output:
        "results/{dataset}/features/{extractor}/reference_test_n{n}.npz",
    log:
        "results/{dataset}/features/{extractor}/reference_test_n{n}.log",
    benchmark:
        "results/{dataset}/features/{extractor}/reference_test_n{n}.benchmark.tsv"
    priority: 50
    conda:
        ENV
    threads: res("features", "threads", 1)
    resources:
        mem_mb=res("features", "mem_mb", 4000),
        runtime=res("features", "runtime", 30),
        gpu=res("features", "gpu", 0),
        host=HOST_SETTINGS,
    params:
        spec=dataset_spec,
        classifier=lambda w: f"--classifier {classifier_path(w.dataset)}" if w.extractor == "classifier" else "",
        precision=lambda w: feature_precision(w.extractor),
    shell:
        "rae-bench reference-stats --settings {resources.host:q} --dataset-spec {params.spec:q} "
        "--extractor {wildcards.extractor} {params.classifier} --precision {params.precision} --n {wildcards.n} "
        "--threads {threads} --out {output} 2>&1 | tee {log}"
