#!/bin/sh

# The cost of translation: the same load through an openai provider and
# through an anthropic and a gemini provider, each backed by a fake with
# the same latency (echo_sleep), one nginx worker each, on 127.0.0.1.
#
#   util/bench-formats.sh [DELAY_SECONDS] [DURATION]    (0.02, 5s)
#
# Needs wrk, nginx with ngx_http_echo_module (libnginx-mod-http-echo) for
# the fakes, and the module built: MODULE_SO (default build/nginx/...).
# Everything runs under a temporary prefix; only processes started here
# are stopped, by PID.

set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
delay=${1:-0.02}
duration=${2:-5s}
nginx=${NGINX_BIN:-/usr/sbin/nginx}
so=${MODULE_SO:-$top/build/nginx/ngx_http_llm_fallback_module.so}
echo_so=${ECHO_SO:-/usr/lib/nginx/modules/ngx_http_echo_module.so}
lua=${BENCH_LUA:-$top/bench/post.lua}
body=${BENCH_BODY_FILE:-$top/bench/chat-request.json}
fake_port=${FAKE_PORT:-18401}
gw_port=${GW_PORT:-18402}

dir=$(mktemp -d)
pids=

cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null || true
    done
    sleep 0.3
    rm -rf "$dir"
}

trap cleanup EXIT INT TERM

mkdir -p "$dir/fake/logs" "$dir/gw/logs"

openai='{"id":"chatcmpl-BENCHMOCK000000000000000001","object":"chat.completion","created":1732300000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"An nginx-resident gateway keeps failover, caching and circuit breaking in the event loop that already serves clients, so no extra hop or runtime is added.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":48,"completion_tokens":33,"total_tokens":81}}'
anthropic='{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[{"type":"text","text":"An nginx-resident gateway keeps failover, caching and circuit breaking in the event loop that already serves clients, so no extra hop or runtime is added."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":48,"output_tokens":33,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}'
gemini='{"candidates":[{"content":{"parts":[{"text":"An nginx-resident gateway keeps failover, caching and circuit breaking in the event loop that already serves clients, so no extra hop or runtime is added."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":48,"candidatesTokenCount":33,"totalTokenCount":81},"modelVersion":"gemini-2.0-flash-001","responseId":"mAitaLmkHPPlz7IPvtfUqQ4"}'

cat > "$dir/fake/nginx.conf" <<END
load_module $echo_so;
worker_processes 1;
daemon off;
pid $dir/fake/logs/nginx.pid;
error_log $dir/fake/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/fake/logs;
    keepalive_requests 1000000;
    default_type application/json;
    server {
        listen 127.0.0.1:$fake_port backlog=4096;
        location = /v1/chat/completions {
            echo_read_request_body; echo_sleep $delay; echo -n '$openai';
        }
        location = /v1/messages {
            echo_read_request_body; echo_sleep $delay; echo -n '$anthropic';
        }
        location ~ ^/v1beta/models/ {
            echo_read_request_body; echo_sleep $delay; echo -n '$gemini';
        }
    }
}
END

cat > "$dir/gw/nginx.conf" <<END
load_module $so;
worker_processes 1;
daemon off;
pid $dir/gw/logs/nginx.pid;
error_log $dir/gw/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/gw/logs;
    proxy_temp_path $dir/gw/logs;
    keepalive_requests 1000000;

    upstream fake { server 127.0.0.1:$fake_port; keepalive 64; }

    llm_provider openai uri=/_llm/openai format=openai api_key=sk-bench;
    llm_provider claude uri=/_llm/anthropic format=anthropic
                 model=claude-3-5-haiku-latest api_key=sk-ant-bench;
    llm_provider gemini uri=/_llm/gemini format=gemini
                 model=gemini-2.0-flash api_key=AIza-bench;

    server {
        listen 127.0.0.1:$gw_port backlog=4096;

        location = /openai { llm_fallback_chain openai; }
        location = /anthropic { llm_fallback_chain claude; }
        location = /gemini { llm_fallback_chain gemini; }

        proxy_http_version 1.1;
        proxy_set_header Connection "";

        location = /_llm/openai {
            internal; proxy_pass http://fake/v1/chat/completions;
        }
        location = /_llm/anthropic {
            internal; proxy_pass http://fake/v1/messages;
        }
        location = /_llm/gemini {
            internal;
            proxy_pass http://fake/v1beta/models/\$llm_provider_model:generateContent;
        }
    }
}
END

"$nginx" -p "$dir/fake/" -c "$dir/fake/nginx.conf" &
pids="$pids $!"
"$nginx" -p "$dir/gw/" -c "$dir/gw/nginx.conf" &
pids="$pids $!"
sleep 0.5

for path in openai anthropic gemini; do
    curl -sf -X POST "http://127.0.0.1:$gw_port/$path" \
         -H 'Content-Type: application/json' --data-binary "@$body" \
         >/dev/null || { echo "smoke test of /$path failed" >&2; exit 1; }
done

gw_master=$(cat "$dir/gw/logs/nginx.pid")
gw_worker=$(pgrep -P "$gw_master" | head -n 1)

# the gateway worker's CPU time (utime + stime), in clock ticks
ticks() {
    awk '{ print $14 + $15 }' "/proc/$gw_worker/stat"
}

# the wrk result line, with the gateway worker's CPU microseconds per
# request appended: a measure that other load on the machine does not skew
result() {
    t0=$(ticks)
    line=$(BENCH_BODY_FILE=$body BENCH_LABEL=$1 \
           wrk -t1 -c10 -d"$duration" -s "$lua" \
               "http://127.0.0.1:$gw_port/$1" | grep '^BENCH_RESULT')
    t1=$(ticks)
    n=$(echo "$line" | sed -E 's/.* requests=([0-9]+).*/\1/')
    echo "$line cpu_us_per_req=$(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) / n ))"
}

# warm up, then measure each in turn
for path in openai anthropic gemini; do
    BENCH_BODY_FILE=$body wrk -t1 -c10 -d1s -s "$lua" \
        "http://127.0.0.1:$gw_port/$path" >/dev/null
done

o=$(result openai)
a=$(result anthropic)
g=$(result gemini)

echo "$o"
echo "$a"
echo "$g"

rps() { echo "$1" | sed -E 's/.* rps=([0-9.]+).*/\1/'; }
cpu() { echo "$1" | sed -E 's/.* cpu_us_per_req=([0-9]+).*/\1/'; }

awk -v o="$(rps "$o")" -v a="$(rps "$a")" -v g="$(rps "$g")" \
    -v co="$(cpu "$o")" -v ca="$(cpu "$a")" -v cg="$(cpu "$g")" \
    -v d="$delay" 'BEGIN {
        printf "fake latency %ss: rps anthropic/openai %.3f, " \
               "gemini/openai %.3f\n", d, a / o, g / o
        printf "gateway CPU per request: openai %dus, anthropic %dus, " \
               "gemini %dus; openai/anthropic %.3f, openai/gemini %.3f\n",
               co, ca, cg, co / ca, co / cg
    }'
