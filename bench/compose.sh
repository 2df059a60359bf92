#!/usr/bin/env bash
# compose.sh — figures for the docker-compose deployment (docker/): the
# time from `compose up` to the first trial recorded, and sweeps of
# one-step trials (simple_experiment) through the compose stack with 2 and
# 4 workers of one slot, beside the same sweeps on bare processes (as
# bench/distributed.sh runs them). The stack is the one tests/deploy/
# brings up: docker/docker-compose.yml with tests/deploy/docker-compose.
# test.yml (FerretDB standing in for mongo:7, host networking, CURVE keys).
# FerretDB over SQLite records ~10 trials/s whatever runs in front of it,
# so the 1,000-trial sweeps run with the scheduler on the local backend
# (in its volume, /var/lib/xp/store), which shows what the containers
# cost, and FerretDB gets one smaller sweep (DB_TRIALS) per worker count.
# Prints figures (median and range of RUNS runs); asserts nothing.
# Usage: bench/compose.sh [BUILD_DIR] (default build-release)
#        RUNS=N (default 3), DB_TRIALS=N (default 200, a multiple of 10),
#        COMPOSE="docker-compose" to pick one
set -euo pipefail
cd "$(dirname "$0")/.."
b=$(cd "${1:-build-release}" && pwd)
runs=${RUNS:-3}
db_trials=${DB_TRIALS:-200}
. tests/deploy/lib.sh
export MONGOC_DISABLE_SHM=1
for f in cli/xp cli/xpsubmit scheduler/xp-scheduler worker/xp-worker \
    examples/simple_experiment.so; do
    [ -e "$b/$f" ] || {
        echo "compose.sh: $b/$f is not built" >&2
        exit 1
    }
done

