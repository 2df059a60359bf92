#!/usr/bin/env bash
# quickstart.sh — from a fresh Debian machine to a recorded history: installs
# missing packages, builds, runs three quickstart trials (one fails on
# purpose), reads them back with `xp` and says how to open them in the
# dashboard. Safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(meson ninja-build pkg-config gcc libbson-dev libmongoc-dev
          libhiredis-dev libczmq-dev libzmq3-dev libsodium-dev libxxhash-dev
          libgit2-dev libsqlite3-dev libcriterion-dev libyaml-dev
          libmicrohttpd-dev libcrypt-dev libgraphviz-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# npm fetches uPlot, the dashboard's chart library (dashboard/package-lock.json)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    echo "installing: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"
fi

run() {
    printf '\n$ %s\n' "$*"
    "$@"
}

[[ -d dashboard/node_modules/uplot ]] ||
    (cd dashboard && run npm ci --omit=dev --no-audit --no-fund --loglevel=error)
[[ -f build/build.ninja ]] || run meson setup build
run ninja -C build

# A dedicated local backend, so every run starts from an empty history.
backend=build/quickstart-cache
rm -rf "$backend"

run build/examples/quickstart a=1 b=2 --backend "$backend"
run build/examples/quickstart a=3 b=4 --seed 7 --backend "$backend"
run build/examples/quickstart a=1 b=-1 --backend "$backend" ||
    echo "(trial failed as expected: calculate_score divides by zero)"

run build/cli/xp history quickstart_pj --backend "$backend"
run build/cli/xp history quickstart_pj --verbose --backend "$backend"
run build/cli/xp metric quickstart_pj dummy_score 1 2 --backend "$backend"
run build/cli/xp persisted quickstart_pj prepare_data 1 --backend "$backend"
run build/cli/xp history quickstart_pj --filter 'status == "succeeded"' --sort -result --backend "$backend"
run build/cli/xp graph quickstart_pj --backend "$backend"

cat <<EOF

The dashboard shows these trials in a browser (history, each trial's code,
environment and metrics, comparisons, the graph); Ctrl-C stops it:

    build/cli/xp dashboard --backend $backend

EOF
