#!/bin/sh
# bench/startup.sh — the wall time of a whole script-mode process,
# `simple_experiment a=1 b=2` on a local store, outside a git repository
# and inside a small clean one, with the shared objects it loads and
# (with valgrind) its instruction count. Prints figures; asserts nothing.
#   bench/startup.sh [BUILD_DIR] [RUNS]     (default: build, 200)
# Use a release build (meson setup build-rel -Dbuildtype=release) for
# figures worth recording in docs/performance.md.
set -eu

build=${1:-build}
runs=${2:-200}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
prog=$build/examples/simple_experiment
if [ ! -x "$prog" ]; then
    echo "startup.sh: $prog is not built (ninja -C $build)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xp-startup.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
# Outside: a directory with no repository above it (/tmp is not in one
# on a normal system; say so when it is).
mkdir -p "$tmp/plain" "$tmp/repo"
if git -C "$tmp/plain" rev-parse --git-dir >/dev/null 2>&1; then
    echo "note: $tmp is inside a git repository; 'outside' is not" >&2
fi
# Inside: a one-commit repository with a clean work tree (the store is
# kept outside it, so trials do not make it dirty).
(
    cd "$tmp/repo"
    git init -q .
    printf 'x\n' >README
    git add README
    git -c user.name=xp -c user.email=xp@localhost commit -q -m init
)
unset XP_BACKEND XP_MODULE_DIR

# Median, min and max wall milliseconds of $runs runs of the program in
# directory $1 on store $2 (10 runs first create the store and warm the
# caches): with hyperfine when installed, else timed by date(1).
measure() {
    cd "$1"
    i=0
    while [ $i -lt 10 ]; do
        "$prog" a=1 b=2 --backend "$2" >/dev/null 2>&1
        i=$((i + 1))
    done
    if command -v hyperfine >/dev/null 2>&1; then
        hyperfine -N --style none --runs "$runs" --output=null \
            --export-json "$tmp/h.json" "$prog a=1 b=2 --backend $2" \
            >/dev/null 2>&1
        tr -d ' \n' <"$tmp/h.json" | tr ',' '\n' |
            sed -n 's/.*"\(median\|min\|max\|user\|system\)":\([0-9.e-]*\).*/\1 \2/p' |
            awk -v n="$runs" '{ v[$1] = $2 * 1000 }
                END { printf "median %.2f ms  (min %.2f, max %.2f; mean user %.2f, system %.2f; %d runs, hyperfine)\n",
                      v["median"], v["min"], v["max"], v["user"], v["system"], n }'
    else
        i=0
        while [ $i -lt "$runs" ]; do
            s=$(date +%s%N)
            "$prog" a=1 b=2 --backend "$2" >/dev/null 2>&1
            e=$(date +%s%N)
            echo $(((e - s) / 1000))
            i=$((i + 1))
        done | sort -n | awk -v n="$runs" '
            { v[NR] = $1 }
            END {
                m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
                printf "median %.2f ms  (min %.2f, max %.2f; %d runs, date)\n",
                       m / 1000, v[1] / 1000, v[n] / 1000, n
            }'
    fi
    cd - >/dev/null
}

# Objects the dynamic loader maps for one run (the program included).
objects() {
    cd "$1"
    LD_DEBUG=files "$prog" a=1 b=2 --backend "$2" 2>&1 >/dev/null |
        sed -n 's/.*file=\([^ ]*\) \[0\];  \(needed\|dynamically\).*/\1/p' |
        sort -u | wc -l
    cd - >/dev/null
}

# Instructions of one run, all threads (valgrind's callgrind, if any). The
# second run is counted: under valgrind the loaded libraries differ, and
# the first run logs that change of environment.
instructions() {
    command -v valgrind >/dev/null 2>&1 || { echo "(no valgrind)"; return; }
    cd "$1"
    for i in 1 2; do
        valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
            "$prog" a=1 b=2 --backend "$2" >/dev/null 2>&1
    done
    sed -n 's/^summary: *//p' "$tmp/cg.out"
    rm -f "$tmp"/cg.out*
    cd - >/dev/null
}

echo "program: $prog"
echo "ldd: $(ldd "$prog" | wc -l) shared objects linked"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for where in plain repo; do
    store=$tmp/store-$where
    label=$([ $where = plain ] && echo "outside a git repository" ||
        echo "inside a git repository")
    echo "$label:"
    echo "  wall: $(measure "$tmp/$where" "$store")"
    echo "  objects loaded: $(objects "$tmp/$where" "$store")"
    echo "  instructions: $(instructions "$tmp/$where" "$store")"
done
