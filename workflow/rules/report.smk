# Tables and figures from cached metrics.json files; no training happens here.
# They are light: on a cluster they run on the submit host instead of queueing.


localrules:
    table,
    figure,
    claims,


# tables/claims.* would also match rule table's tables/{table}.csv
ruleorder: claims > table


rule table:
    input:
        table_metrics,
    output:
        csv=report(
            "tables/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}", "file": "tidy CSV"},
        ),
        tex="tables/{table}.tex",
        agreement="tables/{table}.agreement.csv",
        html=report(
            "tables/{table}.html",
            caption="../report/table_html.rst",
            category="Tables",
            labels={"table": "{table}", "file": "table (HTML)"},
        ),
    log:
        "logs/table_{table}.log",
    wildcard_constraints:
        # not "table3.agreement" (its .csv is the agreement output of table3), not "claims" (rule claims)
        table=r"(?!claims\b)[A-Za-z0-9_\-]+",
    conda:
        ENV
    params:
        spec=lambda w: json.dumps(table_spec(config, w.table), sort_keys=True),
        results=RESULTS,
    shell:
        "rae-bench table --name {wildcards.table} --spec {params.spec:q} --results {params.results} "
        "--csv {output.csv} --tex {output.tex} --agreement {output.agreement} --html {output.html} 2>&1 | tee {log}"


rule figure:
    input:
        figure_metrics,
    output:
        multiext("figures/{figure}", ".pdf", ".csv", ".tex"),
        png=report(
            "figures/{figure}.png", caption="../report/figure.rst", category="Figures", labels={"figure": "{figure}"}
        ),
    log:
        "logs/figure_{figure}.log",
    conda:
        ENV
    params:
        spec=lambda w: json.dumps(figure_spec(config, w.figure), sort_keys=True),
        results=RESULTS,
        out=lambda w, output: os.path.splitext(output.png)[0],
    shell:
        "rae-bench figure --name {wildcards.figure} --spec {params.spec:q} --results {params.results} "
        "--out {params.out} 2>&1 | tee {log}"


rule claims:
    input:
        lambda w: claims_metrics(CLAIMS_SPEC, RESULTS),
    output:
        csv=report(
            "tables/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
            labels={"file": "tidy CSV"},
        ),
        tex="tables/claims.tex",
        html=report(
            "tables/claims.html",
            caption="../report/claims_html.rst",
            category="Claims",
            labels={"file": "claims (HTML)"},
        ),
    log:
        "logs/claims.log",
    conda:
        ENV
    params:
        # the claims themselves travel in the spec: editing config/claims.yaml reruns this rule
        spec=lambda w: json.dumps(CLAIMS_SPEC, sort_keys=True),
        results=RESULTS,
    shell:
        "rae-bench claims --spec {params.spec:q} --results {params.results} "
        "--csv {output.csv} --tex {output.tex} --html {output.html} 2>&1 | tee {log}"
