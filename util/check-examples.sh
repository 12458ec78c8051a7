#!/usr/bin/env bash
# nginx -t every conf/examples/*.conf with the module loaded, so the
# examples stay valid as directives change.
#
# usage: util/check-examples.sh MODULE_SO [CONF...]
#
# Each file is copied to a temporary prefix with "load_module MODULE_SO;"
# put on top (in place of the example's own load_module of the module).
# Variables named by api_key_env= get a dummy value when unset, and
# api_key_file= paths are pointed at a dummy key file (mode 0600), since
# both are read at configuration time. Nothing outside the temporary prefix
# is written except nginx's compiled-in temp directories (/var/lib/nginx),
# which nginx -t creates when missing.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
nginx=${NGINX_BIN:-/usr/sbin/nginx}
so=${1:?usage: $0 MODULE_SO [CONF...]}
shift

if [ $# -gt 0 ]; then
    confs=("$@")
else
    shopt -s nullglob
    confs=("$top"/conf/examples/*.conf)
fi

if [ ${#confs[@]} -eq 0 ]; then
    echo "check-examples: no conf/examples/*.conf" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf 'sk-dummy-key-for-nginx-t\n' > "$tmp/dummy.key"
chmod 600 "$tmp/dummy.key"

failed=0

for conf in "${confs[@]}"; do
    name=$(basename "$conf" .conf)
    prefix=$tmp/$name
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"

    {
        echo "load_module $so;"
        sed -E -e "s#api_key_file=[^[:space:];]+#api_key_file=$tmp/dummy.key#g" \
            -e "/^[[:space:]]*load_module[[:space:]].*ngx_http_llm_fallback_module\.so;/d" \
            "$conf"
    } > "$prefix/conf/nginx.conf"

    # other files next to the example (includes, key files, html)
    for d in "$(dirname "$conf")/$name"; do
        [ -d "$d" ] && cp -r "$d" "$prefix/conf/"
    done

    envs=()
    for v in $(grep -oE 'api_key_env=[A-Za-z_][A-Za-z0-9_]*' "$conf" \
               | sed 's/^api_key_env=//' | sort -u); do
        if [ -z "${!v:-}" ]; then
            envs+=("$v=dummy-$v")
        fi
    done

    if out=$(env "${envs[@]}" "$nginx" -t -p "$prefix/" \
                 -c conf/nginx.conf 2>&1)
    then
        echo "ok    ${conf#"$top"/}"

    else
        echo "FAIL  ${conf#"$top"/}"
        echo "$out" | sed 's/^/      /'
        failed=1
    fi
done

exit $failed
