#!/usr/bin/env bash
# FerretDB (a MongoDB wire-protocol server over PostgreSQL or SQLite) for
# the MongoDB tests: built once from the Go module proxy into a cache
# directory, then started on a loopback port with a scratch data directory.
#
#   tests/servers/ferretdb.sh build             build unless cached; prints the binary
#   tests/servers/ferretdb.sh start PORT DIR    runs it in the foreground
#   tests/servers/ferretdb.sh uri PORT [DB]     the XP_TEST_MONGODB_URI for it
#
# Sourced, it defines ferretdb_build, ferretdb_start (which may exec and
# sets traps: call it in a subshell, e.g. `(ferretdb_start "$port" "$dir")
# &`) and ferretdb_uri. Killing the start process (TERM) stops FerretDB and
# its PostgreSQL.
# XP_FERRETDB_CACHE (default ~/.cache/xp-ferretdb) holds the binary under
# bin/ferretdb-VERSION; GO names the go command (default: go on PATH, else
# /usr/local/go/bin/go).

FERRETDB_VERSION=v1.24.2
FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_CACHE=${XP_FERRETDB_CACHE:-$HOME/.cache/xp-ferretdb}
FERRETDB_BIN=$FERRETDB_CACHE/bin/ferretdb-$FERRETDB_VERSION

s_go() {
    if [ -n "${GO:-}" ]; then
        echo "$GO"
    elif command -v go >/dev/null 2>&1; then
        command -v go
    elif [ -x /usr/local/go/bin/go ]; then
        echo /usr/local/go/bin/go
    else
        echo "ferretdb.sh: no go command (set GO or install Go)" >&2
        return 1
    fi
}

# Builds the pinned version unless its binary is cached; prints its path.
ferretdb_build() {
    if [ -x "$FERRETDB_BIN" ]; then
        echo "$FERRETDB_BIN"
        return 0
    fi
    local go tmp start src
    go=$(s_go) || return 1
    mkdir -p "$FERRETDB_CACHE/bin" || return 1
    tmp=$(mktemp -d "$FERRETDB_CACHE/build.XXXXXX") || return 1
    start=$(date +%s)
    echo "ferretdb.sh: building FerretDB $FERRETDB_VERSION (once)" >&2
    # `go install MODULE@VERSION` builds a binary that panics at start: the
    # module proxy's zip lacks build/version/version.txt (generated from git
    # by FerretDB's own build). Build from a copy of the module's source
    # with that file written.
    if ! src=$(cd "$tmp" && "$go" mod download -json \
        "$FERRETDB_MODULE@$FERRETDB_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || [ -z "$src" ]; then
        rm -rf "$tmp"
        echo "ferretdb.sh: downloading $FERRETDB_MODULE@$FERRETDB_VERSION failed" >&2
        return 1
    fi
    cp -r "$src" "$tmp/src" && chmod -R u+w "$tmp/src" &&
        echo "$FERRETDB_VERSION" >"$tmp/src/build/version/version.txt" &&
        echo "xp-tests" >"$tmp/src/build/version/package.txt"
    if ! (cd "$tmp/src" && "$go" build -trimpath -o "$tmp/ferretdb" \
        ./cmd/ferretdb >&2); then
        rm -rf "$tmp"
        echo "ferretdb.sh: building FerretDB $FERRETDB_VERSION failed" >&2
        return 1
    fi
    # The cached name carries the version; a rename is atomic.
    mv "$tmp/ferretdb" "$FERRETDB_BIN"
    rm -rf "$tmp"
    echo "ferretdb.sh: built in $(($(date +%s) - start)) s: $FERRETDB_BIN" >&2
    echo "$FERRETDB_BIN"
}

# The PostgreSQL server binaries (Debian's postgresql package), or nothing.
s_pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && echo "$d"
    done | sort -V | tail -n 1
}