work=$(mktemp -d /tmp/xp-bench-compose.XXXXXX)
pids=()
ca=()
C=""
cleanup() {
    [ -n "$C" ] && $C down -v --remove-orphans >/dev/null 2>&1 || true
    [ "${#pids[@]}" -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
    [ "${#ca[@]}" -gt 0 ] && rm -f "${ca[@]}"
    deploy_engine_down
    rm -rf "$work"
}
trap cleanup EXIT
deploy_engine_up "$work" || exit 1
mapfile -t composes < <(deploy_composes)
compose=${COMPOSE:-${composes[0]:-}}
[ -n "$compose" ] || {
    echo "compose.sh: no compose installed" >&2
    exit 1
}
deploy_base_image
deploy_ferretdb_context "$work/ferretdb"
mapfile -t ca < <(deploy_copy_ca)
deploy_keys "$b" "$work/keys" 10001 10001
mkdir -p "$work/plugins"
port=$(deploy_free_port)
mport=$(deploy_free_port)
common="MONGO_PASSWORD=not-used-by-the-test-server
XP_DATABASE=xp_bench
XP_KEYS=$work/keys
XP_PLUGINS=$work/plugins
XP_TAG=test
XP_TEST_FERRETDB_CONTEXT=$work/ferretdb
XP_TEST_PORT=$port
XP_TEST_MONGO_PORT=$mport
XP_TEST_DASHBOARD_PORT=$(deploy_free_port)"
printf '%s\nXP_TEST_BACKEND=%s\n' "$common" \
    "mongodb://127.0.0.1:$mport/xp_bench?serverSelectionTimeoutMS=5000" >"$work/db.env"
printf '%s\nXP_TEST_BACKEND=/var/lib/xp/store\n' "$common" >"$work/local.env"
C_db=$(deploy_compose_command "$compose" "$work/db.env" xpbench$$ "$work")
C_local=$(deploy_compose_command "$compose" "$work/local.env" xpbench$$ "$work")
C=$C_db
$C build >"$work/build.log" 2>&1 || {
    tail -n 20 "$work/build.log"
    exit 1
}
keys=(--key "$work/keys/laptop.key" --server-key "$work/keys/scheduler.key")

now() { date +%s.%N; }
stats() { # label, unit, values...: median (min – max)
    /usr/bin/python3 -c '
import statistics, sys
v = [float(x) for x in sys.argv[3:]]
d = 0 if min(v) >= 100 else 1
print(f"{sys.argv[1]}: median {statistics.median(v):.{d}f} {sys.argv[2]} "
      f"({min(v):.{d}f} – {max(v):.{d}f}, {len(v)} run(s))")' "$@"
}
rate() { # trials t0 t1: trials/s
    /usr/bin/python3 -c 'import sys; print(int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])))' "$1" "$2" "$3"
}
sweep() { # trials (1000, or a multiple of 10), endpoint, xpsubmit options...: trials/s
    local n=$1 ep=$2 t0 t1 a='a=range(0,40)' bb='b=range(0,25)'
    shift 2
    if [ "$n" != 1000 ]; then
        a="a=range(0,$((n / 10)))"
        bb='b=range(0,10)'
    fi
    t0=$(now)
    "$b/cli/xpsubmit" -s "$ep" "$@" simple_experiment_pj "$a" "$bb" \
        --wait >/dev/null 2>"$work/sweep.err" || {
        cat "$work/sweep.err" >&2
        return 1
    }
    t1=$(now)
    rate "$n" "$t0" "$t1"
}
wait_workers() { # expected count, a command printing the scheduler's log
    local n=$1 i
    shift
    for i in $(seq 1 100); do
        [ "$("$@" 2>/dev/null | grep -c 'connected with')" -ge "$n" ] && return 0
        sleep 0.1
    done
    echo "compose.sh: $n workers did not register" >&2
    return 1
}

echo "docker-compose stack ($compose), FerretDB for mongo:7, workers of 1 slot"

# compose up -> the first trial recorded (images built, a new volume)
first=()
for r in $(seq 1 "$runs"); do
    $C down -v >/dev/null 2>&1
    t0=$(now)
    $C up -d --no-build --scale worker=1 >/dev/null 2>&1
    ok=""
    for i in $(seq 1 5); do
        if "$b/cli/xpsubmit" -s "tcp://127.0.0.1:$port" "${keys[@]}" \
            simple_experiment_pj a="$r" b=0 --wait >/dev/null 2>"$work/first.err"; then
            ok=1
            break
        fi
        sleep 0.2
    done
    t1=$(now)
    [ -n "$ok" ] || {
        cat "$work/first.err" >&2
        $C logs --tail 20 >&2
        exit 1
    }
    first+=("$(/usr/bin/python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1")")
done
$C down -v >/dev/null 2>&1
stats "compose up -> first trial recorded (FerretDB)" s "${first[@]}"

declare -A result
for nw in 2 4; do
    for backend in local db; do
        C=$C_db
        [ $backend = local ] && C=$C_local
        $C up -d --no-build --scale worker=$nw >/dev/null 2>&1
        deploy_wait_port "$port" 60
        wait_workers "$nw" $C logs scheduler
        v=()
        if [ $backend = local ]; then
            for r in $(seq 1 "$runs"); do
                v+=("$(sweep 1000 "tcp://127.0.0.1:$port" "${keys[@]}")")
            done
        else
            v+=("$(sweep "$db_trials" "tcp://127.0.0.1:$port" "${keys[@]}")")
        fi
        result[compose_$backend$nw]="${v[*]}"
        $C down -v >/dev/null 2>&1
    done
done

# The same on bare processes: the local backend, and the same FerretDB
# binary on the host.
fport=$(deploy_free_port)
mkdir -p "$work/fdb"
"$work/ferretdb/ferretdb" --handler=sqlite --sqlite-url="file:$work/fdb/" \
    --listen-addr="127.0.0.1:$fport" --telemetry=disable --state-dir=- \
    --log-level=error --debug-addr=- >"$work/fdb.log" 2>&1 &
pids+=($!)
deploy_wait_port "$fport" 30
for nw in 2 4; do
    for backend in local db; do
        ep=tcp://127.0.0.1:$(deploy_free_port)
        store="mongodb://127.0.0.1:$fport/xp_bare$nw"
        [ $backend = local ] && store=$work/store$nw
        "$b/scheduler/xp-scheduler" --bind "$ep" --backend "$store" \
            >"$work/sched.log" 2>&1 &
        group=($!)
        for i in $(seq 1 $nw); do
            "$b/worker/xp-worker" --connect "$ep" --slots 1 --log-level warning \
                --plugin "$b/examples/simple_experiment.so" >"$work/w$i.log" 2>&1 &
            group+=($!)
        done
        pids+=("${group[@]}")
        wait_workers "$nw" cat "$work/sched.log"
        v=()
        if [ $backend = local ]; then
            for r in $(seq 1 "$runs"); do
                v+=("$(sweep 1000 "$ep")")
            done
        else
            v+=("$(sweep "$db_trials" "$ep")")
        fi
        result[bare_$backend$nw]="${v[*]}"
        kill "${group[@]}"
        wait "${group[@]}" 2>/dev/null || true
    done
done

for nw in 2 4; do
    # shellcheck disable=SC2086
    {
        stats "1,000-trial sweep, $nw workers, local backend: compose stack" trials/s ${result[compose_local$nw]}
        stats "1,000-trial sweep, $nw workers, local backend: bare processes" trials/s ${result[bare_local$nw]}
        stats "$db_trials-trial sweep, $nw workers, FerretDB: compose stack" trials/s ${result[compose_db$nw]}
        stats "$db_trials-trial sweep, $nw workers, FerretDB: bare processes" trials/s ${result[bare_db$nw]}
    }
done
