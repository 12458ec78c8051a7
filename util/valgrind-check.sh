#!/usr/bin/env bash
# Judges the memcheck logs of make test-valgrind. Fails on:
#   - any invalid access, use of uninitialised memory, mismatched or
#     invalid free, overlapping copy or bad system call argument;
#   - a definite leak whose stack goes through the module, jansson or
#     hiredis.
# Definite leaks entirely inside nginx (the single process's cycle
# memory at exit, its environment copy, PCRE2's compile context) are
# nginx's own; util/valgrind.supp names the known ones, the rest are
# listed but do not fail.
#
# usage: util/valgrind-check.sh LOGDIR

set -euo pipefail

logs=${1:?usage: $0 LOGDIR}

n=$(find "$logs" -name 'vg.*' | wc -l)

if [ "$n" -eq 0 ]; then
    echo "valgrind-check: no memcheck log in $logs" >&2
    exit 1
fi

# one record per blank "==PID== " line; print the records that fail,
# prefixed by the file name
report=$(awk '
    function judge() {
        if (rec == "") return
        if (rec ~ /Invalid (read|write|free)|uninitialised|Mismatched free|overlap|Syscall param|Jump to the invalid|Process terminating/ \
            || (rec ~ /definitely lost/ && rec ~ /ngx_http_llm|libjansson|libhiredis/))
        {
            printf "=== %s\n%s\n", FILENAME, rec
        } else if (rec ~ /definitely lost/) {
            nginx_own++
        }
        rec = ""
    }
    FNR == 1 { judge() }
    /^==[0-9]+== *$/ { judge(); next }
    { rec = rec $0 "\n" }
    END { judge(); if (nginx_own) printf "# %d leak records inside nginx itself, not failing\n", nginx_own > "/dev/stderr" }
' "$logs"/vg.*)

if [ -n "$report" ]; then
    echo "$report"
    echo "valgrind-check: memcheck reports against the module in $n nginx runs" >&2
    exit 1
fi

echo "valgrind-check: $n nginx runs, no memcheck report against the module"
