#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what is
# missing (apt, idempotent; npm ci for the dashboard's pinned front-end
# packages), starts a redis-server and FerretDB (a MongoDB server, built
# once from the Go module proxy and cached, over a private PostgreSQL) on
# free loopback ports, builds with gcc (warnings are errors),
# runs the criterion suite and the dashboard's browser tests (headless
# Chromium), builds with clang, and runs the suite again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
# Set XP_TEST_MONGODB_URI to run the MongoDB tests against a real MongoDB
# instead of FerretDB. Without a Go toolchain (FerretDB 1.24 needs Go 1.24;
# with GOTOOLCHAIN=auto an older go fetches it from the module proxy), the
# MongoDB tests fall back to the Python wire-protocol test server
# (tests/servers/mongo_test_server.py), which the fault-injection tests use
# in any case.
# The deployment test (tests/deploy/) starts dockerd itself when none runs
# (root only; it skips, saying why, where no engine can run).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(meson ninja-build pkg-config gcc g++ clang libclang-rt-14-dev git
          libbson-dev libmongoc-dev libhiredis-dev libczmq-dev libzmq3-dev
          libsodium-dev libxxhash-dev
          libgit2-dev libsqlite3-dev libcriterion-dev libyaml-dev
          redis-server python3 python3-mockupdb python3-mongomock iproute2
          python3-pymongo python3-pandas postgresql
          libmicrohttpd-dev libcrypt-dev libgraphviz-dev graphviz
          libcurl4-openssl-dev chromium
          docker.io docker-compose debootstrap)
# the one-node Slurm cluster of tests/remote/test_slurm.c and bench/slurm.sh
packages+=(slurm-wlm munge)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node.js and npm (the dashboard's front-end packages, the browser tests):
# Debian's packages unless a Node.js is installed some other way.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "== installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"
fi

# Docker Compose v2 beside Debian's docker-compose 1.29: the deployment
# test runs with both (v2 built once from the Go module proxy, cached).
bash tests/servers/compose.sh ||
    echo "== Docker Compose v2 could not be built: the deployment test" \
        "runs with docker-compose 1.29 only"

# uPlot (built into xp-dashboard) and playwright-core (browser tests),
# pinned by dashboard/package-lock.json.
echo "== npm ci (dashboard/)"
(cd dashboard && npm ci --no-audit --no-fund --loglevel=error)

# libmongoc (loaded by libxp) keeps counters in /dev/shm/mongoc-PID and
# removes them at exit; the tests kill processes with SIGKILL, which would
# leave one file each behind.
export MONGOC_DISABLE_SHM=1

# Servers for the backend tests, stopped when this script ends.
servers=$(mktemp -d /tmp/xp-servers.XXXXXX)
chmod 755 "$servers" # FerretDB's PostgreSQL runs as the postgres user
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$servers"
}
trap cleanup EXIT
free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # port, name
    for _ in $(seq 1 100); do
        if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "$2 did not start on port $1" >&2
    return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$servers" \
    --save '' --appendonly no --daemonize no \
    >"$servers/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port" redis-server
export XP_TEST_REDIS_URI="redis://127.0.0.1:$redis_port/0"
echo "== redis-server on port $redis_port"

if [ -n "${XP_TEST_MONGODB_URI:-}" ]; then
    echo "== MongoDB tests against XP_TEST_MONGODB_URI"
elif ferretdb=$(GOTOOLCHAIN=${GOTOOLCHAIN:-auto} bash tests/servers/ferretdb.sh build); then
    export XP_FERRETDB_BIN=$ferretdb
    mongo_port=$(free_port)
    bash tests/servers/ferretdb.sh start "$mongo_port" "$servers/ferretdb" \
        >"$servers/ferretdb.log" 2>&1 &
    pids+=($!)
    wait_port "$mongo_port" FerretDB
    export XP_TEST_MONGODB_URI="mongodb://127.0.0.1:$mongo_port/xp_test?serverSelectionTimeoutMS=2000"
    echo "== FerretDB ($ferretdb) on port $mongo_port"
else
    echo "== FerretDB could not be built (see above): the MongoDB tests run" \
        "against the Python wire-protocol test server instead"
    mongo_port=$(free_port)
    /usr/bin/python3 tests/servers/mongo_test_server.py --port "$mongo_port" \
        >"$servers/mongo.log" 2>&1 &
    pids+=($!)
    wait_port "$mongo_port" "MongoDB test server"
    export XP_TEST_MONGODB_URI="mongodb://127.0.0.1:$mongo_port/xp_test?serverSelectionTimeoutMS=2000"
    echo "== MongoDB wire-protocol test server on port $mongo_port"
fi

setup() { # dir, then meson options
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

echo "== gcc build (werror) and tests"
setup build --werror -Ddashboard=enabled
ninja -C build
meson test -C build --print-errorlogs --num-processes 2

echo "== clang build (werror)"
CC=clang CXX=clang++ setup build-clang --werror -Ddashboard=enabled
ninja -C build-clang

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
CC=clang CXX=clang++ setup build-asan --werror -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debug -Ddashboard=enabled
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
LSAN_OPTIONS=suppressions="$PWD/tests/lsan.supp" \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs --num-processes 2 \
    --timeout-multiplier 3

echo "== all tests passed"
