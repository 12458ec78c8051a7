#!/bin/sh

# Builds the libFuzzer harnesses of the provider translators and of the
# hot path's JSON scanner (request: the scanner and the request validation
# against jansson) and runs each for SECONDS (default 60).  Fails on any crash, leak, sanitizer report or
# broken promise (see ngx_http_llm_fallback_fuzz.h).
#
#   util/fuzz/run.sh [SECONDS] [TARGET...]
#
# Environment: CC (default clang), FUZZ_BUILD (default util/fuzz/build),
# FUZZ_FLAGS (more libFuzzer flags).  The seed corpus in util/fuzz/corpus/
# is only read; new inputs go to FUZZ_BUILD/corpus/TARGET and findings to
# FUZZ_BUILD/artifacts/.

set -eu

dir=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$dir/../.." && pwd)
seconds=${1:-60}
[ $# -gt 0 ] && shift

targets=${*:-"request anthropic_request anthropic_response anthropic_stream
              gemini_request gemini_response gemini_stream openai_stream
              messages_request messages_response messages_stream"}

cc=${CC:-clang}
build=${FUZZ_BUILD:-$dir/build}
src=$top/src

case $seconds in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "$0: $cc not found (apt-get install clang)" >&2
    exit 1
fi

mkdir -p "$build/artifacts"

cflags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
        -fno-sanitize-recover=all -Wall -Wextra -Wno-unused-parameter
        -Wno-unused-function -Werror -I$src"

libs=$(pkg-config --libs jansson 2>/dev/null || echo -ljansson)

for t in $targets; do
    xlat=$src/ngx_http_llm_fallback_translate.c

    # the streaming translation calls the error and usage helpers of both
    # formats
    case $t in
        request)     srcs=$src/ngx_http_llm_fallback_json.c ;;
        messages_*)  srcs="$src/ngx_http_llm_fallback_xlat_messages.c $xlat" ;;
        *_stream)    srcs="$src/ngx_http_llm_fallback_xlat_stream.c
                           $src/ngx_http_llm_fallback_anthropic.c
                           $src/ngx_http_llm_fallback_gemini.c $xlat" ;;
        anthropic_*) srcs="$src/ngx_http_llm_fallback_anthropic.c $xlat" ;;
        gemini_*)    srcs="$src/ngx_http_llm_fallback_gemini.c $xlat" ;;
        *) echo "$0: unknown target $t" >&2; exit 2 ;;
    esac

    echo "== build fuzz_$t"

    # shellcheck disable=SC2086
    $cc $cflags -o "$build/fuzz_$t" "$dir/fuzz_$t.c" $srcs $libs
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=

for t in $targets; do
    mkdir -p "$build/corpus/$t"

    case $t in
        request)   seeds="$dir/corpus/request $dir/corpus/openai_response" ;;
        messages_request)
                   seeds=$dir/corpus/messages_request ;;
        messages_response)
                   seeds="$dir/corpus/messages_response
                          $dir/corpus/openai_response" ;;
        messages_stream)
                   seeds="$dir/corpus/messages_stream
                          $dir/corpus/openai_stream" ;;
        *_request) seeds=$dir/corpus/request ;;
        *)         seeds=$dir/corpus/$t ;;
    esac

    echo "== run fuzz_$t for ${seconds}s"

    # shellcheck disable=SC2086
    if ! "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
             -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
             -dict="$dir/json.dict" \
             -artifact_prefix="$build/artifacts/$t-" \
             ${FUZZ_FLAGS:-} \
             "$build/corpus/$t" $seeds \
             >"$build/$t.log" 2>&1
    then
        tail -n 60 "$build/$t.log"
        echo "== FAIL fuzz_$t (log: $build/$t.log)"
        failed="$failed $t"
        continue
    fi

    # a report that did not end the run still fails it

    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
            "$build/$t.log"
    then
        grep -E -A20 'ERROR: |runtime error:' "$build/$t.log" | head -n 60
        echo "== FAIL fuzz_$t: sanitizer report (log: $build/$t.log)"
        failed="$failed $t"
        continue
    fi

    grep -E '^stat::number_of_executed_units|^Done' "$build/$t.log" || true
    echo "== ok fuzz_$t"
done

if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed"
    exit 1
fi

echo "fuzz: all targets ok"
