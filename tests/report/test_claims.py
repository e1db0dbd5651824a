"""The papers' claims tested on fabricated metrics.json files: holds, fails, inconclusive (report/claims.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from rae_bench.cli import main
from rae_bench.config.validate import load_config
from rae_bench.errors import ConfigError
from rae_bench.report.claims import COLUMNS, check_claims, claims_frame, collect_frames, load_claims
from rae_bench.report.specs import claims_spec

REPO = Path(__file__).resolve().parents[2]
ROWS = ["Good", "Bad", "Close", "Other"]


def put(root: Path, ds: str, model: str, seed: int, value: float, boot: list[float] | None = None, **extra) -> None:
    path = root / ds / model / f"seed{seed}" / "prior" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {"fid_rec": value, "fid_gen": value, "extractor": "raw", "n_samples": 100, **extra}
    if boot is not None:
        metrics["fid_gen_boot"] = boot
    path.write_text(json.dumps(metrics))


def table_spec(seeds):
    return {"kind": "rows", "datasets": ["mnist", "celeba"], "seeds": list(seeds),
            "rows": [{"label": r, "model": r.lower(), "sampler": "prior"} for r in ROWS]}


CLAIMS = [
    {"id": "good_beats_bad", "claim": "Good beats Bad on every dataset", "source": "fabricated",
     "table": "table3", "metric": "fid_gen", "better": "Good", "worse": "Bad"},
    {"id": "bad_beats_good", "claim": "Bad beats Good", "source": "fabricated",
     "table": "table3", "metric": "fid_gen", "pairs": [["Bad", "Good"]]},
    {"id": "close_beats_good", "claim": "Close beats Good", "source": "fabricated",
     "table": "table3", "metric": "fid_gen", "better": "Close", "worse": "Good"},
    {"id": "good_is_best", "claim": "Good is the best", "source": "fabricated",
     "table": "table3", "metric": "fid_gen", "better": "Good", "worse": "others"},
    {"id": "elsewhere", "claim": "a table this config lacks", "source": "fabricated",
     "table": "table1", "metric": "fid_gen", "better": "Good", "worse": "Bad"},
]
# Good ~ 10, Bad ~ 20, Close ~ 10.3: Close vs Good is within the noise; Other ~ 15
MEANS = {"Good": 10.0, "Bad": 20.0, "Close": 10.3, "Other": 15.0}


def fabricate(root: Path, seeds, noise: float, boot_spread: float | None = None) -> None:
    rng = np.random.default_rng(0)
    for row, mean in MEANS.items():
        for ds in ("mnist", "celeba"):
            for s in seeds:
                value = mean + noise * rng.normal()
                boot = None if boot_spread is None else list(value + 3.0 + boot_spread * rng.normal(size=200))
                put(root, ds, row.lower(), s, value, boot)


def verdicts(root: Path, seeds) -> tuple[pd.DataFrame, dict[str, str]]:
    spec = {"kind": "claims", "tables": {"table3": table_spec(seeds)}, "sweeps": {}}
    frame = claims_frame(check_claims({"claims": CLAIMS}), collect_frames(spec, root))
    return frame, dict(zip(frame["claim"], frame["claim_verdict"]))


def test_paired_over_three_seeds_holds_fails_and_is_inconclusive(tmp_path):
    fabricate(tmp_path, [0, 1, 2], noise=1.0)
    frame, got = verdicts(tmp_path, [0, 1, 2])
    assert got == {"good_beats_bad": "holds", "bad_beats_good": "fails", "close_beats_good": "inconclusive",
                   "good_is_best": "inconclusive", "elsewhere": "not run"}
    good = frame[frame.claim == "good_beats_bad"].set_index("dataset")
    assert list(good.index) == ["mnist", "celeba"] and (good["verdict"] == "holds").all()
    assert good["test"].str.startswith("paired t over n=3 seeds").all()
    assert (good["a_n"] == 3).all() and (good["b_n"] == 3).all() and good["a_sd"].gt(0).all()
    assert good.loc["mnist", "side_a"] == "Good" and good.loc["mnist", "side_b"] == "Bad"
    assert (good["ci_low"] > 0).all() and (good["ci_low"] <= good["difference"]).all()
    # "others": every other row of the table on every dataset; Close is not clearly worse
    best = frame[frame.claim == "good_is_best"]
    assert len(best) == 2 * 3 and set(best.side_b) == {"Bad", "Close", "Other"}
    assert set(best.loc[best.side_b == "Close", "verdict"]) == {"inconclusive"}


def test_one_seed_bootstraps_the_test_samples_and_says_so(tmp_path):
    fabricate(tmp_path, [0], noise=1.0, boot_spread=0.5)
    frame, got = verdicts(tmp_path, [0])
    assert got["good_beats_bad"] == "holds" and got["bad_beats_good"] == "fails"
    assert got["close_beats_good"] == "inconclusive"
    tests = set(frame.loc[frame.claim != "elsewhere", "test"])
    assert len(tests) == 1 and "bootstrap over test samples" in tests.pop()
    assert "sampling noise only, not training's" in frame["test"].iloc[0]


def test_one_seed_without_replicates_is_inconclusive_and_names_why(tmp_path):
    fabricate(tmp_path, [0], noise=1.0)
    frame, got = verdicts(tmp_path, [0])
    assert set(v for k, v in got.items() if k != "elsewhere") == {"inconclusive"}
    assert frame["test"].iloc[0].startswith("none: n=1 common seed(s)")


def test_one_failure_among_holding_comparisons_fails_the_claim_one_open_one_leaves_it_open(tmp_path):
    fabricate(tmp_path, [0, 1, 2], noise=1.0)
    spec = {"kind": "claims", "tables": {"table3": table_spec([0, 1, 2])}, "sweeps": {}}
    base = {"claim": "mixed", "source": "fabricated", "table": "table3", "metric": "fid_gen"}
    claims = [{**base, "id": "one_fails", "pairs": [["Good", "Bad"], ["Good", "Other"], ["Bad", "Good"]]},
              {**base, "id": "one_open", "pairs": [["Good", "Bad"], ["Close", "Good"]]}]
    frame = claims_frame(check_claims({"claims": claims}), collect_frames(spec, tmp_path))
    got = dict(zip(frame["claim"], frame["claim_verdict"]))
    assert got == {"one_fails": "fails", "one_open": "inconclusive"}
    assert list(frame.loc[frame.claim == "one_fails", "verdict"]) == ["holds", "holds", "fails"] * 2


def test_target_claim_on_a_sweep(tmp_path):
    sweep = {"kind": "sweep", "datasets": ["synth"], "models": ["maskaae"], "latent_dims": {"synth": [4, 8, 16, 32]},
             "sampler": "prior", "seeds": [0, 1, 2], "true_n": {"synth": 8}, "labels": {"maskaae": "MaskAAE"}}
    dims = {4: 4, 8: 8, 16: 9, 32: 8}
    for m, active in dims.items():
        for s in (0, 1, 2):
            put(tmp_path, "synth", f"maskaae_m{m}", s, 1.0, active_dims=active)
    claim = {"id": "finds_n", "claim": "MaskAAE finds n", "source": "fabricated", "kind": "target", "sweep": "latent",
             "model": "maskaae", "metric": "active_dims", "tolerance": 1}
    spec = {"kind": "claims", "tables": {}, "sweeps": {"latent": sweep}}
    frame = claims_frame(check_claims({"claims": [claim]}), collect_frames(spec, tmp_path))
    assert list(frame["comparison"]) == [f"synth: MaskAAE m={m} within 1 of n=8" for m in (8, 16, 32)]
    assert set(frame["claim_verdict"]) == {"holds"}  # m = 4 < n is not part of the claim
    put(tmp_path, "synth", "maskaae_m32", 1, 1.0, active_dims=20)  # one seed far off: the mean is 12
    for s in (0, 2):
        put(tmp_path, "synth", "maskaae_m32", s, 1.0, active_dims=19)
    frame = claims_frame(check_claims({"claims": [claim]}), collect_frames(spec, tmp_path))
    assert set(frame["claim_verdict"]) == {"fails"}


def test_cli_writes_csv_latex_and_html(tmp_path, capsys):
    fabricate(tmp_path / "results", [0, 1, 2], noise=1.0)
    claims = tmp_path / "claims.yaml"
    claims.write_text(yaml.safe_dump({"claims": CLAIMS}))
    spec = {"kind": "claims", "tables": {"table3": table_spec([0, 1, 2])}, "sweeps": {}}
    out = tmp_path / "t"
    assert main(["claims", "--claims", str(claims), "--spec", json.dumps(spec), "--results", str(tmp_path / "results"),
                 "--csv", str(out / "claims.csv"), "--tex", str(out / "claims.tex"), "--html", str(out / "c.html")]) == 0
    df = pd.read_csv(out / "claims.csv")
    assert list(df.columns) == COLUMNS
    assert dict(df.drop_duplicates("claim")[["claim", "claim_verdict"]].values)["good_beats_bad"] == "holds"
    tex = (out / "claims.tex").read_text()
    assert r"\textbf{Good beats Bad on every dataset}: holds" in tex and r"\pm" in tex and "paired t" in tex
    assert "Good beats Bad on every dataset: holds" in (out / "c.html").read_text()
    assert "claims: 1 holds, 1 fails, 2 inconclusive, 1 not run" in capsys.readouterr().out
    # the workflow's way: the claims inside --spec, same result
    assert main(["claims", "--spec", json.dumps({**spec, "claims": CLAIMS}), "--results", str(tmp_path / "results"),
                 "--csv", str(out / "again.csv"), "--tex", str(out / "again.tex")]) == 0
    assert (out / "again.csv").read_text() == (out / "claims.csv").read_text()


def test_bad_claims_file_is_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"claims": [{"id": "x", "claim": "c", "source": "s", "metric": "fid_gen"}]}))
    with pytest.raises(ConfigError, match="claim 'x' has no 'table'"):
        load_claims(path)
    path.write_text(yaml.safe_dump({"claims": [{**CLAIMS[0], "kind": "sometimes"}]}))
    with pytest.raises(ConfigError, match="valid kinds: order, sweep_order, target"):
        load_claims(path)


@pytest.mark.parametrize("profile", [["config.yaml"], ["config.yaml", "paper.yaml"]])
def test_shipped_claims_name_rows_the_profiles_have(profile):
    """Every row, model and dataset that config/claims.yaml names exists in the tables and sweeps of the
    shipped profiles (a typo would turn a claim into "not run" silently)."""
    claims = load_claims(REPO / "config" / "claims.yaml")
    cfg = load_config([REPO / "config" / p for p in profile])
    spec = claims_spec(cfg, claims)
    for c in claims:
        assert all(len(str(c[k])) > 10 for k in ("claim", "source")), c["id"]
        if c.get("kind", "order") == "order":
            labels = {r["label"] for r in spec["tables"][c["table"]]["rows"]}
            named = [x for p in c.get("pairs", []) for x in p] + [c.get("better")] + (
                c["worse"] if isinstance(c.get("worse"), list) else [c.get("worse")])
            assert {x for x in named if x not in (None, "others")} <= labels, c["id"]
        else:
            sweep = spec["sweeps"][c["sweep"]]
            sides = [c] if c["kind"] == "target" else [c["better"], *(c["worse"] if isinstance(c["worse"], list) else [c["worse"]])]
            assert {s["model"] for s in sides} <= set(sweep["models"]), c["id"]
            assert set(c.get("datasets", [])) <= set(sweep["datasets"]), c["id"]


def test_bootstrap_keeps_the_shared_test_set_noise_common_to_both_sides(tmp_path):
    """Replicate b of runs with one seed resampled the same test items: a large noise common to both sides at
    each b cancels in the difference, so a small but steady gap still holds."""
    rng = np.random.default_rng(1)
    common = 5.0 * rng.normal(size=200)  # the test items' draw, shared by every run of seed 0
    for row, mean in MEANS.items():
        for ds in ("mnist", "celeba"):
            put(tmp_path, ds, row.lower(), 0, mean, list(mean + common + 0.05 * rng.normal(size=200)))
    frame, got = verdicts(tmp_path, [0])
    assert got["close_beats_good"] == "fails"  # Close 10.3 vs Good 10.0: 0.3 apart, common noise sd 5
    close = frame[frame.claim == "close_beats_good"]
    assert (close["ci_high"] - close["ci_low"] < 0.5).all()


@pytest.mark.parametrize("bad,message", [
    ({"better": 5}, "`better` must be a non-empty string"),
    ({"pairs": [["Good"]]}, "`pairs` must be a list of"),
    ({"datasets": "mnist"}, "`datasets` must be a list"),
    ({"kind": "sweep_order", "sweep": "latent", "better": {"model": "a", "m": "middle"}, "worse": {"model": "b"}},
     "each side must be {model: name}"),
    ({"kind": "target", "sweep": "latent", "model": "maskaae", "tolerance": "one"}, "`tolerance` must be a number"),
])
def test_malformed_claims_are_one_line_errors(tmp_path, bad, message, capsys):
    spec = {"kind": "claims", "claims": [{**CLAIMS[0], **bad}], "tables": {}, "sweeps": {}}
    assert main(["claims", "--spec", json.dumps(spec), "--results", str(tmp_path), "--csv", str(tmp_path / "c.csv"),
                 "--tex", str(tmp_path / "c.tex")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
