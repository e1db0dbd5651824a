# Ex-post samplers and metrics of each (model, sampler) pair.


rule fit_sampler:
    input:
        RUN + "/model.pt",
    output:
        RUN + "/{sampler}/sampler.pt",
    params:
        sampler=lambda w: json.dumps(config.get("samplers", {}).get(w.sampler, {}), sort_keys=True),
    threads: res("evaluate", "threads", 1)
    resources:
        mem_mb=res("evaluate", "mem_mb", 4000),
        runtime=res("evaluate", "runtime", 30),
        gpu=res("evaluate", "gpu", 0),
    shell:
        "rae-bench fit-sampler --settings " + SETTINGS + " --model-path {input} --sampler {wildcards.sampler} "
        "--params {params.sampler:q} --seed {wildcards.seed} --threads {threads} --out {output}"


rule evaluate:
    input:
        model=RUN + "/model.pt",
        sampler=RUN + "/{sampler}/sampler.pt",
        reference=lambda w: reference_path(w.dataset),
        extractor=lambda w: extractor_inputs(w.dataset, extractor_for(config, w.dataset)),
    output:
        metrics=RUN + "/{sampler}/metrics.json",
        samples=RUN + "/{sampler}/samples.png",
    params:
        extractor=lambda w: extractor_for(config, w.dataset),
        n=lambda w: n_samples_for(config, w.dataset),
        classifier=lambda w: f"--classifier {classifier_path(w.dataset)}"
        if extractor_for(config, w.dataset) == "classifier" else "",
        out=RUN + "/{sampler}",
    threads: res("evaluate", "threads", 1)
    resources:
        mem_mb=res("evaluate", "mem_mb", 4000),
        runtime=res("evaluate", "runtime", 30),
        gpu=res("evaluate", "gpu", 0),
    shell:
        "rae-bench evaluate --settings " + SETTINGS + " --model-path {input.model} --sampler-path {input.sampler} "
        "--extractor {params.extractor} {params.classifier} --reference {input.reference} "
        "--n-samples {params.n} --threads {threads} --out-dir {params.out}"
