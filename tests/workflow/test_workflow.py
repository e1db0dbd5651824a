"""The real Snakemake DAG, end to end, on a tiny config."""
from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO.parent / "shared" / "data" / "MNIST" / "raw"


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    # targets go before --configfile: Snakemake reads every word after it as a config file
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2", *args,
           "--configfile", str(workdir / "tiny.yaml")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    if not MNIST.exists():
        pytest.skip(f"real MNIST not found at {MNIST}")
    wd = tmp_path_factory.mktemp("wf")
    cfg = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    cfg["data_root"] = str(MNIST.parents[1])
    (wd / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    done = snakemake(wd, "tables/table3.tex")
    assert done.returncode == 0, done.stderr[-4000:]
    return wd


@pytest.mark.slow
def test_dag_builds_table3(workdir):
    df = pd.read_csv(workdir / "tables" / "table3.csv")
    assert set(df["dataset"]) == {"mnist"}
    assert set(df["metric"]) == {"fid_rec", "fid_gen"}
    assert len(df) == 5 * 2  # four rows and WAE-MMD's best-checkpoint twin
    assert df["ours"].map(math.isfinite).all() and (df["ours"] >= 0).all()
    assert set(df["extractor"]) == {"classifier"}
    # the published value sits beside ours where the paper has the row and dataset
    rae = df[(df.row == "RAE + GMM (L2)") & (df.dataset == "mnist") & (df.metric == "fid_gen")]
    assert rae["paper"].item() == pytest.approx(7.30)
    assert df.loc[df.row == "AE", "paper"].isna().all()
    # AE and AE + GMM share one training: same reconstructions, different generations
    ae = df[(df.dataset == "mnist") & df.row.isin(["AE", "AE + GMM (L2)"])].set_index(["row", "metric"])["ours"]
    assert ae[("AE", "fid_rec")] == pytest.approx(ae[("AE + GMM (L2)", "fid_rec")])
    assert ae[("AE", "fid_gen")] != ae[("AE + GMM (L2)", "fid_gen")]
    # the twin: the minimum over the run's snapshots (steps 4, 8 on MNIST), each column chosen on its own
    best = json.loads((workdir / "results/mnist/wae_mmd/seed0/prior/best_checkpoint/metrics.json").read_text())
    assert best["candidates"] == 2 and best["selection"] == "best_checkpoint"
    steps = pd.read_csv(workdir / "results/mnist/wae_mmd/seed0/prior/best_checkpoint/snapshots.csv")
    twin = df[(df.row == "WAE-MMD \u2020") & (df.dataset == "mnist")].set_index("metric")["ours"]
    # the CSV holds 4 decimals
    assert twin["fid_rec"] == pytest.approx(steps["fid_rec"].min(), abs=5e-5)
    assert twin["fid_gen"] == pytest.approx(steps["fid_gen"].min(), abs=5e-5)


@pytest.mark.slow
def test_latex_is_booktabs_with_both_columns(workdir):
    tex = (workdir / "tables" / "table3.tex").read_text()
    for token in (r"\toprule", r"\midrule", r"\bottomrule", "Ours", "Paper", "MNIST", "7.30", "--"):
        assert token in tex
    # the feature space, with the classifier's test accuracy against the majority answer, and the sample count
    assert re.search(r"classifier features \([0-9.]+\\% test accuracy, majority baseline [0-9.]+\\%\), 200 samples", tex), tex
    assert "Agreement with the paper" in tex


@pytest.mark.slow
def test_run_folders_hold_what_the_design_promises(workdir):
    run = workdir / "results" / "mnist" / "rae_l2" / "seed0"
    for name in ("model.pt", "train_log.csv", "config.json", "losses.png", "gmm/sampler.pt", "gmm/metrics.json",
                 "gmm/samples.png"):
        assert (run / name).exists(), name
    assert not (run / "checkpoint.pt").exists()
    metrics = json.loads((run / "gmm" / "metrics.json").read_text())
    assert metrics["n_samples"] == 200 and metrics["sampler"] == "gmm"
    assert (workdir / "results" / "mnist" / "features" / "classifier" / "reference_test_n200.npz").exists()


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a Snakemake dry run into {rule: count}."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    counts = {}
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.slow
def test_second_run_has_nothing_to_do_and_redrawing_tables_retrains_nothing(workdir):
    """The documented command after a change to the table code: force the table rule only. The plan holds that
    one job and nothing else, so everything else is up to date: a second run has nothing to do (also shown,
    as "Nothing to be done", by test_host_settings_reach_every_job_and_rerun_nothing)."""
    done = snakemake(workdir, "tables/table3.tex", "--forcerun", "table", "-n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert job_counts(done.stdout) == {"table": 1}


def checkout_files() -> list[str]:
    """The files of this checkout as a clone has them: tracked, plus new ones that git does not ignore."""
    done = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [f for f in done.stdout.split("\0") if f and (REPO / f).is_file()]


@pytest.mark.slow
def test_results_copied_to_another_checkout_rebuild_tables_without_retraining(workdir, tmp_path):
    """results/ (and Snakemake's metadata) copied with their mtimes (cp -a, rsync -a, shutil.copytree) to a
    checkout at another path: the table is planned, nothing else (no absolute path in any param or input)."""
    other = tmp_path / "elsewhere" / "rae_bench"
    for name in checkout_files():
        (other / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, other / name)
    shutil.copytree(workdir / "results", other / "results", dirs_exist_ok=True)  # copy2: mtimes kept
    shutil.copytree(workdir / ".snakemake" / "metadata", other / ".snakemake" / "metadata")
    shutil.copy2(workdir / "tiny.yaml", other / "tiny.yaml")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(other / "Snakefile"), "-d", str(other), "--cores", "2",
           "tables/table3.tex", "-n", "--configfile", str(other / "tiny.yaml")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert job_counts(done.stdout) == {"table": 1}, done.stdout[-3000:]


@pytest.mark.slow
def test_hyperparameter_change_reruns_exactly_the_affected_runs(workdir):
    cfg = yaml.safe_load((workdir / "tiny.yaml").read_text())
    cfg["models"]["wae_mmd"]["params"]["lambda"] = 5.0
    (workdir / "changed.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           "tables/table3.tex", "-n", "--configfile", str(workdir / "changed.yaml")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # wae_mmd: train, then one job fits its prior sampler and evaluates, one evaluates its snapshots (its
    # best-checkpoint twin row); then the table
    assert job_counts(done.stdout) == {"train": 1, "evaluate": 1, "evaluate_best_checkpoint": 1, "table": 1}
    assert "results/mnist/wae_mmd/seed0/model.pt" in done.stdout
    assert "results/mnist/rae_l2/seed0/model.pt" not in done.stdout


def changed_dry_run(workdir: Path, name: str, change) -> subprocess.CompletedProcess:
    """`snakemake -n -p` of table 3 on the finished tiny workdir with ``change(cfg)`` applied to its config."""
    cfg = yaml.safe_load((workdir / "tiny.yaml").read_text())
    change(cfg)
    (workdir / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           "tables/table3.tex", "-n", "-p", "--configfile", str(workdir / f"{name}.yaml")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def shell_commands(output: str) -> list[str]:
    """The commands a `snakemake -n -p` run would execute (its params also show in the rerun reasons)."""
    return [line.removeprefix("Shell command: ") for line in output.splitlines() if line.startswith("Shell command: ")]


@pytest.mark.slow
def test_features_setting_change_reruns_exactly_the_evaluations(workdir):
    """features.knn_k is a param of every evaluation: all of them rerun (4 rows and WAE-MMD's best-checkpoint
    twin), then the table; no training, no classifier, no reference statistics."""
    done = changed_dry_run(workdir, "knn3", lambda cfg: cfg["features"].update(knn_k=3))
    assert job_counts(done.stdout) == {"evaluate": 4, "evaluate_best_checkpoint": 1, "table": 1}
    commands = shell_commands(done.stdout)
    assert len(commands) == 6 and sum("--knn-k 3 " in c for c in commands) == 5


@pytest.mark.slow
def test_extractor_and_precision_reach_the_command_line_and_rerun_only_feature_jobs(workdir):
    """MNIST on bf16 Inception: its reference statistics and its evaluations rerun with --extractor inception
    --precision bf16 on their command lines (params); every training and the classifier stay."""
    def inception_bf16(cfg):
        cfg["datasets"]["mnist"]["extractor"] = "inception"
        cfg["features"]["precision"] = "bf16"

    done = changed_dry_run(workdir, "bf16", inception_bf16)
    assert job_counts(done.stdout) == {"reference_stats": 1, "evaluate": 4, "evaluate_best_checkpoint": 1, "table": 1}
    commands = [c for c in shell_commands(done.stdout) if not c.startswith("rae-bench table")]
    assert len(commands) == 6 and all("--extractor inception" in c and "--precision bf16" in c for c in commands)
    # precision alone, on the classifier features the tiny config uses, reruns nothing:
    # test_host_settings_reach_every_job_and_rerun_nothing's dry run sets it too


@pytest.mark.slow
def test_host_settings_reach_every_job_and_rerun_nothing(workdir):
    """Where data lives, the device, the checkpoint interval, TensorBoard, the extractor's batch size and
    engine: --settings JSON on every job's command line (a string resource), never a rerun. Nor does the
    Inception precision on the classifier features the tiny config uses (no job's outputs change)."""
    def host(cfg):
        cfg.update(device="cpu", checkpoint_every=7, tensorboard=True, cache_dir="elsewhere/cache")
        cfg["features"].update(batch_size=64, backend="torch", precision="bf16")

    done = changed_dry_run(workdir, "host", host)
    assert "Nothing to be done" in done.stdout + done.stderr, done.stdout[-3000:]
    forced = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                             "--cores", "2", "tables/table3.tex", "-n", "-p", "--forceall", "--configfile",
                             str(workdir / "host.yaml")], capture_output=True, text=True, timeout=300)
    assert forced.returncode == 0, forced.stderr[-2000:]
    jobs = [c for c in shell_commands(forced.stdout) if not c.startswith("rae-bench table")]
    settings = [json.loads(m) for c in jobs for m in re.findall(r"--settings '(\{[^']*\})'", c)]
    assert len(jobs) == 10 and len(settings) == len(jobs)  # 3 trainings, 5 evaluations, 2 feature jobs
    assert all(s["device"] == "cpu" and s["checkpoint_every"] == 7 and s["features"]["batch_size"] == 64
               for s in settings)


def smk_rules() -> dict[str, str]:
    """The text of every rule of the workflow, by name (snakefmt's layout: `rule NAME:` at column 0)."""
    rules = {}
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        for block in re.split(r"(?m)^(?=rule \w+:)", path.read_text())[1:]:
            rules[re.match(r"rule (\w+):", block).group(1)] = block
    return rules


def test_every_param_is_used_on_the_command_line_and_no_setting_travels_by_environment():
    """A param the shell never uses would only trigger reruns (a dummy); settings set in os.environ at parse
    time would reach jobs past the params trigger. Neither: what a job's outputs depend on is on its
    command line."""
    rules = smk_rules()
    assert {"train", "evaluate", "reference_stats", "feature_classifier", "table"} <= set(rules)
    for name, text in rules.items():
        params = re.search(r"(?ms)^    params:\n(.*?)^    \w+:", text)
        shell = re.search(r"(?ms)^    shell:\n(.*?)(?:^\S|\Z)", text)
        if params is None:
            continue
        assert shell is not None, name
        for param in re.findall(r"(?m)^        (\w+)=", params.group(1)):
            assert "{params." + param in shell.group(1), f"rule {name}: params.{param} is not used in its shell"
    for path in [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]:
        assert "os.environ" not in path.read_text() and "putenv" not in path.read_text(), path


def test_lint_is_clean():
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(REPO), "--lint"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Congratulations" in done.stdout + done.stderr, done.stdout[-3000:]


@pytest.fixture(scope="module")
def report(workdir) -> Path:
    done = snakemake(workdir, "tables/table3.tex", "--report", str(workdir / "report.html"))
    assert done.returncode == 0, done.stderr[-2000:]
    return workdir / "report.html"


@pytest.mark.slow
def test_report_collects_tables_and_sample_grids(report):
    html = report.read_text(errors="replace")
    for needle in ("table3.csv", "table3.html", "samples.png", "losses.png", "Tables", "Samples", "Loss curves",
                   "rae_bench"):
        assert needle in html, needle


BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome", "headless_shell")


def browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def walk_report(chrome: str, report: Path) -> dict:
    """Open a copy of the report, with tests/report_walk.js added, in headless Chromium; what the walk saw."""
    page = report.read_text()
    end = page.rindex("</body>")
    walk = report.with_name("report_walk.html")
    walk.write_text(page[:end] + "<script>" + (REPO / "tests" / "report_walk.js").read_text() + "</script>" + page[end:])
    for _ in range(2):  # a page the JS app has not finished rendering within the time budget: once more
        done = subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=60000",
                               "--dump-dom", walk.as_uri()], capture_output=True, text=True, timeout=120)
        found = re.search(r'<pre id="rae-bench-walk">(.*?)</pre>', done.stdout, flags=re.S)
        if found:
            return json.loads(html.unescape(found.group(1)))
    raise AssertionError(f"the report's walk did not finish in {chrome}: {done.stderr[-2000:]}")


