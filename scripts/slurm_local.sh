#!/usr/bin/env bash
# Proof that the workflow runs through SLURM: a single-node SLURM cluster on this
# machine (Debian's slurmctld + slurmd + munge, no accounting database), the tiny
# test DAG (tests/configs/tiny.yaml) submitted through profiles/slurm with
# snakemake-executor-plugin-slurm, its outputs checked, and the cluster stopped
# again, also on failure.
#
#   sudo scripts/slurm_local.sh          # needs root: apt-get, munged, slurmd
#
# Summary line on success (jobs_submitted: sbatch calls in the snakemake log; slurm_completed:
# jobs SLURM itself recorded as COMPLETED):
#   SLURM-PROOF OK: jobs_submitted=N slurm_completed=N rows=20 run_s=... wall_s=... apt_s=... pip_s=...
#
# Environment (all optional):
#   RAE_SLURM_WORKDIR    where the DAG runs (default: a new mktemp -d folder, kept afterwards)
#   RAE_SLURM_STATE      cluster state, spool, logs (default /var/tmp/rae_bench_slurm; reset each run);
#                        the config itself is /etc/slurm/slurm.conf (an existing one not written
#                        by this script is never overwritten)
#   RAE_SLURM_PARTITION  partition name (default debug)
#   RAE_SLURM_TIMEOUT    seconds allowed for the snakemake run (default 1800)
#   RAE_BENCH_DATA       data root holding MNIST/raw (default ../shared/data next to the repo)
#   PYTHON               interpreter that has snakemake and rae_bench (default python3)
#
# Container notes (no systemd, no cgroup delegation): daemons are started by hand, not as
# services; ProctrackType=proctrack/linuxproc, TaskPlugin=task/none and
# JobAcctGatherType=jobacct_gather/none, so SLURM needs no cgroups; accounting is off
# (AccountingStorageType=accounting_storage/none, so no slurmdbd/MariaDB) and the plugin
# tracks jobs with squeue (slurm-status-command: squeue; MinJobAge=600 keeps finished
# jobs visible to squeue). jobcomp/filetxt gives SLURM's own count of finished jobs.
set -euo pipefail

PLUGIN_VERSION=2.8.0   # snakemake-executor-plugin-slurm pin; keep in step with profiles/slurm/config.yaml
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
PARTITION=${RAE_SLURM_PARTITION:-debug}
STATE=${RAE_SLURM_STATE:-/var/tmp/rae_bench_slurm}
RUN_TIMEOUT=${RAE_SLURM_TIMEOUT:-1800}
DATA_ROOT=${RAE_BENCH_DATA:-$REPO/../shared/data}
# The default path: snakemake-executor-plugin-slurm-jobstep drops SLURM_CONF from the environment
# of the srun it starts inside each job, so a slurm.conf elsewhere is not found there.
CONF=/etc/slurm/slurm.conf
MARK="# written by scripts/slurm_local.sh"
unset SLURM_CONF

T0=$(date +%s)
APT_S=0
PIP_S=0
STARTED_MUNGED=0
POLICY_CREATED=0
SM_PID=""

