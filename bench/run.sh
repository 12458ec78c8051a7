#!/usr/bin/env bash
# The module against plain nginx proxy_pass, in one run, on loopback.
#
# Starts three nginx instances under $BENCH_DIR_RUN (one worker each by
# default): the mock provider (mock.conf), plain proxy_pass with upstream
# keepalive (proxy.conf) and nginx with the module (module.conf), then runs
# the same wrk load against each scenario and prints a table of RPS ratios
# and added latency against proxy_pass. Every process it started is
# stopped, by PID. Only 127.0.0.1 is contacted; every load is bounded.
#
# Knobs: WORKERS=1 DURATION=10s CONNS=50 SERIAL_DURATION=5s WARMUP=2s
#        MOCK_PORT=18181 PROXY_PORT=18182 MODULE_PORT=18183
#        MODULE_SO=build/ngx_http_llm_fallback_module.so
#        SCENARIOS="..." (see scenario table below)

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOP="$(cd "$HERE/.." && pwd)"

WORKERS="${WORKERS:-1}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-50}"
SERIAL_DURATION="${SERIAL_DURATION:-5s}"
WARMUP="${WARMUP:-2s}"
MOCK_PORT="${MOCK_PORT:-18181}"
PROXY_PORT="${PROXY_PORT:-18182}"
MODULE_PORT="${MODULE_PORT:-18183}"
REDIS_PORT="${REDIS_PORT:-18184}"
MODULE_SO="${MODULE_SO:-$TOP/build/ngx_http_llm_fallback_module.so}"
NGINX="${NGINX:-/usr/sbin/nginx}"
RUN_DIR="${BENCH_DIR_RUN:-/tmp/llm-bench/run-$(date +%Y%m%d-%H%M%S)}"

# name|url|what it measures|baseline scenario for the ratio
SCENARIO_TABLE="
proxy|http://127.0.0.1:$PROXY_PORT/v1/chat/completions|plain nginx proxy_pass + keepalive|proxy
proxy-fallback|http://127.0.0.1:$PROXY_PORT/fallback/v1/chat/completions|plain nginx: 503, error_page to a 2nd upstream|proxy
module-pass|http://127.0.0.1:$MODULE_PORT/v1/chat/completions|module, one openai provider|proxy
module-fallback|http://127.0.0.1:$MODULE_PORT/fallback/v1/chat/completions|module, 1st provider 503, 2nd answers|proxy
module-open|http://127.0.0.1:$MODULE_PORT/open/v1/chat/completions|module, 1st provider's circuit open, 2nd answers (ratio vs module-pass)|module-pass
module-cache-hit|http://127.0.0.1:$MODULE_PORT/cached/v1/chat/completions|module, Redis cache HIT|proxy
module-anthropic|http://127.0.0.1:$MODULE_PORT/anthropic/v1/chat/completions|module, translated to anthropic (ratio vs module-pass)|module-pass
messages-anthropic|http://127.0.0.1:$MODULE_PORT/messages/v1/messages|module, Messages door to an anthropic provider, no translation (ratio vs module-pass)|module-pass
messages-openai|http://127.0.0.1:$MODULE_PORT/messages-openai/v1/messages|module, Messages door to an openai provider, translated both ways (ratio vs module-pass)|module-pass
proxy-stream|http://127.0.0.1:$PROXY_PORT/stream/v1/chat/completions|plain nginx proxy_pass of a 16-event SSE stream, unbuffered|proxy-stream
module-stream|http://127.0.0.1:$MODULE_PORT/stream/v1/chat/completions|module, the same stream through the commit point (ratio vs proxy-stream)|proxy-stream
"
SCENARIOS="${SCENARIOS:-proxy proxy-fallback module-pass module-fallback module-open module-cache-hit module-anthropic messages-anthropic messages-openai proxy-stream module-stream}"

# the request body of a scenario: streams ask for a stream
body_of() {
    case "$1" in
        *-stream) echo chat-request-stream.json ;;
        messages-*) echo messages-request.json ;;
        *)        echo chat-request.json ;;
    esac
}

