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

# Versions: the project's pins (pyproject.toml) and the versions pip resolved for them here.
# Pure-Python unless marked; compiled ones are fetched for cp312 manylinux x86-64.
WHEELS=(
  pytorch-fid==0.3.0
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==0.30.0  # rpds-py: compiled
  snakemake==9.27.1
  snakemake-interface-common==1.23.0 snakemake-interface-executor-plugins==9.4.0
  snakemake-interface-logger-plugins==2.1.0 snakemake-interface-report-plugins==1.3.0
  snakemake-interface-scheduler-plugins==2.0.2 snakemake-interface-storage-plugins==4.4.1
  annotated-types==0.7.0 argparse-dataclass==2.0.0 conda-inject==1.3.2 configargparse==1.9.0
  docutils==0.22.4 dpath==2.2.0 fastjsonschema==2.22.3 gitdb==4.0.12 gitpython==3.2.1
  humanfriendly==10.0 jupyter-core==5.9.1 nbformat==5.11.1 platformdirs==4.14.9 pulp==3.3.2
  smart-open==7.7.1 smmap==5.0.3 tenacity==9.2.1 throttler==1.2.3 traitlets==5.15.0 typing-inspection==0.4.2
  yte==1.9.4 sqlmodel==0.0.37
  pydantic==2.13.4 pydantic-core==2.46.4 immutables==0.21 greenlet==3.5.6 sqlalchemy==2.0.58  # compiled but pydantic
)
SDIST_ONLY=(connection-pool==0.0.3)  # no wheel on PyPI: built here (pure Python)

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
