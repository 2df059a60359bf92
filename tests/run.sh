#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what is
# missing (apt, idempotent), builds with gcc (warnings are errors), runs the
# criterion suite, builds with clang, and runs the suite again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(meson ninja-build pkg-config gcc clang libclang-rt-14-dev
          libbson-dev libxxhash-dev libgit2-dev libsqlite3-dev
          libcriterion-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "== installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"
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
setup build --werror
ninja -C build
meson test -C build --print-errorlogs --num-processes 2

echo "== clang build (werror)"
CC=clang setup build-clang --werror
ninja -C build-clang

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
CC=clang setup build-asan --werror -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debug
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs --num-processes 2 \
    --timeout-multiplier 3

echo "== all tests passed"