# Runs a command as the owner of DIR's PostgreSQL cluster: PostgreSQL
# refuses to run as root, so root runs it as the postgres user.
s_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Runs FerretDB on 127.0.0.1:PORT with its data in DIR (created; kept, so
# a restart on the same DIR finds it), in the foreground until killed: the
# caller backgrounds it and keeps the pid. The handler is PostgreSQL (a
# private cluster in DIR/pg on a Unix socket in DIR, started here and
# stopped when this ends) when Debian's postgresql is installed, else
# SQLite; XP_FERRETDB_HANDLER=sqlite|postgresql chooses. FerretDB 1.24 over
# SQLite answers every query but an _id string equality by reading the
# whole collection (trial ids are integers), which makes a trial cost grow
# with the history; over PostgreSQL integer _id lookups use an index.
ferretdb_start() {
    local port=${1:?port} dir=${2:?data directory} bin pg handler fd
    # The servers outlive nothing of their caller's: descriptors it leaked
    # to us (a test runner's report pipe) are not kept open by a
    # daemonized PostgreSQL.
    for fd in $(ls /proc/$$/fd); do
        [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    bin=$(ferretdb_build) || return 1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    pg=$(s_pg_bin)
    handler=${XP_FERRETDB_HANDLER:-$([ -n "$pg" ] && echo postgresql || echo sqlite)}
    if [ "$handler" = sqlite ]; then
        # A scratch server: SQLite need not sync its files (a killed
        # FerretDB keeps what it wrote; only a machine crash could lose it).
        exec "$bin" --handler=sqlite \
            --sqlite-url="file:$dir/?_pragma=synchronous(off)" \
            --listen-addr="127.0.0.1:$port" --telemetry=disable \
            --state-dir=- --log-level=ERROR --debug-addr=-
    fi
    [ -n "$pg" ] || {
        echo "ferretdb.sh: no PostgreSQL server (apt install postgresql)" >&2
        return 1
    }
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres "$dir" || return 1
        runuser -u postgres -- test -x "$dir" || {
            echo "ferretdb.sh: $dir is not reachable by the postgres user" \
                "(make its parents searchable)" >&2
            return 1
        }
    fi
    if [ ! -f "$dir/pg/PG_VERSION" ]; then
        s_as_pg "$pg/initdb" -D "$dir/pg" -A trust -U xp --no-sync \
            >"$dir/initdb.log" 2>&1 || {
            cat "$dir/initdb.log" >&2
            return 1
        }
    fi
    # No TCP: FerretDB reaches it on the socket in DIR. Durability is not
    # needed from a scratch server (a killed one keeps what it committed).
    s_as_pg "$pg/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -s \
        -o "-c listen_addresses= -k $dir -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off" start ||
        return 1
    s_as_pg "$pg/psql" -h "$dir" -U xp -d postgres -qAt \
        -c "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'" |
        grep -q 1 ||
        s_as_pg "$pg/createdb" -h "$dir" -U xp ferretdb || return 1
    local child
    # shellcheck disable=SC2064
    trap "kill \$child 2>/dev/null; wait \$child 2>/dev/null;
          s_as_pg '$pg/pg_ctl' -D '$dir/pg' -m immediate -s stop; exit 0" \
        TERM INT HUP
    "$bin" --handler=postgresql \
        --postgresql-url="postgres://xp@/ferretdb?host=$dir" \
        --listen-addr="127.0.0.1:$port" --telemetry=disable --state-dir=- \
        --log-level=ERROR --debug-addr=- &
    child=$!
    wait "$child"
    local rc=$?
    s_as_pg "$pg/pg_ctl" -D "$dir/pg" -m immediate -s stop
    return "$rc"
}

ferretdb_uri() {
    local port=${1:?port} db=${2:-xp_test}
    echo "mongodb://127.0.0.1:$port/$db?serverSelectionTimeoutMS=2000"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
    build) ferretdb_build ;;
    start)
        shift
        ferretdb_start "$@"
        ;;
    uri)
        shift
        ferretdb_uri "$@"
        ;;
    *)
        sed -n '2,14p' "$0" >&2
        exit 2
        ;;
    esac
fi
