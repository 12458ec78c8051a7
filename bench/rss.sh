#!/usr/bin/env bash
# Worker RSS over a million requests (issue 7: "worker RSS flat (within
# 2 MiB) over one million requests").
#
# Starts the mock provider (mock.conf) and nginx with the module
# (module.conf, one worker), then runs wrk in rounds against SCENARIOS
# (pass-through, fallback, anthropic translation, stream) until REQUESTS
# requests were answered, reading the worker's VmRSS after a warm-up
# round and after each round. Prints the RSS series and the growth from
# the warm-up to the end; exits non-zero when it is above LIMIT_KIB.
#
# Knobs: REQUESTS=1000000 ROUND=10s CONNS=50 LIMIT_KIB=2048
#        MOCK_PORT=18281 MODULE_PORT=18283

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOP="$(cd "$HERE/.." && pwd)"

REQUESTS="${REQUESTS:-1000000}"
ROUND="${ROUND:-10s}"
CONNS="${CONNS:-50}"
LIMIT_KIB="${LIMIT_KIB:-2048}"
MOCK_PORT="${MOCK_PORT:-18281}"
MODULE_PORT="${MODULE_PORT:-18283}"
MODULE_SO="${MODULE_SO:-$TOP/build/ngx_http_llm_fallback_module.so}"
NGINX="${NGINX:-/usr/sbin/nginx}"
RUN_DIR="/tmp/llm-bench/rss-$(date +%Y%m%d-%H%M%S)"

# path|request body: each round cycles through them
PATHS="v1/chat/completions|chat-request.json
fallback/v1/chat/completions|chat-request.json
anthropic/v1/chat/completions|chat-request.json
stream/v1/chat/completions|chat-request-stream.json"

for tool in "$NGINX" wrk curl; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done

[ -f "$MODULE_SO" ] || { echo "no $MODULE_SO: run make first" >&2; exit 2; }

mkdir -p "$RUN_DIR"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

start() {  # name template
    local prefix="$RUN_DIR/$1"
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
    sed -e "s|@WORKERS@|1|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" \
        -e "s|@MODULE_PORT@|$MODULE_PORT|g" -e "s|@MODULE_SO@|$MODULE_SO|g" \
        -e "s|@REDIS_PORT@|1|g" -e "s|@PROXY_PORT@|1|g" \
        "$2" > "$prefix/conf/nginx.conf"
    # master process on: the worker is the one measured
    sed -i -e 's/^daemon .*/daemon off;/' "$prefix/conf/nginx.conf"
    "$NGINX" -p "$prefix/" -c "$prefix/conf/nginx.conf" -g 'master_process on;' &
    PIDS+=("$!")
}

start mock "$HERE/mock.conf"
start module "$HERE/module.conf"

for _ in $(seq 1 50); do
    curl -s -o /dev/null -m 1 -X POST -H 'Content-Type: application/json' \
        --data-binary @"$HERE/chat-request.json" \
        "http://127.0.0.1:$MODULE_PORT/v1/chat/completions" && break
    sleep 0.1
done

master=$(cat "$RUN_DIR/module/logs/nginx.pid")
worker=$(pgrep -P "$master" | head -n 1)
[ -n "$worker" ] || { echo "no worker of $master" >&2; exit 1; }

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$worker/status"; }

# one round: every path for ROUND / 4; prints the requests answered
round() {
    local total=0 line path body n
    while IFS='|' read -r path body; do
        n=$(cd "$HERE" && BENCH_LABEL=rss BENCH_BODY_FILE="$body" \
            wrk -t2 "-c$CONNS" "-d$ROUND" -s post.lua \
                "http://127.0.0.1:$MODULE_PORT/$path" 2>&1 \
            | sed -n 's/^BENCH_RESULT .* requests=\([0-9]*\) .* non2xx=\([0-9]*\) .*/\1 \2/p')
        read -r req bad <<< "$n"
        [ "${bad:-0}" = 0 ] || { echo "non-2xx answers on /$path: $bad" >&2; exit 1; }
        total=$((total + req))
    done <<< "$PATHS"
    echo "$total"
}

done_requests=$(round)
base=$(rss)
echo "warm-up: $done_requests requests, worker RSS $base KiB"

while [ "$done_requests" -lt "$REQUESTS" ]; do
    n=$(round)
    done_requests=$((done_requests + n))
    echo "after $done_requests requests: worker RSS $(rss) KiB"
done

end=$(rss)
growth=$((end - base))
echo "worker RSS: $base KiB after warm-up, $end KiB after $done_requests" \
     "requests: $growth KiB growth (limit $LIMIT_KIB)"

[ "$growth" -le "$LIMIT_KIB" ]
