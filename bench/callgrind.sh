#!/usr/bin/env bash
# Instructions per request, counted by callgrind: stable on a noisy
# machine, so a regression on the hot path shows without timing noise.
#
# For each target (plain proxy_pass, the module's pass-through, its
# fallback, an open circuit skipped, a Redis cache HIT and the translation
# to anthropic), nginx runs as a single process under callgrind twice: with
# SMALL and with LARGE requests on one keepalive connection. The difference
# of the two totals divided by LARGE - SMALL is the cost of one request,
# start-up and shut-down excluded. The mock provider runs natively.
#
# The messages-* targets send bench/messages-request.json to the
# Messages door.
#
# Knobs: SMALL=200 LARGE=1200 MODULE_SO=build/ngx_http_llm_fallback_module.so
#        TARGETS="proxy module-pass module-fallback module-open
#                 module-cache-hit module-anthropic"
# module-cache-hit needs redis-server (started here, on REDIS_PORT).

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOP="$(cd "$HERE/.." && pwd)"

SMALL="${SMALL:-200}"
LARGE="${LARGE:-1200}"
MOCK_PORT="${MOCK_PORT:-18191}"
PORT="${PORT:-18192}"
REDIS_PORT="${REDIS_PORT:-18194}"
MODULE_SO="${MODULE_SO:-$TOP/build/ngx_http_llm_fallback_module.so}"
NGINX="${NGINX:-/usr/sbin/nginx}"
RUN_DIR="/tmp/llm-bench/callgrind-$(date +%Y%m%d-%H%M%S)"

command -v valgrind >/dev/null || { echo "missing: valgrind" >&2; exit 2; }
[ -f "$MODULE_SO" ] || { echo "no $MODULE_SO: run make first" >&2; exit 2; }

mkdir -p "$RUN_DIR"
MOCK_PID=
REDIS_PID=

