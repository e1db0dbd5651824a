# Tables and figures from cached metrics.json files; no training happens here.
# They are light: on a cluster they run on the submit host instead of queueing.


localrules:
    table,
    figure,


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


rule figure:
    input:
        figure_metrics,
    output:
        multiext("figures/{figure}", ".pdf", ".png", ".csv", ".tex"),
    params:
        spec=lambda w: json.dumps(figure_spec(config, w.figure), sort_keys=True),
    shell:
        "rae-bench figure --name {wildcards.figure} --spec {params.spec:q} --results " + RESULTS + " "
        "--out figures/{wildcards.figure}"
