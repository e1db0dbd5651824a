#!/usr/bin/env bash
# The first GPU session (issue 13 item 4), as one command, for a lent GPU machine with no network:
#
#   bash benchmarks/gpu_session.sh                    # on the GPU machine (after benchmarks/gpu_pack.sh here)
#   CPU_SMOKE=1 bash benchmarks/gpu_session.sh        # here, on the CPU: every step shrunk to seconds
#   bash benchmarks/gpu_session.sh --dry-run          # the same as CPU_SMOKE=1
#   STEPS="4 5" bash benchmarks/gpu_session.sh        # only some steps (the summary is always written)
#
# Steps, each under `timeout` (its box, cut to what is left of BUDGET_S, default 520 s on the GPU):
#   1 environment (50 s)   nvidia-smi, python/torch/CUDA/cuDNN versions and flags; installs the carried wheels
#                          (.gpu_carry/whl, from benchmarks/gpu_pack.sh) with --no-index if a module is missing,
#                          else tries pip for 25 s and says plainly when no registry answers
#   2 tiny DAG (140 s)     snakemake --cores $(nproc) tables/table3.tex on tests/configs/tiny.yaml with device cuda
#                          and the carried MNIST (synthetic rows only without it): wall time, table3.csv written
#   3 determinism (120 s)  benchmarks/gpu_determinism.py: two identical CUDA runs of one chain (bit-identical
#                          losses, weights, metrics?) and one CPU run of it (how far is CUDA from the CPU),
#                          the three at the same time (--parallel), as a DAG's jobs share the GPU
#   4 throughput (110 s)   benchmarks/hardware.py --devices cuda: paper MNIST and CelebA VAE nets, img/s, GFLOP/s
#                          against fp32 and TF32 matmul peaks, share of the step the GPU is busy; then
#                          benchmarks/plan_vs_device.py: the paper profile's RAE (L2) MNIST row, 30 timed steps,
#                          against `rae-bench plan`'s per-step estimate (same log)
#   5 FID (130 s)          benchmarks/gpu_fid.py: 2,000 + 2,000 64x64 images, random Inception weights, ours vs
#                          pytorch-fid's get_activations and CLI, fp32 and TF32: img/s and FID agreement
#   6 summary              $OUT/summary.md (ready for benchmarks/README.md), $OUT/summary.json, $OUT/details.tar.gz
#
# Everything lands in $OUT (default benchmarks/results/gpu; smoke: benchmarks/.work/gpu_smoke): one log per
# step (N_name.log) and the three summary files, 8 files in all (the device tool returns at most 8).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

SMOKE="${CPU_SMOKE:-0}"
for arg in "$@"; do
  case "$arg" in
    --dry-run|--smoke) SMOKE=1 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$SMOKE" = 1 ]; then
  OUT="${OUT:-$ROOT/benchmarks/.work/gpu_smoke}"; DEV=cpu; BUDGET="${BUDGET_S:-300}"; CORES=2
else
  OUT="${OUT:-$ROOT/benchmarks/results/gpu}"; DEV=cuda; BUDGET="${BUDGET_S:-520}"; CORES="$(nproc)"
fi
STEPS="${STEPS:-1 2 3 4 5}"
RESERVE=15                                   # seconds kept for the summary
WORK="$(mktemp -d "${TMPDIR:-/tmp}/rae_gpu_session.XXXXXX")"
SITE="$WORK/site"                            # carried wheels are installed here (pip --target)
mkdir -p "$OUT" "$WORK/bin" "$WORK/results" "$SITE"
rm -f "$OUT"/[1-5]_*.log "$OUT"/summary.md "$OUT"/summary.json "$OUT"/details.tar.gz
START=$SECONDS

