#!/usr/bin/env bash
# test_compose.sh — the docker-compose deployment of docker/, for real:
# builds the images from docker/Dockerfile (on a debian:bookworm-slim made
# with debootstrap when the engine has none), brings up the stack of
# docker/docker-compose.yml with tests/deploy/docker-compose.test.yml (a
# FerretDB for mongo:7, host networking), submits sweeps from this build's
# xpsubmit with CURVE keys, checks every trial in the database, kills a
# worker container mid-task, scales workers up and down, restarts the
# scheduler container with trials queued, backs up the volume, and tears
# everything down. Runs once per compose found (`docker compose` v2,
# `docker-compose` 1.29). Exit 77 (skip) with the reason where no Docker
# engine can run.
#   tests/deploy/test_compose.sh BUILD_DIR
set -uo pipefail
b=$(cd "${1:?usage: test_compose.sh BUILD_DIR}" && pwd)
cd "$(dirname "$0")/../.."
. tests/deploy/lib.sh
export MONGOC_DISABLE_SHM=1

skip() {
    echo "SKIP: $*"
    exit 77
}
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

work=$(mktemp -d /tmp/xp-deploy.XXXXXX)
projects=()
ca_copied=()
cleanup() {
    local p
    for p in "${projects[@]}"; do
        [ -f "$work/$p.compose" ] || continue
        $(cat "$work/$p.compose") down -v --remove-orphans >/dev/null 2>&1 || true
    done
    rm -f "${ca_copied[@]}"
    # images of earlier builds that these replaced (the tagged ones stay,
    # for the layer cache)
    docker image prune -f --filter label=org.xp.image >/dev/null 2>&1 || true
    deploy_engine_down
    rm -rf "$work"
}
trap cleanup EXIT

for f in "$b/cli/xp" "$b/cli/xpsubmit"; do
    [ -x "$f" ] || skip "$f is not built"