@pytest.mark.slow
def test_report_shows_tables_curves_and_samples_in_a_browser(report):
    """The report is a JS app: what a reader sees needs a browser (skipped where none is installed)."""
    chrome = browser()
    if chrome is None:
        pytest.skip(f"no headless browser ({', '.join(BROWSERS)}); .ci/run installs chromium-headless-shell")
    seen = walk_report(chrome, report)
    assert {"Tables", "Samples", "Loss curves"} <= set(seen["menu"]), seen["menu"]
    tables, samples, curves = (seen["found"][c] for c in ("Tables", "Samples", "Loss curves"))
    # the table as a page (a CSV would only be a download), with a toggle to the tidy CSV
    assert tables["listed"] == ["table3"] and {"table (HTML)", "tidy CSV"} <= set(tables["toggles"])
    # header + four rows + WAE-MMD's best-checkpoint twin (selection: both in tests/configs/tiny.yaml)
    assert tables["shown"] == {"kind": "html", "path": "tables/table3.html", "tables": 1, "rows": 1 + 4 + 1}
    # MNIST's sample grids (8 x 8 digits of 28 px, 2 px apart) and loss curves, decoded by the browser
    assert len(samples["listed"]) == 4 and samples["shown"]["path"].endswith("/samples.png")
    assert (samples["shown"]["width"], samples["shown"]["height"]) == (242, 242)
    assert [row.split()[0] for row in curves["listed"]] == ["ae", "rae_l2", "wae_mmd"]
    assert curves["shown"]["path"] == "results/mnist/ae/seed0/losses.png"
    assert curves["shown"]["width"] > 300 and curves["shown"]["height"] > 150


def test_claims_target_resolves_in_a_dry_run(tmp_path):
    """`snakemake -n tables/claims.csv` on the tiny config: one claims job over the evaluations of the rows the
    claims read, the claims inside its --spec; no table job (rule claims, not rule table, makes tables/claims.*)."""
    cfg = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    cfg["features"]["bootstrap"] = 20
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    done = snakemake(tmp_path, "tables/claims.csv", "tables/claims.tex", "-n", "-p")
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout)
    assert counts["claims"] == 1 and "table" not in counts and counts["evaluate"] > 0
    claims_job = done.stdout[done.stdout.index("rule claims:"):]
    assert "results/mnist/rae_l2/seed0/gmm/metrics.json" in claims_job.split("output:")[0]
    assert "tables/claims.html" in claims_job and "rae-bench claims --spec" in done.stdout
    assert '"id": "rae_beats_vae"' in done.stdout  # the claims travel in the spec (a param)
    # features.bootstrap reaches every evaluation (the best-checkpoint ones too)
    assert done.stdout.count("--fid-bootstrap 20") == counts["evaluate"] + counts.get("evaluate_best_checkpoint", 0)
