#!/usr/bin/env bash
# anchors.sh — xp beside its anchors in one run: daskperiment 0.5 and
# dask.distributed (2 worker processes) on the graphs and sizes of
# bench/trials, bench/storage and bench/distributed.sh; prints each figure,
# xp's, and the ratio. Prints figures; asserts nothing.
# Usage: bench/anchors.sh [BUILD_DIR] (default build-release)
#        SLOTS=N: slots per xp worker = threads per dask worker (default 1)
#        QUICK=1: smaller sizes (a trial run of the script)
#        XP_ANCHORS_VENV: the virtual environment (default
#        ~/.cache/xp-anchors/venv, made from bench/anchors/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build-release}
slots=${SLOTS:-1}
venv=${XP_ANCHORS_VENV:-$HOME/.cache/xp-anchors/venv}
req=bench/anchors/requirements.txt
here=$PWD

for f in bench/trials bench/storage bench/submit_latency scheduler/xp-scheduler \
    worker/xp-worker cli/xpsubmit examples/simple_experiment.so \
    examples/quickstart.so examples/fanout_experiment.so; do
    if [ ! -e "$b/$f" ]; then
        echo "anchors: $b/$f is missing: meson setup $b -Dbuildtype=release && ninja -C $b" >&2
        exit 1
    fi
done

# The virtual environment, made once and again when the pins change.
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
    echo "anchors: installing $req into $venv" >&2
    rm -rf "$venv"
    if ! /usr/bin/python3 -m venv "$venv"; then
        echo "anchors: cannot make a virtual environment: apt-get install python3-venv" >&2
        exit 1
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
    cp "$req" "$venv/requirements.txt"
fi
py=("$venv/bin/python" -W ignore)

if [ "${QUICK:-}" = 1 ]; then
    dp_sizes=(200 1000) xp_more=(10000) sweep_n=2500 fan_xp=5 fan_dask=2
    lat_n=200 storage_args=(--n 10000 --metric-trials 1000)
else
    dp_sizes=(200 1000 3000) xp_more=(10000 100000) sweep_n=10000 fan_xp=20
    fan_dask=5 lat_n=1000 storage_args=()
fi

