#!/usr/bin/env bash
# make soak: runs util/soak/soak.mjs (see README.md, "Soak test") and, on
# any exit, stops whatever of it is still running: soak.mjs starts nginx,
# redis-server, the fake providers and the load client with SOAK_DIR as
# their working directory, so they (nginx workers orphaned by a killed
# master included) are found by it, and nothing else is touched.

set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(realpath -m "${SOAK_DIR:-$top/build/soak}")
export SOAK_DIR=$dir

ours() {
    local p

    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/cwd" 2>/dev/null)" = "$dir" ] && echo "${p#/proc/}"
    done
}

cleanup() {
    local pids

    pids=$(ours)
    [ -n "$pids" ] || return 0

    kill -TERM $pids 2> /dev/null
    for _ in $(seq 1 50); do
        pids=$(ours)
        [ -n "$pids" ] || return 0
        sleep 0.1
    done
    kill -KILL $pids 2> /dev/null
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

node "$top/util/soak/soak.mjs" &
wait $!
