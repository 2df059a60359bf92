#!/usr/bin/env bash
# slurm.sh — time from `xp slurm submit --workers N` to all N xp-workers
# registered with the scheduler, on a one-node Slurm cluster of its own
# (munged, slurmctld -D, slurmd -D in a temporary directory, own ports; as
# root, with Debian's slurm-wlm and munge). Also the time sbatch takes to
# answer. Prints figures of RUNS runs with their median; asserts nothing.
# Usage: bench/slurm.sh [BUILD_DIR] (default build-release)
#        WORKERS=N (default 2), RUNS=R (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
b=$(cd "${1:-build-release}" && pwd)
workers=${WORKERS:-2}
runs=${RUNS:-5}
[ "$(id -u)" -eq 0 ] || { echo "slurm.sh: needs root (slurmd)" >&2; exit 2; }
for p in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sinfo; do
    [ -x "$p" ] || { echo "slurm.sh: $p missing (apt install slurm-wlm munge)" >&2; exit 2; }
done
work=$(mktemp -d /tmp/xp-bench-slurm.XXXXXX)
chmod 711 "$work"
pids=()
cleanup() {
    [ -f "$work/slurm.conf" ] && SLURM_CONF=$work/slurm.conf scancel --user=root 2>/dev/null || true
    sleep 1
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }

mkdir -m 700 "$work/state" "$work/spool"
head -c 1024 /dev/urandom >"$work/munge.key"
chmod 400 "$work/munge.key"
/usr/sbin/munged -F --key-file="$work/munge.key" --socket="$work/munge.socket" \
    --pid-file="$work/munged.pid" --log-file="$work/munged.log" \
    --seed-file="$work/munge.seed" >"$work/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/munge.socket" ] && break; sleep 0.05; done
cat >"$work/slurm.conf" <<EOF
ClusterName=xpbench
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge.socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
KillWait=2
SlurmdParameters=config_overrides
NodeName=xpnode NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$((workers > 4 ? workers : 4)) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=xpnode Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf
/usr/sbin/slurmctld -D -f "$SLURM_CONF" >/dev/null 2>&1 &
pids+=($!)
/usr/sbin/slurmd -D -N xpnode -f "$SLURM_CONF" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 150); do
    [ "$(sinfo --noheader --format=%t 2>/dev/null)" = idle ] && break
    sleep 0.2
done
[ "$(sinfo --noheader --format=%t 2>/dev/null)" = idle ] ||
    { echo "slurm.sh: the node did not become idle" >&2; exit 1; }

ep=tcp://127.0.0.1:$(free_port)
"$b/scheduler/xp-scheduler" --bind "$ep" --backend "$work/store" \
    >"$work/sched.log" 2>&1 &
pids+=($!)
sleep 0.5

echo "one-node Slurm $(sinfo --version | cut -d' ' -f2), $workers worker(s) per job, $runs run(s)"
results=()
for r in $(seq 1 "$runs"); do
    before=$(grep -c "connected with" "$work/sched.log" || true)
    t0=$(now)
    job=$("$b/cli/xp" slurm submit --workers "$workers" --worker "$b/worker/xp-worker" \
        --connect "$ep" --plugin "$b/examples/sleep_experiment.so" --slots 1 \
        --output "$work/w-%A_%a.out" --time 00:10:00)
    t1=$(now)
    until [ "$(grep -c "connected with" "$work/sched.log" || true)" -ge $((before + workers)) ]; do
        sleep 0.01
    done
    t2=$(now)
    results+=("$(/usr/bin/python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.3f} {float(sys.argv[3])-float(sys.argv[1]):.3f}')" "$t0" "$t1" "$t2")")
    echo "run $r: job $job: sbatch answered in ${results[-1]% *} s, $workers worker(s) registered after ${results[-1]#* } s"
    "$b/cli/xp" slurm cancel "$job"
    for _ in $(seq 200); do
        [ -z "$(squeue --noheader --jobs "$job" 2>/dev/null)" ] && break
        sleep 0.1
    done
done
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import statistics, sys
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
for i, what in ((0, "sbatch answered"), (1, "all workers registered")):
    v = [r[i] for r in rows]
    print(f"{what}: median {statistics.median(v):.3f} s, range {min(v):.3f}-{max(v):.3f} s")
'
