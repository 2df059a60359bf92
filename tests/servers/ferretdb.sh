#!/usr/bin/env bash
# FerretDB (a MongoDB wire-protocol server over SQLite) for the MongoDB
# tests: built once from the Go module proxy into a cache directory, then
# started on a loopback port with a scratch data directory.
#
#   tests/servers/ferretdb.sh build             build unless cached; prints the binary
#   tests/servers/ferretdb.sh start PORT DIR    runs it in the foreground (exec)
#   tests/servers/ferretdb.sh uri PORT [DB]     the XP_TEST_MONGODB_URI for it
#
# Sourced, it defines ferretdb_build, ferretdb_start (which execs: call it
# in a subshell, e.g. `(ferretdb_start "$port" "$dir") &`) and ferretdb_uri.
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

# Runs FerretDB on 127.0.0.1:PORT with its SQLite files in DIR (created),
# in the foreground: the caller backgrounds it and keeps the pid.
ferretdb_start() {
    local port=${1:?port} dir=${2:?data directory} bin
    bin=$(ferretdb_build) || return 1
    mkdir -p "$dir"
    # A scratch server: SQLite need not sync its files (a killed FerretDB
    # keeps what it wrote; only a machine crash could lose it).
    exec "$bin" --handler=sqlite \
        --sqlite-url="file:${dir%/}/?_pragma=synchronous(off)" \
        --listen-addr="127.0.0.1:$port" --telemetry=disable --state-dir=- \
        --log-level=ERROR --debug-addr=-
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
