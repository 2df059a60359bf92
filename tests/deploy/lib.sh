# tests/deploy/lib.sh — sourced by tests/deploy/test_compose.sh and
# bench/compose.sh: a Docker engine (started when none runs), the
# debian:bookworm-slim base image made with debootstrap when the engine has
# none (no image registry is reachable here), the FerretDB image that stands
# in for mongo:7, and the compose command. Functions return non-zero with
# the reason on stderr; `deploy_skip` tells the caller to skip.

XP_DOCKER_CACHE=${XP_DOCKER_CACHE:-$HOME/.cache/xp-docker}
deploy_started_dockerd=""
deploy_dockerd_pid=""

deploy_log() { echo "deploy: $*" >&2; }

# Makes a Docker engine answer: the running one, else dockerd started here
# (as root, without a bridge or iptables rules: containers use the host's
# network). Returns 1 with the reason when there is none.
deploy_engine_up() {
    local dir=$1
    if ! command -v docker >/dev/null 2>&1; then
        deploy_log "no docker command (Debian package docker.io)"
        return 1
    fi
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        deploy_log "no Docker engine answers and there is no dockerd (Debian package docker.io)"
        return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        deploy_log "no Docker engine answers and only root may start dockerd"
        return 1
    fi
    setsid dockerd --iptables=false --bridge=none >"$dir/dockerd.log" 2>&1 &
    deploy_dockerd_pid=$!
    deploy_started_dockerd=1
    local i
    for i in $(seq 1 150); do
        if docker info >/dev/null 2>&1; then
            deploy_log "started dockerd (pid $deploy_dockerd_pid)"
            return 0
        fi
        if ! kill -0 "$deploy_dockerd_pid" 2>/dev/null; then
            break
        fi
        sleep 0.2
    done
    deploy_log "dockerd did not start: $(tail -n 3 "$dir/dockerd.log" | tr '\n' ' ')"
    deploy_engine_down
    return 1
}

# Stops dockerd if deploy_engine_up started it.
deploy_engine_down() {
    [ -n "$deploy_started_dockerd" ] || return 0
    local pid=$deploy_dockerd_pid i
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
    deploy_started_dockerd=""
}

# Makes debian:bookworm-slim when the engine has no such image: a
# debootstrap minbase of bookworm (its tarball cached), imported under
# that tag, so that docker/Dockerfile stays the one users build.
deploy_base_image() {
    if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
        return 0
    fi
    local tar=$XP_DOCKER_CACHE/debian-bookworm-minbase.tar
    if [ ! -s "$tar" ]; then
        if ! command -v debootstrap >/dev/null 2>&1; then
            deploy_log "no debian:bookworm-slim image and no debootstrap to make one"
            return 1
        fi
        local root
        mkdir -p "$XP_DOCKER_CACHE"
        root=$(mktemp -d "$XP_DOCKER_CACHE/rootfs.XXXXXX")
        deploy_log "making debian:bookworm-slim with debootstrap (once; cached in $tar)"
        if ! debootstrap --variant=minbase bookworm "$root" \
            http://deb.debian.org/debian >"$root.log" 2>&1; then
            deploy_log "debootstrap failed: $(tail -n 3 "$root.log" | tr '\n' ' ')"
            rm -rf "$root" "$root.log"
            return 1
        fi
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
        rm -rf "$root" "$root.log"
    fi
    docker import "$tar" debian:bookworm-slim >/dev/null
}

# The compose commands available, one per line: "docker compose" (v2, a
# CLI plugin) and "docker-compose" (Debian's 1.29).
deploy_composes() {
    if docker compose version >/dev/null 2>&1; then
        echo "docker compose"
    fi
    if command -v docker-compose >/dev/null 2>&1 &&
        docker-compose version >/dev/null 2>&1; then
        echo "docker-compose"
    fi
}

# Puts the FerretDB binary (tests/servers/ferretdb.sh builds it once) and
# the Dockerfile of the stand-in for mongo:7 into dir, the build context
# the test override names.
deploy_ferretdb_context() {
    local dir=$1 bin
    bin=$(tests/servers/ferretdb.sh build) || return 1
    mkdir -p "$dir"
    cp "$bin" "$dir/ferretdb"
    cp tests/deploy/ferretdb.Dockerfile "$dir/Dockerfile"
}

deploy_free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits for a TCP port on 127.0.0.1 to accept (up to $2 seconds).
deploy_wait_port() {
    local port=$1 limit=${2:-60} i
    for i in $(seq 1 $((limit * 5))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# Makes the CURVE keys of a deployment in dir, as docs/deploy.md does,
# with the xp of build dir b: the scheduler's and the workers' pairs, a
# laptop's pair, and authorized/ with the worker's and the laptop's public
# keys; readable by uid:gid $3:$4 (the containers' user).
deploy_keys() {
    local b=$1 dir=$2 uid=$3 gid=$4 name
    for name in scheduler worker laptop; do
        "$b/cli/xp" keygen "$name" --dir "$dir" >/dev/null || return 1
    done
    mkdir -p "$dir/authorized" &&
        cp "$dir/worker.key" "$dir/laptop.key" "$dir/authorized/" || return 1
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$uid:$gid" "$dir"
    fi
}

# Prints the compose command line for a project: compose ("docker compose"
# or "docker-compose"), its env file and name, with docker/docker-compose.yml
# and the test override. docker-compose 1.29 refuses published ports with
# host networking (which discards them anyway) and an override cannot
# remove them: for it, the merged configuration without them, written to
# dir/NAME.merged.yml, is the file.
deploy_compose_command() { # compose, env file, project name, dir
    local compose=$1 env=$2 p=$3 dir=$4
    local c="$compose --env-file $env -p $p -f docker/docker-compose.yml -f tests/deploy/docker-compose.test.yml"
    if [ "$compose" = docker-compose ]; then
        $c config >"$dir/$p.merged.yml" || return 1
        /usr/bin/python3 -c '
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
for s in c["services"].values():
    if s.get("network_mode") == "host":
        s.pop("ports", None)
yaml.safe_dump(c, open(sys.argv[1], "w"))' "$dir/$p.merged.yml" || return 1
        c="$compose --env-file $env -p $p -f $dir/$p.merged.yml"
    fi
    echo "$c"
}

# Copies the host's local CA certificates into docker/ca-certificates/ for
# the build stages (a TLS-inspecting proxy between the build and the npm
# registry); prints the files it added, which the caller removes.
deploy_copy_ca() {
    local crt dest
    for crt in /usr/local/share/ca-certificates/*.crt; do
        [ -f "$crt" ] || continue
        dest=docker/ca-certificates/xp-test-$(basename "$crt")
        [ -e "$dest" ] && continue
        cp "$crt" "$dest" && echo "$dest"
    done
}