work=$(mktemp -d /tmp/xp-bench-anchors.XXXXXX)
pids=()
cleanup() {
    [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (y > 0) printf "%.1f", x / y; else print "-" }'; }
row() { printf '%-46s %14s %14s %9s\n' "$@"; }

echo "xp and its anchors, one run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
    "xp $(git rev-parse --short HEAD 2>/dev/null || echo '?'), build $b"
echo "anchors: daskperiment $("${py[@]}" -c 'import importlib.metadata as m; print(m.version("daskperiment"))')," \
    "dask $("${py[@]}" -c 'import dask; print(dask.__version__)')," \
    "distributed $("${py[@]}" -c 'import distributed; print(distributed.__version__)')," \
    "pandas $("${py[@]}" -c 'import pandas; print(pandas.__version__)')," \
    "Python $("${py[@]}" -c 'import platform; print(platform.python_version())')"
echo "load average at start: $(load)"
echo

# ---- local trials: the quickstart graph, fresh local store, no metric
echo "== local trials: quickstart graph (persisted prepare_data), fresh store, one process (load $(load))"
row "figure" "daskperiment" "xp" "xp/anchor"
declare -A dp_size dp_alloc
last_dp=0
for n in "${dp_sizes[@]}"; do
    mkdir -p "$work/dp-$n"
    read -r _ _ _ dp_rate dp_tail dp_size[$n] dp_alloc[$n] < <(cd "$work/dp-$n" &&
        "${py[@]}" "$here/bench/anchors/daskperiment_trials.py" --n "$n")
    read -r _ _ xp_rate xp_tail < <("$b/bench/trials" --n "$n" | awk -v n="$n" '$1 == n')
    row "trials/s at $n trials" "$dp_rate" "$xp_rate" "$(ratio "$xp_rate" "$dp_rate")"
    [ "$n" -le 1000 ] || row "  rate over the last 1000 trials" "$dp_tail" "$xp_tail" \
        "$(ratio "$xp_tail" "$dp_tail")"
    last_dp=$n last_rate=$dp_rate
done
for n in "${xp_more[@]}"; do
    read -r _ _ xp_rate xp_tail < <("$b/bench/trials" --n "$n" | awk -v n="$n" '$1 == n')
    row "trials/s at $n trials (anchor: at $last_dp)" "$last_rate" "$xp_rate" \
        "$(ratio "$xp_rate" "$last_rate")"
    row "  rate over the last 1000 trials" "-" "$xp_tail" "-"
done
echo

# ---- storage: bytes on disk per trial
echo "== storage: bytes on disk per quickstart trial, local store (load $(load))"
"$b/bench/storage" "${storage_args[@]}" >"$work/storage.out"
sed 's/^/  xp: /' "$work/storage.out"
row "figure" "daskperiment" "xp" "anchor/xp"
for n in "${dp_sizes[@]}"; do
    xp_alloc=$(awk -v n="$n" '$1 == n { print $5 }' "$work/storage.out")
    [ -n "$xp_alloc" ] || xp_alloc=$("$b/bench/storage" --n "$n" --metric-trials 1 |
        awk -v n="$n" '$1 == n { print $5 }')
    dpa=$((dp_alloc[$n] / n)) dps=$((dp_size[$n] / n))
    row "bytes/trial at $n, allocated (at rest)" "$dpa" "$xp_alloc" "$(ratio "$dpa" "$xp_alloc")"
    row "  apparent size (daskperiment)" "$dps" "" ""
done
echo

# ---- distributed: xp scheduler + 2 workers, then a dask LocalCluster
echo "== distributed: 2 worker processes x $slots slot(s) on loopback (load $(load))"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ep=tcp://127.0.0.1:$port
"$b/scheduler/xp-scheduler" --bind "$ep" --backend "$work/store" \
    --log-level warning >"$work/sched.log" 2>&1 &
pids+=($!)
for i in 1 2; do
    "$b/worker/xp-worker" --connect "$ep" --slots "$slots" --log-level warning \
        --plugin "$b/examples/simple_experiment.so" \
        --plugin "$b/examples/quickstart.so" \
        --plugin "$b/examples/fanout_experiment.so" >"$work/w$i.log" 2>&1 &
    pids+=($!)
done
sleep 1
now() { date +%s.%N; }
rate() { awk -v n="$1" -v t0="$2" -v t1="$3" 'BEGIN { printf "%.1f", n / (t1 - t0) }'; }
side=$(awk -v n="$sweep_n" 'BEGIN { printf "%d", sqrt(n) + 0.5 }')
sweep_n=$((side * side))
t0=$(now)
"$b/cli/xpsubmit" -s "$ep" simple_experiment_pj "a=range(0,$side)" "b=range(0,$side)" \
    --wait >/dev/null 2>"$work/sweep.err"
xp_one=$(rate "$sweep_n" "$t0" "$(now)")
t0=$(now)
"$b/cli/xpsubmit" -s "$ep" quickstart_pj "a=range(1,$((side + 1)))" "b=range(1,$((side + 1)))" \
    --wait >/dev/null 2>"$work/sweep.err"
xp_two=$(rate "$sweep_n" "$t0" "$(now)")
t0=$(now)
"$b/cli/xpsubmit" -s "$ep" fanout_pj "x=range(0,$fan_xp)" --wait >/dev/null 2>"$work/fan.err"
xp_fan=$(rate $((fan_xp * 1001)) "$t0" "$(now)")
"$b/bench/submit_latency" "$ep" "$lat_n" >"$work/lat.out"
xp_lat=$(awk '$1 == "latency_median_us" { printf "%.3f", $2 / 1000 }' "$work/lat.out")
xp_p90=$(awk '$1 == "latency_p90_us" { printf "%.3f", $2 / 1000 }' "$work/lat.out")
kill "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true
pids=()

(cd "$work" && "${py[@]}" "$here/bench/anchors/distributed_tasks.py" --slots "$slots" \
    --n "$sweep_n" --fanout-trials "$fan_dask" --latency-n "$lat_n") \
    >"$work/dask.out" 2>"$work/dask.err" || {
    cat "$work/dask.err" >&2
    exit 1
}
d() { awk -v k="$1" '$1 == k { print $2 }' "$work/dask.out"; }
row "figure" "dask.distrib." "xp" "xp/anchor"
row "one-step trials/s ($sweep_n, xpsubmit --wait)" "$(d one_step_per_s)" "$xp_one" \
    "$(ratio "$xp_one" "$(d one_step_per_s)")"
row "two-step trials/s ($sweep_n quickstart)" "$(d two_step_per_s)" "$xp_two" \
    "$(ratio "$xp_two" "$(d two_step_per_s)")"
row "fan-out tasks/s (1,001-task graphs)" "$(d fanout_tasks_per_s)" "$xp_fan" \
    "$(ratio "$xp_fan" "$(d fanout_tasks_per_s)")"
echo "  (fan-out graphs: $fan_xp for xp, $fan_dask for dask; 1,001 tasks each)"
row "submit -> result, median ms ($lat_n sequential)" "$(d latency_median_ms)" "$xp_lat" \
    "$(ratio "$(d latency_median_ms)" "$xp_lat")"
row "submit -> result, 90th percentile ms" "$(d latency_p90_ms)" "$xp_p90" \
    "$(ratio "$(d latency_p90_ms)" "$xp_p90")"
echo "  (latency is the client's clock; its ratio is anchor/xp)"
echo
echo "load average at end: $(load)"