case "$RUN_DIR" in /tmp/*) ;; *) echo "RUN_DIR must be under /tmp" >&2; exit 2;; esac

for tool in "$NGINX" wrk curl; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done

[ -f "$MODULE_SO" ] || { echo "no $MODULE_SO: run make first" >&2; exit 2; }

mkdir -p "$RUN_DIR"
declare -a PIDS=()

log() { printf '[bench] %s\n' "$*" >&2; }

cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        case "$(cat /proc/"$pid"/comm 2>/dev/null)" in
            nginx) kill -QUIT "$pid" 2>/dev/null || true ;;
            *)     kill -TERM "$pid" 2>/dev/null || true ;;
        esac
    done
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_nginx() {  # name template
    local prefix="$RUN_DIR/$1"
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
    sed -e "s|@WORKERS@|$WORKERS|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" \
        -e "s|@PROXY_PORT@|$PROXY_PORT|g" -e "s|@MODULE_PORT@|$MODULE_PORT|g" \
        -e "s|@MODULE_SO@|$MODULE_SO|g" -e "s|@REDIS_PORT@|$REDIS_PORT|g" \
        "$2" > "$prefix/conf/nginx.conf"
    "$NGINX" -t -q -p "$prefix/" -c "$prefix/conf/nginx.conf"
    "$NGINX" -p "$prefix/" -c "$prefix/conf/nginx.conf" &
    PIDS+=("$!")
}

wait_url() {
    for _ in $(seq 1 50); do
        curl -s -o /dev/null -m 1 -X POST -H 'Content-Type: application/json' \
            --data-binary @"$HERE/chat-request.json" "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

if command -v redis-server >/dev/null; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' \
        --appendonly no --daemonize no > "$RUN_DIR/redis.log" 2>&1 &
    PIDS+=("$!")
else
    log "no redis-server: the module-cache-hit scenario is skipped"
    SCENARIOS=${SCENARIOS//module-cache-hit/}
fi

start_nginx mock "$HERE/mock.conf"
start_nginx proxy "$HERE/proxy.conf"
start_nginx module "$HERE/module.conf"

wait_url "http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
wait_url "http://127.0.0.1:$PROXY_PORT/v1/chat/completions"
wait_url "http://127.0.0.1:$MODULE_PORT/v1/chat/completions"

# open the "dead" provider's circuit, fill the cache
wait_url "http://127.0.0.1:$MODULE_PORT/open/v1/chat/completions"
wait_url "http://127.0.0.1:$MODULE_PORT/cached/v1/chat/completions" || true

log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A RPS P50 P99 ERRS

# run mode scenario url: wrk, one BENCH_RESULT line
run() {
    local mode="$1" name="$2" url="$3" out args body
    body=$(body_of "$name")
    case "$mode" in
        sat)    args=(-t2 "-c$CONNS" "-d$DURATION") ;;
        serial) args=(-t1 -c1 "-d$SERIAL_DURATION") ;;
    esac

    (cd "$HERE" && BENCH_BODY_FILE="$body" wrk -t1 -c4 "-d$WARMUP" \
        -s post.lua "$url" > /dev/null 2>&1) || true

    out=$(cd "$HERE" && BENCH_LABEL="$name" BENCH_BODY_FILE="$body" \
          wrk "${args[@]}" --latency -s post.lua "$url" 2>&1 \
          | tee "$RUN_DIR/$mode-$name.txt" | grep '^BENCH_RESULT')

    RPS[$mode/$name]=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<< "$out")
    P50[$mode/$name]=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<< "$out")
    P99[$mode/$name]=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<< "$out")
    ERRS[$mode/$name]=$(sed -n 's/.* non2xx=\([0-9]*\) sock_errors=\([0-9]*\).*/\1+\2/p' <<< "$out")
    log "$mode $name: $out"
}

url_of() { awk -F'|' -v n="$1" '$1 == n { print $2 }' <<< "$SCENARIO_TABLE"; }
desc_of() { awk -F'|' -v n="$1" '$1 == n { print $3 }' <<< "$SCENARIO_TABLE"; }
base_of() { awk -F'|' -v n="$1" '$1 == n { print $4 }' <<< "$SCENARIO_TABLE"; }

for mode in sat serial; do
    for s in $SCENARIOS; do
        run "$mode" "$s" "$(url_of "$s")"
    done
done

# time to first byte of the stream scenarios, one request at a time:
# curl's time_starttransfer over TTFB_N requests, p50 and p99 in us
TTFB_N="${TTFB_N:-300}"
declare -A TTFB50 TTFB99

ttfb() {
    local name="$1" url="$2" i
    for i in $(seq 1 "$TTFB_N"); do
        curl -s -o /dev/null -w '%{time_starttransfer}\n' -X POST \
            -H 'Content-Type: application/json' \
            --data-binary @"$HERE/$(body_of "$name")" "$url"
    done | sort -n | awk '{ t[NR] = $1 * 1000000 }
        END { printf "%d %d\n", t[int(NR * 0.5)], t[int(NR * 0.99)] }' \
        > "$RUN_DIR/ttfb-$name.txt"
    read -r TTFB50[$name] TTFB99[$name] < "$RUN_DIR/ttfb-$name.txt"
    log "ttfb $name: p50 ${TTFB50[$name]} us, p99 ${TTFB99[$name]} us"
}

for s in $SCENARIOS; do
    case "$s" in *-stream) ttfb "$s" "$(url_of "$s")" ;; esac
done

log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

{
    echo "| scenario | what | sat RPS | ratio | serial RPS | ratio | serial p50 us | added p50 us | serial p99 us | errors |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for s in $SCENARIOS; do
        b=$(base_of "$s")
        awk -v s="$s" -v d="$(desc_of "$s")" \
            -v r="${RPS[sat/$s]}" -v rb="${RPS[sat/$b]}" \
            -v sr="${RPS[serial/$s]}" -v srb="${RPS[serial/$b]}" \
            -v p="${P50[serial/$s]}" -v pb="${P50[serial/$b]}" \
            -v p99="${P99[serial/$s]}" \
            -v e="${ERRS[sat/$s]},${ERRS[serial/$s]}" \
            'BEGIN { printf "| %s | %s | %.0f | %.2f | %.0f | %.2f | %d | %+d | %d | %s |\n",
                     s, d, r, r / rb, sr, sr / srb, p, p - pb, p99, e }'
    done

    if [ -n "${TTFB50[proxy-stream]:-}" ] && [ -n "${TTFB50[module-stream]:-}" ]; then
        echo
        echo "| stream time to first byte (curl, $TTFB_N one at a time) | p50 us | p99 us |"
        echo "|---|---:|---:|"
        echo "| proxy-stream | ${TTFB50[proxy-stream]} | ${TTFB99[proxy-stream]} |"
        echo "| module-stream | ${TTFB50[module-stream]} | ${TTFB99[module-stream]} |"
        echo "| added by the module | $((TTFB50[module-stream] - TTFB50[proxy-stream])) | $((TTFB99[module-stream] - TTFB99[proxy-stream])) |"
    fi
} | tee "$RUN_DIR/results.md"

log "raw output and logs: $RUN_DIR"
