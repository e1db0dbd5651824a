# Tables from cached metrics.json files; no training happens here.


rule table:
    input:
        table_metrics,
    output:
        csv="tables/{table}.csv",
        tex="tables/{table}.tex",
    params:
        spec=lambda w: json.dumps(table_spec(config, w.table), sort_keys=True),
    shell:
        "rae-bench table --name {wildcards.table} --spec {params.spec:q} --results " + RESULTS + " "
        "--csv {output.csv} --tex {output.tex}"
