# One training run per (dataset, model, seed). The job resumes from its checkpoint.pt when it was
# killed; params hold the resolved run config, so a hyper-parameter change reruns only the runs it
# touches.


rule train:
    output:
        model="results/{dataset}/{model}/seed{seed}/model.pt",
        log="results/{dataset}/{model}/seed{seed}/train_log.csv",
        config="results/{dataset}/{model}/seed{seed}/config.json",
        curves=report(
            "results/{dataset}/{model}/seed{seed}/losses.png",
            caption="../report/losses.rst",
            category="Loss curves",
            subcategory="{dataset}",
            labels={"model": "{model}", "seed": "{seed}"},
        ),
    log:
        "results/{dataset}/{model}/seed{seed}/train.log",
    benchmark:
        "results/{dataset}/{model}/seed{seed}/train.benchmark.tsv"
    conda:
        ENV
    threads: res("train", "threads", 1)
    resources:
        mem_mb=res("train", "mem_mb", 4000),
        runtime=res("train", "runtime", 60),
        gpu=res("train", "gpu", 0),
        host=HOST_SETTINGS,
    params:
        run=run_config,
        out=lambda w, output: os.path.dirname(output.model),
    shell:
        "rae-bench train --settings {resources.host:q} --run-config {params.run:q} --threads {threads} "
        "--out {params.out} 2>&1 | tee {log}"
