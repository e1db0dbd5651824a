#!/usr/bin/env bash
# Prepare, on THIS machine (it reaches PyPI), what benchmarks/gpu_session.sh needs on the lent GPU machine,
# which reaches no registry and gets only the repository's working tree (the ../shared beside a checkout
# does not travel). Writes the gitignored folder .gpu_carry/ at the repository root:
#
#   .gpu_carry/whl/         wheels (CPython 3.12, x86-64) of what the machine's image lacks: pytorch-fid,
#                           jsonschema and snakemake with their dependencies (the image has torch, numpy, pandas,
#                           scipy, scikit-learn, matplotlib, pyyaml, ... : see the device tool's KINDS.md)
#   .gpu_carry/data/MNIST/raw/   the four MNIST .gz files (11.6 MB), for the tiny DAG's MNIST rows
#
# Then, from the repository root, the device call is:
#   run(command="bash benchmarks/gpu_session.sh", carry=[".gpu_carry"], timeout_s=600)
# The tree plus .gpu_carry must stay under the tool's 64 MiB; this script prints the total.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="$ROOT/.gpu_carry"
PY="${PYTHON:-python3}"
DATA_SRC="${DATA_SRC:-$ROOT/../shared/data}"

# The list (one pinned name a line, "sdist" after those PyPI has no wheel of): benchmarks/gpu_wheels.txt.
mapfile -t WHEELS < <(grep -v '^#' "$ROOT/benchmarks/gpu_wheels.txt" | grep -v sdist | awk 'NF {print $1}')
mapfile -t SDIST_ONLY < <(grep -v '^#' "$ROOT/benchmarks/gpu_wheels.txt" | grep sdist | awk '{print $1}')

mkdir -p "$CARRY/whl" "$CARRY/data/MNIST/raw"
rm -f "$CARRY"/whl/*.whl
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_5_x86_64)
echo "downloading $(( ${#WHEELS[@]} + ${#SDIST_ONLY[@]} )) wheels for CPython 3.12 x86-64 into $CARRY/whl"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d "$CARRY/whl" "${WHEELS[@]}" 2> >(grep -v "is ignored: it is neither" >&2)
"$PY" -m pip wheel -q --no-deps -w "$CARRY/whl" "${SDIST_ONLY[@]}" 2> >(grep -v "is ignored: it is neither" >&2)
n=$(ls "$CARRY"/whl/*.whl | wc -l)
want=$(( ${#WHEELS[@]} + ${#SDIST_ONLY[@]} ))
[ "$n" -eq "$want" ] || { echo "error: expected $want wheels, got $n" >&2; exit 1; }

if [ -d "$DATA_SRC/MNIST/raw" ]; then
  cp -f "$DATA_SRC"/MNIST/raw/*.gz "$CARRY/data/MNIST/raw/"
  chmod u+w "$CARRY"/data/MNIST/raw/*
  echo "copied MNIST from $DATA_SRC/MNIST/raw"
else
  echo "warning: no MNIST at $DATA_SRC/MNIST/raw: the GPU DAG step will run the synthetic dataset only" >&2
fi

tree=$(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carry=$(du -sb "$CARRY" | cut -f1)
total=$((tree + carry))
"$PY" -c "import sys; t, c = (int(a) / 2**20 for a in sys.argv[1:]); print(f'working tree {t:.1f} MiB + .gpu_carry {c:.1f} MiB = {t + c:.1f} MiB (the device tool takes 64 MiB)')" "$tree" "$carry"
[ "$total" -lt $((62 * 1048576)) ] || { echo "error: over the 64 MiB the device tool carries" >&2; exit 1; }
echo 'ready: run(command="bash benchmarks/gpu_session.sh", carry=[".gpu_carry"], timeout_s=600)'