log() { printf '[slurm_local %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*"; exit 1; }

# ---- stop the cluster: runs on every exit ------------------------------------------------
kill_pidfile() {  # kill_pidfile FILE NAME: end the daemon whose pid FILE holds, if it still runs
    local file=$1 name=$2 pid i
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        log "stopping $name (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

stop_cluster() {
    local ids
    if grep -qs "^$MARK" "$CONF" && command -v squeue >/dev/null 2>&1; then
        ids=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
        if [ -n "$ids" ]; then
            log "cancelling leftover jobs: $(echo $ids)"
            # shellcheck disable=SC2086
            timeout 10 scancel $ids 2>/dev/null || true
            sleep 2
        fi
    fi
    kill_pidfile "$STATE/slurmd.pid" slurmd
    kill_pidfile "$STATE/slurmctld.pid" slurmctld
    if [ "$STARTED_MUNGED" = 1 ]; then
        kill_pidfile "$STATE/munged.pid" munged
    fi
    if [ "$POLICY_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}

on_exit() {
    local rc=$?
    trap - EXIT
    set +e
    if [ -n "$SM_PID" ] && kill -0 "$SM_PID" 2>/dev/null; then
        log "stopping snakemake (pid $SM_PID; it cancels its SLURM jobs)"
        kill -INT "$SM_PID" 2>/dev/null
        for _ in $(seq 1 60); do kill -0 "$SM_PID" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$SM_PID" 2>/dev/null && kill -9 "$SM_PID" 2>/dev/null
    fi
    stop_cluster
    if [ "$rc" -ne 0 ]; then
        log "FAILED (exit $rc); cluster logs in $STATE/log, run folder ${WORK:-unset}"
        for f in "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log"; do
            [ -f "$f" ] && { echo "--- tail $f"; tail -n 15 "$f"; }
        done
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, munged and slurmd need it): sudo $0"
[ -d "$DATA_ROOT/MNIST/raw" ] || die "real MNIST not found under $DATA_ROOT/MNIST/raw (set RAE_BENCH_DATA)"
"$PY" -c "import snakemake, rae_bench" 2>/dev/null || die "$PY cannot import snakemake and rae_bench (pip install -e .)"

# A previous run killed hard may have left our daemons (pid files in $STATE): end them first.
mkdir -p "$STATE"
kill_pidfile "$STATE/slurmd.pid" "stale slurmd"
kill_pidfile "$STATE/slurmctld.pid" "stale slurmctld"
kill_pidfile "$STATE/munged.pid" "stale munged"

# ---- 1. packages ---------------------------------------------------------------------------
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null; then
    log "SLURM packages already installed: slurm $(dpkg-query -W -f='${Version}' slurmctld 2>/dev/null || echo '(not from apt)')"
else
    log "installing slurmctld slurmd slurm-client munge (apt)"
    t=$(date +%s)
    # no init scripts may start daemons during the install: this script starts them itself
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        POLICY_CREATED=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    if [ "$POLICY_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; POLICY_CREATED=0; fi
    APT_S=$(( $(date +%s) - t ))
    log "apt done in ${APT_S}s: slurm $(dpkg-query -W -f='${Version}' slurmctld)"
fi

have=$("$PY" -c "import importlib.metadata as m; print(m.version('snakemake-executor-plugin-slurm'))" 2>/dev/null || true)
if [ "$have" = "$PLUGIN_VERSION" ]; then
    log "snakemake-executor-plugin-slurm $have already installed"
else
    log "installing snakemake-executor-plugin-slurm==$PLUGIN_VERSION (pip; found: ${have:-none})"
    t=$(date +%s)
    "$PY" -m pip install -q --disable-pip-version-check "snakemake-executor-plugin-slurm==$PLUGIN_VERSION"
    PIP_S=$(( $(date +%s) - t ))
    log "pip done in ${PIP_S}s"
fi

# ---- 2. munge ------------------------------------------------------------------------------
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running: reusing it"
else
    if [ ! -s /etc/munge/munge.key ]; then
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then mungekey --create --force; else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
    fi
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged   # daemonises; pid in /run/munge/munged.pid
    STARTED_MUNGED=1
    for _ in $(seq 1 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
    pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
    if [ -n "$pid" ]; then echo "$pid" >"$STATE/munged.pid"; fi
    munge -n | unmunge >/dev/null || die "munged does not answer"
    log "munged started (pid ${pid:-?})"
fi

# ---- 3. slurm.conf for this host -----------------------------------------------------------
NODE=$(hostname -s)
CPUS=$(nproc)
MEM=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
[ -n "$MEM" ] || MEM=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
[ "$MEM" -ge 4000 ] || die "RealMemory=${MEM} MB < the 4000 MB (mem_mb) each rule asks for: no job could start"
if [ -e "$CONF" ] && ! grep -qs "^$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script: refusing to overwrite a real cluster's config"
fi
rm -rf "$STATE/state" "$STATE/spool" "$STATE/log" "$STATE/jobcomp.txt"
mkdir -p "$STATE/state" "$STATE/spool" "$STATE/log"
mkdir -p "$(dirname "$CONF")"
cat >"$CONF" <<EOF
$MARK: one node (this host), no cgroups, no accounting; state in $STATE
ClusterName=raebench
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.txt
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
log "wrote $CONF (node $NODE, CPUs=$CPUS, RealMemory=$MEM, partition $PARTITION)"

# ---- 4. daemons ----------------------------------------------------------------------------
slurmctld -f "$CONF" -i   # -i: ignore (absent) saved state; daemonises, pid in $STATE/slurmctld.pid
for _ in $(seq 1 30); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 1; done
scontrol ping | grep -q UP || die "slurmctld did not come up"
slurmd -f "$CONF" -N "$NODE"
state=""
for _ in $(seq 1 60); do
    state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n 1)
    [ "$state" = idle ] && break
    case $state in down*|drain*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;; esac
    sleep 1
done
[ "$state" = idle ] || die "node $NODE is '$state', not idle"
log "cluster up: $(sinfo -h -o '%P %a %D %T %c CPUs %m MB' | head -n 1)"

# ---- 5. the tiny DAG through the profile ---------------------------------------------------
WORK=${RAE_SLURM_WORKDIR:-$(mktemp -d /tmp/rae_slurm_wd.XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
rm -rf "$WORK/results" "$WORK/tables" "$WORK/.snakemake" "$WORK/profile"
# tiny.yaml with data_root pointing at the real MNIST, as tests/test_workflow.py does; and a
# test profile derived from profiles/slurm: everything inherited except the partition (ours),
# the account (none: this cluster has no accounting) and local-speed polling settings
"$PY" - "$REPO" "$WORK" "$DATA_ROOT" "$PARTITION" <<'EOF'
import sys
from pathlib import Path
import yaml
repo, work, data_root, partition = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
cfg = yaml.safe_load((repo / "tests/configs/tiny.yaml").read_text())
cfg["data_root"] = str(Path(data_root).resolve())
(work / "tiny.yaml").write_text(yaml.safe_dump(cfg))
prof = yaml.safe_load((repo / "profiles/slurm/config.yaml").read_text())
prof["default-resources"]["slurm_partition"] = partition
prof["default-resources"].pop("slurm_account", None)
prof.update({
    "latency-wait": 5,                             # local disk: outputs are there at once
    "slurm-status-command": "squeue",              # no accounting here, so no sacct
    "slurm-init-seconds-before-status-checks": 5,  # poll often: the jobs take seconds
    "seconds-between-status-checks": 5,
    "slurm-keep-successful-logs": True,
})
(work / "profile").mkdir()
(work / "profile/config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
EOF
log "running the tiny DAG in $WORK through $WORK/profile (derived from profiles/slurm)"
t=$(date +%s)
# In the background plus `wait`, so that a TERM/INT to this script is handled at once (the trap
# stops snakemake, which scancels its jobs, then the cluster). Targets before --configfile:
# Snakemake reads every word after it as a config file.
( cd "$WORK" && exec timeout "$RUN_TIMEOUT" "$PY" -m snakemake -s "$REPO/Snakefile" -d "$WORK" \
    --profile "$WORK/profile" tables/table3.tex --configfile "$WORK/tiny.yaml" ) >"$WORK/snakemake.log" 2>&1 &
SM_PID=$!
SM_RC=0
wait "$SM_PID" || SM_RC=$?
SM_PID=""
RUN_S=$(( $(date +%s) - t ))
[ "$SM_RC" -eq 0 ] || { tail -n 40 "$WORK/snakemake.log"; die "snakemake exited $SM_RC after ${RUN_S}s (log: $WORK/snakemake.log)"; }

# ---- 6. check and count ----------------------------------------------------------------------
ROWS=$("$PY" - "$WORK/tables/table3.csv" <<'EOF'
import sys
import numpy as np
import pandas as pd
df = pd.read_csv(sys.argv[1])
bad = df[~np.isfinite(pd.to_numeric(df["ours"], errors="coerce"))]
if len(df) == 0 or len(bad):
    sys.exit(f"table3.csv: {len(df)} rows, non-finite 'ours' in:\n{bad}")
print(len(df))
EOF
) || die "output check failed"
[ -f "$WORK/tables/table3.tex" ] || die "tables/table3.tex missing"
SUBMITTED=$(grep -c 'has been submitted with SLURM jobid' "$WORK/snakemake.log" || true)
COMPLETED=$(grep -c 'JobState=COMPLETED' "$STATE/jobcomp.txt" 2>/dev/null || true)
FAILED=$(grep -c 'JobState=' "$STATE/jobcomp.txt" 2>/dev/null || true)
FAILED=$(( FAILED - COMPLETED ))
[ "$SUBMITTED" -gt 0 ] || die "no job went through sbatch (see $WORK/snakemake.log)"
BY_RULE=$(grep 'has been submitted with SLURM jobid' "$WORK/snakemake.log" | grep -o 'slurm_logs/rule_[A-Za-z0-9_]*' \
    | sed 's#slurm_logs/rule_##' | sort | uniq -c | awk '{printf "%s%s=%s", sep, $2, $1; sep=" "}' || true)
WALL_S=$(( $(date +%s) - T0 ))
log "table3.csv: $ROWS rows, every 'ours' finite; table3.tex written"
log "sbatch submissions (snakemake log): $SUBMITTED ($BY_RULE); SLURM jobcomp: $COMPLETED completed, $FAILED not completed"
log "snakemake run ${RUN_S}s; whole script ${WALL_S}s (apt ${APT_S}s, pip ${PIP_S}s); run folder $WORK"
echo "SLURM-PROOF OK: jobs_submitted=$SUBMITTED slurm_completed=$COMPLETED rows=$ROWS run_s=$RUN_S wall_s=$WALL_S apt_s=$APT_S pip_s=$PIP_S"