# A Python that has torch: $PYTHON, python3 (on the GPU image: /opt/torch/.venv/bin/python3), python.
PY=""
for c in "${PYTHON:-}" python3 /opt/torch/.venv/bin/python3 python; do
  [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 || continue
  if timeout 90 "$c" -c "import torch" >/dev/null 2>&1; then PY="$(command -v "$c")"; break; fi
done
if [ -z "$PY" ]; then echo "error: no python with torch found (tried \$PYTHON, python3, /opt/torch/.venv/bin/python3, python)"; exit 1; fi

# rae_bench from this checkout, with no install: the repository root on PYTHONPATH and a `rae-bench`
# command (what the Snakefile's rules call) that runs `python -m rae_bench` with this Python.
printf '#!/bin/sh\nexec "%s" -m rae_bench "$@"\n' "$PY" > "$WORK/bin/rae-bench"
chmod +x "$WORK/bin/rae-bench"
export PATH="$WORK/bin:$PATH" PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg RAE_BENCH_RESULTS="$WORK/results"
export ROOT OUT WORK SITE PY DEV SMOKE CORES

# step NUM NAME BOX FUNCTION: run FUNCTION under timeout, its output in $OUT/NUM_NAME.log, a line in steps.tsv.
step() {
  local num="$1" name="$2" box="$3" fn="$4"
  local log="$OUT/${num}_${name}.log"
  if [[ " $STEPS " != *" $num "* ]]; then
    printf '%s\t%s\tnot asked (STEPS)\t-\t%s\n' "$num" "$name" "$box" >> "$WORK/steps.tsv"; return
  fi
  local left=$(( BUDGET - (SECONDS - START) - RESERVE ))
  local limit=$(( box < left ? box : left ))
  if [ "$limit" -lt 10 ]; then
    echo "step $num ($name): skipped, the session's budget of ${BUDGET} s is spent" | tee "$log"
    printf '%s\t%s\tskipped: budget spent\t0\t%s\n' "$num" "$name" "$box" >> "$WORK/steps.tsv"; return
  fi
  echo "== step $num ($name), time box ${limit} s, log $log"
  local t0=$SECONDS
  timeout -k 10 "$limit" bash -c "$fn" > "$log" 2>&1
  local rc=$? secs=$(( SECONDS - t0 )) status
  case $rc in
    0) status=ok ;;
    124|137) status="TIMED OUT after ${limit} s" ;;
    *) status="failed (rc $rc)" ;;
  esac
  echo "   $status in ${secs} s; last lines:"; tail -n 4 "$log" | sed 's/^/   | /'
  printf '%s\t%s\t%s\t%s\t%s\n' "$num" "$name" "$status" "$secs" "$limit" >> "$WORK/steps.tsv"
}

