# One training run per (dataset, model, seed). The job resumes from RUN/checkpoint.pt when it
# was killed; params hold the resolved run config, so a hyper-parameter change reruns only the
# runs it touches.


rule train:
    output:
        model=RUN + "/model.pt",
        log=RUN + "/train_log.csv",
        config=RUN + "/config.json",
    params:
        run=run_config,
        out=RUN,
    log:
        RUN + "/train.log",
    threads: res("train", "threads", 1)
    resources:
        mem_mb=res("train", "mem_mb", 4000),
        runtime=res("train", "runtime", 60),
        gpu=res("train", "gpu", 0),
    shell:
        "rae-bench train --settings " + SETTINGS + " --run-config {params.run:q} "
        "--checkpoint-every " + str(config.get("checkpoint_every", 500)) + " "
        "--threads {threads} --out {params.out} 2>&1 | tee {log}"
