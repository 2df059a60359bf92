#!/usr/bin/env bash
# distributed.sh — figures for scheduler + 2 workers on loopback with the
# local backend: sweeps of one-step and two-step trials end to end through
# xpsubmit --wait, per-trial latency inside the scheduler, and scheduler
# RSS with 100,000 queued trials. Prints figures; asserts nothing.
# Usage: bench/distributed.sh [BUILD_DIR] (default build-release)
#        SLOTS=N: slots per worker (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build-release}
slots=${SLOTS:-1}
work=$(mktemp -d /tmp/xp-bench-dist.XXXXXX)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ep=tcp://127.0.0.1:$port
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$b/scheduler/xp-scheduler" --bind "$ep" --backend "$work/store" \
    --log-level warning >"$work/sched.log" 2>&1 &
sched=$!
pids+=($sched)
for i in 1 2; do
    "$b/worker/xp-worker" --connect "$ep" --slots "$slots" --log-level warning \
        --plugin "$b/examples/simple_experiment.so" \
        --plugin "$b/examples/quickstart.so" \
        --plugin "$b/examples/sleep_experiment.so" \
        --plugin "$b/examples/fanout_experiment.so" >"$work/w$i.log" 2>&1 &
    pids+=($!)
done
sleep 1

echo "scheduler + 2 workers x $slots slot(s), local backend"
sweep() { # label, experiment, args...
    local label=$1
    shift
    local t0 t1
    t0=$(date +%s.%N)
    "$b/cli/xpsubmit" -s "$ep" "$@" --wait >/dev/null 2>"$work/sweep.err"
    t1=$(date +%s.%N)
    /usr/bin/python3 -c "import sys; n=int(sys.argv[1]); dt=float(sys.argv[3])-float(sys.argv[2]); print(f'{sys.argv[4]}: {n} trials in {dt:.2f} s = {n/dt:.0f} trials/s')" \
        10000 "$t0" "$t1" "$label"
}
sweep "one-step trials (simple_experiment)" simple_experiment_pj \
    'a=range(0,100)' 'b=range(0,100)'
sweep "two-step trials (quickstart)" quickstart_pj \
    'a=range(1,101)' 'b=range(1,101)'

# Task dispatch without per-trial records: trials of 1,001 tasks each
# (1,000 independent parts and their sum).
t0=$(date +%s.%N)
"$b/cli/xpsubmit" -s "$ep" fanout_pj 'x=range(0,20)' --wait >/dev/null 2>"$work/fan.err"
t1=$(date +%s.%N)
/usr/bin/python3 -c "import sys; n=20*1001; dt=float(sys.argv[2])-float(sys.argv[1]); print(f'tasks of fan-out trials (20 x 1,001 tasks): {n} tasks in {dt:.2f} s = {n/dt:.0f} tasks/s')" "$t0" "$t1"

# Latency: one trial at a time; finished - started inside the scheduler.
for i in $(seq 1 50); do
    "$b/cli/xpsubmit" -s "$ep" simple_experiment_pj a=$i b=0 --wait >/dev/null 2>&1
done
"$b/cli/xp" history simple_experiment_pj --backend "$work/store" --format json |
    /usr/bin/python3 -c '
import json, sys, datetime, statistics
h = json.load(sys.stdin)[-50:]
def t(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
lat = [(t(x["finished"]) - t(x["started"])).total_seconds() * 1000 for x in h if "started" in x]
if lat: print(f"latency (recorded queued -> recorded result), 50 sequential trials: median {statistics.median(lat):.2f} ms")
else: print("latency: started field not in json output")'

# Memory: 100,000 queued trials behind two long ones.
"$b/cli/xpsubmit" -s "$ep" sleep_pj 'seconds=30' >/dev/null
"$b/cli/xpsubmit" -s "$ep" sleep_pj 'seconds=30' >/dev/null
rss0=$(ps -o rss= -p $sched)
"$b/cli/xpsubmit" -s "$ep" sleep_pj 'seconds=range(1000,101000)' >/dev/null
rss1=$(ps -o rss= -p $sched)
echo "scheduler RSS: ${rss0} KiB before, ${rss1} KiB with 100,000 queued trials ($(( (rss1 - rss0) * 1024 / 100000 )) bytes per queued trial)"