step_env() {
  set -x
  timeout 20 nvidia-smi || echo "nvidia-smi: not available here"
  timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv || true
  set +x
  echo "python: $PY"
  local missing
  missing="$("$PY" -c "
import importlib.util as u
print(' '.join(m for m in ('snakemake', 'pytorch_fid', 'jsonschema') if u.find_spec(m) is None))")"
  if [ -z "$missing" ]; then
    echo "snakemake, pytorch_fid and jsonschema import here: nothing to install"
  elif ls "$ROOT"/.gpu_carry/whl/*.whl >/dev/null 2>&1; then
    echo "missing: $missing; installing the carried wheels (.gpu_carry/whl, no index) into $SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "$ROOT"/.gpu_carry/whl/*.whl || echo "ERROR: installing the carried wheels failed"
  else
    echo "missing: $missing, and no carried wheels (.gpu_carry/whl): trying pip for at most 25 s"
    mapfile -t pins < <(grep -v '^#' "$ROOT/benchmarks/gpu_wheels.txt" | awk 'NF {print $1}')
    if ! timeout 25 "$PY" -m pip install -q --no-deps --no-cache-dir --timeout 5 --retries 0 --target "$SITE" \
        "${pins[@]}"; then
      echo "NO PACKAGE REGISTRY: pip reached no index and no wheels were carried, so $missing stay missing;"
      echo "  steps that need them fail (snakemake: step 2; pytorch_fid: steps 2-5; jsonschema: steps 2-3)."
      echo "  Fix: run 'bash benchmarks/gpu_pack.sh' on a machine with PyPI, then call the device with"
      echo "  carry=[\".gpu_carry\"]. Going on with $PY as it is."
    fi
  fi
  "$PY" benchmarks/gpu_session.py env --out "$WORK/env.json"
}

step_dag() {
  "$PY" benchmarks/gpu_session.py config --device "$DEV" --work "$WORK" $([ "$SMOKE" = 1 ] && echo --smoke) || return 1
  mkdir -p "$WORK/dag" && cp "$WORK/tiny_session.yaml" "$WORK/dag/tiny.yaml"
  local t0 rc wall
  t0=$(date +%s.%N)
  # targets before --configfile: Snakemake reads every word after it as a config file
  "$PY" -m snakemake -s "$ROOT/Snakefile" -d "$WORK/dag" --cores "$CORES" tables/table3.tex \
    --configfile "$WORK/dag/tiny.yaml"
  rc=$?
  wall=$("$PY" -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$t0")
  echo "snakemake rc $rc, wall ${wall} s"
  [ -f "$WORK/dag/tables/table3.csv" ] && head -n 5 "$WORK/dag/tables/table3.csv"
  "$PY" benchmarks/gpu_session.py dag-report --dir "$WORK/dag" --wall "$wall" --rc "$rc" --out "$WORK/results/dag.json"
  return $rc
}

step_determinism() {
  [ -f "$WORK/tiny_session.yaml" ] || "$PY" benchmarks/gpu_session.py config --device "$DEV" --work "$WORK" \
    $([ "$SMOKE" = 1 ] && echo --smoke) || return 1
  local ds repeats=2 model=rae_l2; ds=$(cat "$WORK/determinism_dataset")
  [ "$SMOKE" = 1 ] && { repeats=1; model=ae; }  # smoke: one run and the CPU one (each chain is 4 processes)
  "$PY" benchmarks/gpu_determinism.py --config config/config.yaml --config "$WORK/tiny_session.yaml" \
    --config "$WORK/determinism_overlay.yaml" --dataset "$ds" --model "$model" --sampler gmm --repeats "$repeats" \
    --device "$DEV" --cpu-reference --parallel --work "$WORK/determinism" --out "$WORK/results/gpu_determinism.json"
}

step_hardware() {
  if [ "$SMOKE" = 1 ]; then
    "$PY" benchmarks/hardware.py --devices cpu --arch tiny --steps 1 --repeats 1 --mm-size 256 --profile-steps 1 \
      --name hardware_gpu
    "$PY" benchmarks/plan_vs_device.py --device cpu --run ae --steps 1 --warmup 1
  else
    "$PY" benchmarks/hardware.py --devices cuda --datasets mnist,celeba --cuda-steps 20 --repeats 3 \
      --name hardware_gpu
    "$PY" benchmarks/plan_vs_device.py --device cuda --dataset mnist --run rae_l2 --steps 30
  fi
}

step_fid() {
  if [ "$SMOKE" = 1 ]; then
    "$PY" benchmarks/gpu_fid.py --device cpu --n 4 --size 32 --repeats 1 --tf32 off --no-cli --no-sqrtm \
      --workers 0 --batch-size 4 --pfid-batch-size 4 --work "$WORK/fid"
  else
    "$PY" benchmarks/gpu_fid.py --n 2000 --size 64 --repeats 3 --tf32 both --work "$WORK/fid"
  fi
}
export -f step_env step_dag step_determinism step_hardware step_fid

echo "rae_bench GPU session: $([ "$SMOKE" = 1 ] && echo 'CPU SMOKE RUN (device cpu, tiny sizes)' || echo "device $DEV")," \
     "budget ${BUDGET} s, steps: $STEPS; python $PY; out $OUT; scratch $WORK"
step 1 env 50 step_env
step 2 dag "$([ "$SMOKE" = 1 ] && echo 120 || echo 140)" step_dag
step 3 determinism "$([ "$SMOKE" = 1 ] && echo 150 || echo 120)" step_determinism
step 4 hardware 110 step_hardware
step 5 fid "$([ "$SMOKE" = 1 ] && echo 120 || echo 130)" step_fid

echo "== summary ($(( SECONDS - START )) s so far)"
timeout 60 "$PY" benchmarks/gpu_session.py summary --work "$WORK" --out "$OUT" $([ "$SMOKE" = 1 ] && echo --smoke)
echo "== done in $(( SECONDS - START )) s; files in $OUT:"; ls -la "$OUT"
[ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
