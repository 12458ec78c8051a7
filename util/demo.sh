#!/usr/bin/env bash
# make demo / make demo-stop: nginx with the module on 127.0.0.1:8080 under
# build/demo (never /etc/nginx or /var), from conf/examples/demo.conf.
#
# usage: util/demo.sh start     run in the foreground (Ctrl-C stops it);
#                               DEMO_DETACH=1 runs it in the background
#        util/demo.sh stop      stop a running demo
#        util/demo.sh config    write build/demo/conf/nginx.conf, nginx -t
#
# environment: DEMO_PORT (8080), DEMO_FAKE_PORT (8081), NGINX_BIN
# (/usr/sbin/nginx), LLM_MODULE_SO (build/ngx_http_llm_fallback_module.so),
# OPENAI_API_KEY, GROQ_API_KEY, MISTRAL_API_KEY (real providers, optional).

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
prefix=$top/build/demo
nginx=${NGINX_BIN:-/usr/sbin/nginx}
so=${LLM_MODULE_SO:-$top/build/ngx_http_llm_fallback_module.so}
port=${DEMO_PORT:-8080}
fake_port=${DEMO_FAKE_PORT:-8081}
pidfile=$prefix/logs/nginx.pid

# name:environment variable, in chain order
real_providers="openai:OPENAI_API_KEY groq:GROQ_API_KEY mistral:MISTRAL_API_KEY"


running_pid() {
    local pid

    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q nginx \
        || return 1
    echo "$pid"
}


write_config() {
    local chain="" p name var ns sedargs=()

    if [ ! -f "$so" ]; then
        echo "demo: $so not found: run 'make' first" >&2
        exit 1
    fi

    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"

    for p in $real_providers; do
        name=${p%%:*}
        var=${p#*:}
        if [ -n "${!var:-}" ]; then
            chain="$chain $name"
            sedargs+=(-e "s/^\\(\\s*\\)#\\(.*\\)  #@$name\$/\\1\\2/")
        fi
    done

    if [ -z "$chain" ]; then
        chain=" flaky healthy"

    else
        chain="$chain healthy"
    fi

    # the host's own name servers (IPv4) for the real providers
    ns=$(sed -n 's/^nameserver[[:space:]]\+\([0-9.]\+\)[[:space:]]*$/\1/p' \
             /etc/resolv.conf 2>/dev/null | head -n 3 | tr '\n' ' ' || true)
    if [ -n "$ns" ]; then
        sedargs+=(-e "s/^\\(\\s*resolver \\+\\)1\\.1\\.1\\.1 /\\1$ns/")
    fi

    sedargs+=(-e "s/127\\.0\\.0\\.1:8080;/127.0.0.1:$port;/"
              -e "s/127\\.0\\.0\\.1:8081;/127.0.0.1:$fake_port;/"
              -e "s/^\\(\\s*llm_fallback_chain \\+\\).*#@chain\$/\\1${chain# };/")

    {
        echo "load_module $so;"
        echo
        sed "${sedargs[@]}" "$top/conf/examples/demo.conf"
    } > "$prefix/conf/nginx.conf.tmp"
    mv -f "$prefix/conf/nginx.conf.tmp" "$prefix/conf/nginx.conf"

    if ! "$nginx" -q -t -p "$prefix/" -c conf/nginx.conf; then
        echo "demo: $prefix/conf/nginx.conf is not valid" >&2
        exit 1
    fi

    chain_shown=${chain# }
}


banner() {
    local url=http://127.0.0.1:$port

    cat << END

ngx_http_llm_fallback_module demo on $url
  chain: $chain_shown
  conf:  $prefix/conf/nginx.conf
  logs:  $prefix/logs/access.log (provider, attempts, fallback reasons)

Try (a fallback from "flaky" to "healthy" without API keys):

  curl -si $url/chat -H 'Content-Type: application/json' \\
       -d '{"model":"any","messages":[{"role":"user","content":"Hi"}]}'

  curl -sN $url/chat -H 'Content-Type: application/json' \\
       -d '{"model":"any","stream":true,"messages":[{"role":"user","content":"Hi"}]}'

  curl -si $url/v1/messages -H 'Content-Type: application/json' \\
       -H 'anthropic-version: 2023-06-01' \\
       -d '{"model":"any","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}'

  curl -s $url/v1/models

OpenAI SDKs: baseURL $url/v1 (any apiKey).
Claude Code, Anthropic SDKs: ANTHROPIC_BASE_URL=$url (any key).
Stop with Ctrl-C or 'make demo-stop'.

END

    local v
    for v in ANTHROPIC_API_KEY GEMINI_API_KEY; do
        if [ -n "${!v:-}" ]; then
            echo "note: $v is set but the demo's chain has only" \
                 "OpenAI-compatible providers (conf/examples/claude-code.conf" \
                 "and multi-provider.conf use anthropic and gemini)"
            echo
        fi
    done
}


case ${1:-start} in
start)
    if pid=$(running_pid); then
        echo "demo: already running (pid $pid); 'make demo-stop' stops it"
        exit 1
    fi

    write_config
    banner

    if [ -n "${DEMO_DETACH:-}" ]; then
        "$nginx" -p "$prefix/" -c conf/nginx.conf
        echo "demo: started in the background (pid $(cat "$pidfile"))"
        exit 0
    fi

    # the access log on the terminal too, while in the foreground
    tail -n 0 -F "$prefix/logs/access.log" 2>/dev/null &
    tail_pid=$!
    trap 'kill $tail_pid 2>/dev/null || true' EXIT

    # nginx in the foreground: Ctrl-C reaches it (same process group) and
    # make demo-stop sends it SIGQUIT through the pid file
    rc=0
    "$nginx" -p "$prefix/" -c conf/nginx.conf -g 'daemon off;' || rc=$?
    echo "demo: stopped"
    exit $rc
    ;;

stop)
    if ! pid=$(running_pid); then
        echo "demo: not running"
        exit 0
    fi

    kill -QUIT "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || { echo "demo: stopped"; exit 0; }
        sleep 0.2
    done

    echo "demo: pid $pid did not quit in 10 s, sending TERM" >&2
    kill -TERM "$pid" 2>/dev/null || true
    ;;

config)
    write_config
    echo "demo: $prefix/conf/nginx.conf ok (chain: $chain_shown)"
    ;;

*)
    echo "usage: $0 start|stop|config" >&2
    exit 2
    ;;
esac