cleanup() {
    [ -n "$MOCK_PID" ] && kill -QUIT "$MOCK_PID" 2>/dev/null || true
    [ -n "$REDIS_PID" ] && kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

conf() {  # template prefix port
    mkdir -p "$2/conf" "$2/logs" "$2/tmp"
    sed -e "s|@WORKERS@|1|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" \
        -e "s|@PROXY_PORT@|$3|g" -e "s|@MODULE_PORT@|$3|g" \
        -e "s|@MODULE_SO@|$MODULE_SO|g" -e "s|@REDIS_PORT@|$REDIS_PORT|g" \
        -e "s|^daemon .*|daemon off; master_process off;|" "$1" \
        > "$2/conf/nginx.conf"
}

# N requests on one keepalive connection; fails unless every answer is 200
client() {  # port uri n
    perl -MIO::Socket::INET -e '
        my ($port, $uri, $n, $file) = @ARGV;
        open my $f, "<", $file or die $!; local $/; my $body = <$f>;
        $body =~ s/\n\z//;
        my $s; for (1 .. 100) {
            $s = IO::Socket::INET->new("127.0.0.1:$port") and last;
            select(undef, undef, undef, 0.1);
        }
        $s or die "no connection\n";
        $/ = "\n";
        for my $i (1 .. $n) {
            print $s "POST $uri HTTP/1.1\r\nHost: b\r\n"
                . "Content-Type: application/json\r\n"
                . "Content-Length: " . length($body) . "\r\n\r\n$body";
            my ($st, $len);
            while (defined(my $l = <$s>)) {
                $st //= $l =~ m{^HTTP/1.1 (\d+)} ? $1 : 0;
                $len = $1 if $l =~ /^Content-Length: (\d+)/i;
                last if $l eq "\r\n";
            }
            read($s, my $b, $len // 0);
            die "request $i: status $st\n" unless $st == 200;
        }' "$@" "$HERE/${BODY_FILE:-chat-request.json}"
}

total() {  # callgrind out file -> total Ir
    sed -n 's/^summary: \([0-9]*\).*/\1/p; s/^totals: \([0-9]*\).*/\1/p' "$1" \
        | head -n 1
}

measure() {  # name template uri n [warm-up uri]
    local prefix="$RUN_DIR/$1-$4" pid
    conf "$2" "$prefix" "$PORT"
    valgrind --tool=callgrind --callgrind-out-file="$prefix/callgrind.out" \
        "$NGINX" -p "$prefix/" -c "$prefix/conf/nginx.conf" \
        2> "$prefix/valgrind.log" &
    pid=$!
    # the circuit opened, the cache filled: not counted in either run
    if [ -n "${5:-}" ] && ! client "$PORT" "$5" 1 >&2; then
        kill -QUIT "$pid" 2>/dev/null || true
        wait "$pid" || true
        echo "$1: the warm-up failed, see $prefix/valgrind.log" >&2
        return 1
    fi
    if ! client "$PORT" "$3" "$4" >&2; then
        kill -QUIT "$pid" 2>/dev/null || true
        wait "$pid" || true
        echo "$1: the client failed, see $prefix/valgrind.log" >&2
        return 1
    fi
    kill -QUIT "$pid"
    wait "$pid" || true
    total "$prefix/callgrind.out"
}

mkdir -p "$RUN_DIR/mock/conf" "$RUN_DIR/mock/logs" "$RUN_DIR/mock/tmp"
sed -e "s|@WORKERS@|1|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" "$HERE/mock.conf" \
    > "$RUN_DIR/mock/conf/nginx.conf"
"$NGINX" -p "$RUN_DIR/mock/" -c "$RUN_DIR/mock/conf/nginx.conf" &
MOCK_PID=$!

echo "| target | instructions per request | vs proxy_pass |"
echo "|---|---:|---:|"

# name|template|uri|warm-up uri (one request before each run)
TARGET_TABLE="
proxy|$HERE/proxy.conf|/v1/chat/completions|
module-pass|$HERE/module.conf|/v1/chat/completions|
module-fallback|$HERE/module.conf|/fallback/v1/chat/completions|
module-open|$HERE/module.conf|/open/v1/chat/completions|/open/v1/chat/completions
module-cache-hit|$HERE/module.conf|/cached/v1/chat/completions|/cached/v1/chat/completions
module-anthropic|$HERE/module.conf|/anthropic/v1/chat/completions|
messages-anthropic|$HERE/module.conf|/messages/v1/messages|
messages-openai|$HERE/module.conf|/messages-openai/v1/messages|
"
TARGETS="${TARGETS:-proxy module-pass module-fallback module-open
                    module-cache-hit module-anthropic messages-anthropic
                    messages-openai}"

if [[ " $TARGETS " == *" module-cache-hit "* ]]; then
    if command -v redis-server >/dev/null; then
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' \
            --appendonly no --daemonize no > "$RUN_DIR/redis.log" 2>&1 &
        REDIS_PID=$!
    else
        echo "no redis-server: module-cache-hit is skipped" >&2
        TARGETS=${TARGETS//module-cache-hit/}
    fi
fi

set -o pipefail

base=
for name in $TARGETS; do
    IFS='|' read -r _ tmpl uri warm \
        <<< "$(awk -F'|' -v n="$name" '$1 == n' <<< "$TARGET_TABLE")"
    [ -n "$tmpl" ] || { echo "unknown target $name" >&2; exit 2; }
    case "$name" in
        messages-*) export BODY_FILE=messages-request.json ;;
        *)          export BODY_FILE=chat-request.json ;;
    esac
    a=$(measure "$name" "$tmpl" "$uri" "$SMALL" "$warm")
    b=$(measure "$name" "$tmpl" "$uri" "$LARGE" "$warm")
    per=$(( (b - a) / (LARGE - SMALL) ))
    base=${base:-$per}
    awk -v n="$name" -v p="$per" -v b="$base" \
        'BEGIN { printf "| %s | %d | %.2fx |\n", n, p, p / b }'
done | tee "$RUN_DIR/callgrind.md"
