#!/usr/bin/env bash
# Docker Compose v2 (the `docker compose` CLI plugin) for the deployment
# test, which runs its scenario with every compose it finds: Debian 12 has
# only docker-compose 1.29, so v2 is built once from the Go module proxy
# into a cache directory and installed as the user's CLI plugin.
#
#   tests/servers/compose.sh          build unless `docker compose` works
#
# `go install github.com/docker/compose/v2/cmd@VERSION` refuses the module
# (its go.mod has exclude directives), so it builds from a copy of the
# module's source. XP_COMPOSE_CACHE (default ~/.cache/xp-compose) holds the
# binary; GO names the go command (default: go on PATH, else
# /usr/local/go/bin/go).
set -euo pipefail

COMPOSE_VERSION=v2.40.3
COMPOSE_MODULE=github.com/docker/compose/v2
CACHE=${XP_COMPOSE_CACHE:-$HOME/.cache/xp-compose}
BIN=$CACHE/bin/docker-compose-$COMPOSE_VERSION
PLUGIN=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose

if docker compose version >/dev/null 2>&1; then
    exit 0
fi
if [ ! -x "$BIN" ]; then
    if [ -n "${GO:-}" ]; then
        go=$GO
    elif command -v go >/dev/null 2>&1; then
        go=$(command -v go)
    elif [ -x /usr/local/go/bin/go ]; then
        go=/usr/local/go/bin/go
    else
        echo "compose.sh: no go command (set GO or install Go)" >&2
        exit 1
    fi
    mkdir -p "$CACHE/bin"
    tmp=$(mktemp -d "$CACHE/build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    start=$(date +%s)
    echo "compose.sh: building Docker Compose $COMPOSE_VERSION (once)" >&2
    src=$(cd "$tmp" && "$go" mod download -json \
        "$COMPOSE_MODULE@$COMPOSE_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$src" ] || {
        echo "compose.sh: downloading $COMPOSE_MODULE@$COMPOSE_VERSION failed" >&2
        exit 1
    }
    cp -r "$src" "$tmp/src"
    chmod -R u+w "$tmp/src"
    (cd "$tmp/src" && CGO_ENABLED=0 "$go" build -trimpath \
        -ldflags "-X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
        -o "$tmp/docker-compose" ./cmd >&2)
    mv "$tmp/docker-compose" "$BIN"
    echo "compose.sh: built in $(($(date +%s) - start)) s: $BIN" >&2
fi
mkdir -p "$(dirname "$PLUGIN")"
install -m 755 "$BIN" "$PLUGIN"
docker compose version