done
plugin=${XP_DEPLOY_PLUGIN:-$b/tests/deploy/deploy_mounted.so}
[ -f "$plugin" ] || skip "$plugin is not built"
deploy_engine_up "$work" || skip "no Docker engine (see above)"
mapfile -t composes < <(deploy_composes)
((${#composes[@]})) || skip "neither \`docker compose\` (v2) nor docker-compose (1.29) is installed"
echo "== compose: ${composes[*]}"
deploy_base_image || skip "no debian:bookworm-slim base image (see above)"
deploy_ferretdb_context "$work/ferretdb" || skip "FerretDB could not be built (see above)"

mapfile -t ca_copied < <(deploy_copy_ca)

uid=10001
gid=10001
if [ "$(id -u)" -ne 0 ]; then
    uid=$(id -u)
    gid=$(id -g)
fi
deploy_keys "$b" "$work/keys" "$uid" "$gid" || skip "xp keygen failed"
mkdir -p "$work/plugins"
cp "$plugin" "$work/plugins/"
chmod -R a+rX "$work/plugins"

hist() { # experiment: the history as JSON
    "$b/cli/xp" history "$1" --backend "$mongo_uri" --format json 2>/dev/null
}
submit() {
    XP_KEY=$work/keys/laptop.key XP_SERVER_KEY=$work/keys/scheduler.key \
        "$b/cli/xpsubmit" -s "tcp://127.0.0.1:$port" "$@"
}
# Checks a history (stdin) with a Python expression over h (the list of
# trials); prints the expression's value when it is not True.
check() { # label, expression
    local out
    out=$(/usr/bin/python3 -c '
import json, sys
h = json.load(sys.stdin)
r = eval(sys.argv[1])
print("True" if r is True else repr(r))' "$2" 2>&1)
    if [ "$out" = True ]; then
        ok "$1"
    else
        fail "$1: $out"
        return 1
    fi
}
# Waits until the expression over the history of experiment is true.
wait_for() { # experiment, expression, seconds
    local i
    for i in $(seq 1 $(($3 * 2))); do
        if hist "$1" | /usr/bin/python3 -c '
import json, sys
h = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}
workers_running() {
    $C ps -q worker 2>/dev/null | xargs -r docker inspect -f '{{.State.Running}}' |
        grep -c true
}

scenario() { # compose command, build images (1/0)
    local compose=$1 build=$2 tag
    tag=v2
    [ "$compose" = docker-compose ] && tag=v1
    local p=xpdeploy$$$tag
    projects+=("$p")
    port=$(deploy_free_port)
    local mport dport
    mport=$(deploy_free_port)
    dport=$(deploy_free_port)
    mongo_uri="mongodb://127.0.0.1:$mport/xp_deploy?serverSelectionTimeoutMS=2000"
    cat >"$work/$p.env" <<EOF
MONGO_PASSWORD=not-used-by-the-test-server
XP_DATABASE=xp_deploy
XP_KEYS=$work/keys
XP_PLUGINS=$work/plugins
XP_TAG=test
XP_UID=$uid
XP_GID=$gid
XP_TEST_FERRETDB_CONTEXT=$work/ferretdb
XP_TEST_PORT=$port
XP_TEST_MONGO_PORT=$mport
XP_TEST_DASHBOARD_PORT=$dport
XP_TEST_BACKEND=mongodb://127.0.0.1:$mport/xp_deploy?serverSelectionTimeoutMS=5000
EOF
    C=$(deploy_compose_command "$compose" "$work/$p.env" "$p" "$work") || {
        fail "$compose config"
        return
    }
    echo "$C" >"$work/$p.compose"
    echo "== $compose: project $p, scheduler port $port, database port $mport"

    if [ "$build" = 1 ]; then
        local t0=$SECONDS
        if ! $C build >"$work/$p.build.log" 2>&1; then
            tail -n 40 "$work/$p.build.log"
            fail "$compose build"
            return
        fi
        ok "$compose build: images built in $((SECONDS - t0)) s"
    fi

    # Up with two workers; a sweep from the host through CURVE.
    if ! $C up -d --no-build --scale worker=2 >"$work/$p.up.log" 2>&1; then
        cat "$work/$p.up.log"
        fail "$compose up"
        return
    fi
    deploy_wait_port "$port" 60 || fail "the scheduler does not listen on $port"
    if submit simple_experiment_pj 'a=range(0,10)' 'b=range(0,10)' --wait \
        >"$work/$p.sweep.out" 2>&1; then
        ok "sweep of 100 trials submitted from the host, all succeeded"
    else
        tail -n 5 "$work/$p.sweep.out"
        fail "xpsubmit --wait of the sweep"
    fi
    hist simple_experiment_pj >"$work/h.json"
    check "every trial of the sweep in the database, once, with its result" \
        'sorted((t["parameters"]["a"], t["parameters"]["b"]) for t in h) == [(a, b) for a in range(10) for b in range(10)] and all(t["status"] == "succeeded" and t["result"] == t["parameters"]["a"] + t["parameters"]["b"] + 1 for t in h) and len({t["trial_id"] for t in h}) == 100' <"$work/h.json"
    check "trials carry the scheduler's name and the steps' workers" \
        'all(t["scheduler"] == "xp-compose" and t["steps"]["calculate"]["worker"] for t in h) and len({t["steps"]["calculate"]["worker"] for t in h}) == 2' <"$work/h.json"
    if "$b/cli/xp" code simple_experiment_pj 1 --backend "$mongo_uri" 2>/dev/null |
        grep -q 'xp_step_fail(st, "a and b must be numbers")'; then
        ok "the trials' code holds the step's source, read in the worker image"
    else
        fail "xp code: the step's source is not recorded"
    fi
    if [ "$($C exec -T scheduler xp history simple_experiment_pj --format csv 2>/dev/null | grep -c ",true,")" = 100 ]; then
        ok "xp history in the scheduler's container reads the database of its XP_BACKEND"
    else
        fail "$compose exec scheduler xp history"
    fi
    if curl -sf "http://127.0.0.1:$dport/api/experiments" | grep -q simple_experiment_pj; then
        ok "the dashboard serves the experiments on 127.0.0.1:$dport"
    else
        fail "the dashboard's /api/experiments"
    fi
    submit deploy_mounted_pj x=2,3 y=5 --wait >/dev/null 2>&1 ||
        fail "xpsubmit of the mounted directory's plugin"
    hist deploy_mounted_pj | check "a plugin from the mounted directory ran" \
        'sorted(t["result"] for t in h) == [10, 15]'

    # A worker container killed mid-task: its trial finishes on another.
    submit sleep_pj seconds=4,4.5 >/dev/null 2>&1 || fail "submit of two sleeping trials"
    if wait_for sleep_pj 'len(h) == 2 and all(t["status"] == "running" for t in h)' 30; then
        local victim
        victim=$($C ps -q worker | head -n 1)
        docker kill "$victim" >/dev/null
        if wait_for sleep_pj 'len(h) == 2 and all(t["status"] != "running" and t["status"] != "queued" for t in h)' 90; then
            local lost
            lost=$($C logs scheduler 2>/dev/null | sed -n 's/.*Worker \([0-9a-f]*\) on .* lost (.*); 1 task(s) back in the queue.*/\1/p' | tail -n 1)
            hist sleep_pj | check "the killed worker's trial finished on another worker, once (lost worker ${lost:-?})" \
                "len(h) == 2 and all(t['status'] == 'succeeded' for t in h) and sorted(t['steps']['sleep_seconds']['attempt'] for t in h) == [1, 2] and '$lost' != '' and all(t['steps']['sleep_seconds']['worker'] != '$lost' for t in h)"
        else
            fail "the trials of the killed worker did not finish"
        fi
    else
        fail "the two sleeping trials did not start"
    fi

    # Scale up to 4 workers: four tasks at once run on four workers.
    $C up -d --no-build --no-recreate --scale worker=4 >/dev/null 2>&1 || fail "$compose up --scale worker=4"
    local n
    n=$(workers_running)
    [ "$n" = 4 ] && ok "scaled up: 4 worker containers" || fail "scaled up: $n worker containers running, not 4"
    sleep 2
    submit sleep_pj seconds=2,2.1,2.2,2.3 --wait >/dev/null 2>&1 || fail "4 trials on 4 workers"
    hist sleep_pj | check "four trials ran on four workers at once" \
        'len({t["steps"]["sleep_seconds"]["worker"] for t in h if t["parameters"]["seconds"] in (2, 2.1, 2.2, 2.3)}) == 4'

    # Scale down to 1: the sweep still finishes, on the one left.
    $C up -d --no-build --no-recreate --scale worker=1 >/dev/null 2>&1 || fail "$compose up --scale worker=1"
    n=$(workers_running)
    [ "$n" = 1 ] && ok "scaled down: 1 worker container" || fail "scaled down: $n worker containers running, not 1"
    submit simple_experiment_pj a=100 'b=range(0,5)' --wait >/dev/null 2>&1 || fail "sweep on one worker"
    hist simple_experiment_pj | check "after scaling down, 5 more trials ran on one worker" \
        'len(h) == 105 and len({t["steps"]["calculate"]["worker"] for t in h if t["parameters"]["a"] == 100}) == 1 and all(t["status"] == "succeeded" for t in h)'

    # The scheduler restarted with trials queued: all finish, once each.
    local values
    values=$(seq -s, 0.30 0.01 0.49)
    submit sleep_pj "seconds=$values" >/dev/null 2>&1 || fail "submit of 20 queued trials"
    local before
    before=$(hist sleep_pj | /usr/bin/python3 -c 'import json,sys; print(sum(1 for t in json.load(sys.stdin) if t["status"] == "succeeded"))')
    $C restart scheduler >/dev/null 2>&1 || fail "$compose restart scheduler"
    if wait_for sleep_pj 'len(h) == 26 and all(t["status"] == "succeeded" for t in h)' 120; then
        hist sleep_pj | check "the 20 trials queued at the restart all finished, once each ($((before - 6)) had finished before the restart)" \
            "len(h) == 26 and len({t['trial_id'] for t in h}) == 26 and sorted(t['parameters']['seconds'] for t in h if t['parameters']['seconds'] < 0.5) == [round(0.30 + i / 100, 2) for i in range(20)] and $before - 6 < 20"
    else
        hist sleep_pj | check "the trials queued at the scheduler's restart finished" 'False and [t["status"] for t in h]'
    fi

    # The volume: backed up with the stack stopped, kept across stop/up.
    $C stop >/dev/null 2>&1 || fail "$compose stop"
    if docker run --rm --network none -v "${p}_mongo-data:/data:ro" -v "$work:/backup" \
        debian:bookworm-slim tar -C /data -czf "/backup/$p.tgz" . &&
        [ "$(tar -tzf "$work/$p.tgz" | grep -c -v '/$')" -gt 0 ]; then
        ok "the mongo-data volume backed up ($(du -k "$work/$p.tgz" | cut -f1) KiB)"
    else
        fail "backup of the mongo-data volume"
    fi
    $C up -d --no-build --scale worker=1 >/dev/null 2>&1 || fail "$compose up after stop"
    if wait_for simple_experiment_pj 'len(h) == 105' 60; then
        ok "the trials are still there after stop and up"
    else
        fail "trials lost across stop and up"
    fi

    # Down: nothing of the project is left.
    $C down -v --remove-orphans >/dev/null 2>&1 || fail "$compose down"
    local left
    left=$(docker ps -aq --filter "label=com.docker.compose.project=$p" | wc -l)
    left=$((left + $(docker volume ls -q --filter "label=com.docker.compose.project=$p" | wc -l)))
    [ "$left" = 0 ] && ok "down -v: no container or volume of $p left" || fail "down -v left $left containers/volumes"
    rm -f "$work/$p.compose"
}

first=1
for compose in "${composes[@]}"; do
    scenario "$compose" "$first"
    first=0
done
if [ "${#composes[@]}" -lt 2 ]; then
    echo "note: only ${composes[*]} found; the other compose was not tested"
fi
if ((failures)); then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
