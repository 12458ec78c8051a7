#!/usr/bin/env bash
# Install the Debian package on this machine, use it, purge it.
#
# usage: util/test-deb.sh [DEB]    (as root; DEB defaults to the one
#                                   make deb left in build/)
#
#   1. apt-get install ./DEB (no service is started: a policy-rc.d that
#      forbids it is put in place when there is none)
#   2. the files are where they belong: the .so in /usr/lib/nginx/modules,
#      the load_module snippet in /usr/share/nginx/modules-available,
#      enabled by a symlink in /etc/nginx/modules-enabled, README and the
#      examples in /usr/share/doc/libnginx-mod-http-llm-fallback; Depends
#      names the nginx ABI the installed nginx provides and the package of
#      every library the module links
#   3. nginx -t of a configuration that uses the module's directives and
#      gets the module only through "include
#      /etc/nginx/modules-enabled/*.conf", as Debian's nginx.conf does
#      (and of Debian's own nginx.conf, if it passed before the install)
#   4. that nginx on two loopback ports: a chat request through
#      llm_fallback_chain, whose first provider answers 503 and whose
#      second is a fake provider (an nginx "return 200" of a
#      chat.completion); a worker maps the installed .so; llm_status
#   5. apt-get purge: no file of the package is left, no symlink, no doc
#      directory, /etc/nginx/modules-enabled and the list of installed
#      packages are as before
#
# The machine is left as it was found, also when a check fails or the
# script is interrupted: the trap stops the test nginx, purges the package
# (and whatever apt installed with it), removes its own policy-rc.d and
# the temporary prefix. A machine that already has the package, or any of
# its files, is refused rather than changed.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
pkg=libnginx-mod-http-llm-fallback
nginx=/usr/sbin/nginx
so=/usr/lib/nginx/modules/ngx_http_llm_fallback_module.so
available=/usr/share/nginx/modules-available
snippet=$available/mod-http-llm-fallback.conf
enabled=/etc/nginx/modules-enabled
doc=/usr/share/doc/$pkg
policy=/usr/sbin/policy-rc.d

passed=0
failed=0
installed=
own_policy=
tmp=
master=
pkgs_before=

log() {
    echo "test-deb: $*"
}

ok() {
    passed=$((passed + 1))
    echo "ok    $*"
}

not_ok() {
    failed=$((failed + 1))
    echo "FAIL  $*"
}

# check DESCRIPTION COMMAND...: one check, counted
check() {
    local what=$1
    shift

    if "$@"; then
        ok "$what"
    else
        not_ok "$what"
    fi
}

# a failure after which nothing else can be checked
fatal() {
    not_ok "$*"
    exit 1
}

status_of() {
    dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true
}

package_list() {
    dpkg-query -W -f='${db:Status-Status} ${Package}:${Architecture}\n' \
        | awk '$1 != "not-installed" { print $2 }' | sort
}

stop_nginx() {
    [ -n "$master" ] || return 0

    if kill -0 "$master" 2>/dev/null; then
        kill -QUIT "$master" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$master" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$master" 2>/dev/null; then
            log "nginx $master did not quit in 10 s: killed"
            kill -KILL "$master" 2>/dev/null || true
        fi
    fi
    master=
}

cleanup() {
    local rc=$? extra

    set +e
    stop_nginx

    if [ -n "$installed" ] && [ -n "$(status_of "$pkg")" ] \
       && [ "$(status_of "$pkg")" != not-installed ]
    then
        log "cleanup: purging $pkg"
        apt-get purge -y -q "$pkg" > "$tmp/apt-cleanup.log" 2>&1 \
            || dpkg --purge "$pkg"
    fi

    # whatever apt installed along with the package
    if [ -n "$pkgs_before" ]; then
        extra=$(comm -13 <(echo "$pkgs_before") <(package_list))
        if [ -n "$extra" ]; then
            log "cleanup: purging what was installed with it:" \
                "${extra//$'\n'/ }"
            # shellcheck disable=SC2086
            apt-get purge -y -q $extra > /dev/null 2>&1
        fi
    fi

    if [ -n "$own_policy" ]; then
        rm -f "$policy"
    fi

    if [ $rc -ne 0 ] && [ -n "$tmp" ] && [ -f "$tmp/error.log" ]; then
        log "the test nginx's error log:"
        tail -n 30 "$tmp/error.log" | sed 's/^/    /'
    fi
    [ -n "$tmp" ] && rm -rf "$tmp"

    echo "test-deb: $passed passed, $failed failed"
    if [ $rc -eq 0 ] && [ $failed -ne 0 ]; then
        rc=1
    fi
    exit $rc
}

# the entries of a directory: name, type, symlink target
list_dir() {
    find "$1" -mindepth 1 -printf '%P %y %l\n' 2>/dev/null | sort || true
}

# in_depends PACKAGE: PACKAGE is one of the packages named in Depends
in_depends() {
    local names

    [ -n "$1" ] || return 1
    names=$(tr ',|' '\n' <<< "$depends" | sed 's/^ *//; s/[ :].*//')
    grep -qx -- "$1" <<< "$names"
}

free_port() {
    local p

    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 30000))
        if [ -z "$(ss -Htln "sport = :$p")" ] && [ "$p" != "${1:-}" ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}


# ---------------------------------------------------------------- before

if [ "$(id -u)" != 0 ]; then
    log "installs a package: run as root" >&2
    exit 1
fi

if [ $# -gt 0 ]; then
    deb=$1
else
    shopt -s nullglob
    debs=("$top"/build/"$pkg"_*.deb)
    shopt -u nullglob
    if [ ${#debs[@]} -ne 1 ]; then
        log "want exactly one build/${pkg}_*.deb (make deb), found" \
            "${#debs[@]}" >&2
        exit 1
    fi
    deb=${debs[0]}
fi
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

for tool in apt-get dpkg-deb curl ss "$nginx"; do
    if ! command -v "$tool" > /dev/null; then
        log "$tool is missing: run 'make deps'" >&2
        exit 1
    fi
done

if [ -n "$(status_of "$pkg")" ] && [ "$(status_of "$pkg")" != not-installed ]
then
    log "$pkg is already on this machine ($(status_of "$pkg")):" \
        "not touching it; purge it first" >&2
    exit 1
fi

# the package's own paths (directories shared with others, like /usr/share,
# are left out: they exist before)
mapfile -t files < <(dpkg-deb --fsys-tarfile "$deb" | tar -t \
                     | sed -e 's#^\./#/#' -e 's#/$##' | grep -v '^/\?$')
new_paths=()
for f in "${files[@]}"; do
    if [ ! -e "$f" ] && [ ! -L "$f" ]; then
        new_paths+=("$f")
    elif [ ! -d "$f" ]; then
        log "$f is already there (not from the package): not touching it" >&2
        exit 1
    fi
done

shopt -s nullglob
links=("$enabled"/*mod-http-llm-fallback.conf*)
shopt -u nullglob
if [ ${#links[@]} -gt 0 ]; then
    log "${links[*]} is already there: not touching it" >&2
    exit 1
fi

trap cleanup EXIT
trap 'exit 130' INT TERM

tmp=$(mktemp -d /tmp/test-deb.XXXXXX)
# workers run as nobody: the temporary directories must be reachable
chmod 755 "$tmp"

pkgs_before=$(package_list)
enabled_before=$(list_dir "$enabled")

system_conf_ok=
if "$nginx" -t -q > /dev/null 2>&1; then
    system_conf_ok=1
fi

# nginx's postinst would start nginx on port 80 if it were installed now,
# and a reload is triggered by the module's: forbid both, as make deps does
if [ ! -e "$policy" ]; then
    own_policy=1
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
fi


# ---------------------------------------------------------------- install

log "apt-get install $deb"
installed=1
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold \
        "$deb" > "$tmp/apt-install.log" 2>&1
then
    sed 's/^/    /' "$tmp/apt-install.log"
    fatal "apt-get install ./$(basename "$deb")"
fi
ok "apt-get install ./$(basename "$deb")"

check "dpkg: $pkg installed" [ "$(status_of "$pkg")" = installed ]

extra=$(comm -13 <(echo "$pkgs_before") <(package_list) \
        | grep -v "^$pkg:" || true)
check "apt installed nothing else${extra:+ (it did: $extra)}" [ -z "$extra" ]


# ---------------------------------------------------------------- files

check "$so" [ -f "$so" ]
check "$snippet loads modules/$(basename "$so")" \
    [ "$(cat "$snippet" 2>/dev/null)" \
      = "load_module modules/$(basename "$so");" ]

# modules/ is relative to nginx's prefix, /usr/share/nginx, whose modules
# symlink (nginx-common) points at /usr/lib/nginx/modules
check "/usr/share/nginx/modules/$(basename "$so") is $so" \
    [ /usr/share/nginx/modules/"$(basename "$so")" -ef "$so" ]

shopt -s nullglob
links=("$enabled"/*mod-http-llm-fallback.conf)
shopt -u nullglob
check "one symlink in $enabled (${links[*]:-none})" [ ${#links[@]} -eq 1 ]
if [ ${#links[@]} -eq 1 ]; then
    check "${links[0]} -> $snippet" \
        [ -L "${links[0]}" -a "$(readlink "${links[0]}")" = "$snippet" ]
fi

check "$doc/copyright" [ -f "$doc/copyright" ]
check "$doc/changelog.gz" [ -f "$doc/changelog.gz" ]
check "$doc/README.md(.gz)" [ -f "$doc/README.md" -o -f "$doc/README.md.gz" ]
for f in "$top"/conf/examples/*; do
    e=$doc/examples/$(basename "$f")
    check "$e(.gz)" [ -f "$e" -o -f "$e.gz" ]
done

depends=$(dpkg-query -W -f='${Depends}' "$pkg")
echo "      Depends: $depends"

# the nginx ABI: named in Depends and provided by the installed nginx
abi=$(echo "$depends" | tr ',' '\n' | sed 's/^ *//; s/ .*//' \
      | grep '^nginx-abi-' || true)
provides=$(dpkg-query -W -f='${Provides}' nginx 2>/dev/null || true)
check "Depends names an nginx ABI (${abi:-none})" [ -n "$abi" ]
check "the installed nginx provides $abi ($provides)" \
    grep -qw -- "$abi" <<< "$provides"

# every library the module links comes from a package named in Depends
for soname in $(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    lib=$(ldconfig -p | awk -v s="$soname" '$1 == s && !n++ { print $NF }')
    owner=
    if [ -n "$lib" ]; then
        owner=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null \
                || dpkg -S "$lib" 2>/dev/null || true)
        owner=${owner%%:*}
    fi
    check "$soname (${owner:-no package}) is in Depends" \
        in_depends "$owner"
done


# ---------------------------------------------------------------- nginx -t

port=$(free_port) || fatal "no free loopback port"
port2=$(free_port "$port") || fatal "no second free loopback port"

cat > "$tmp/nginx.conf" << EOF
# the module comes only from the package's snippet, as with Debian's
# nginx.conf
include /etc/nginx/modules-enabled/*.conf;

worker_processes  1;
pid               $tmp/nginx.pid;
error_log         $tmp/error.log info;

events {
    worker_connections  64;
}

http {
    access_log             $tmp/access.log;
    client_body_temp_path  $tmp/client_body;
    proxy_temp_path        $tmp/proxy;
    fastcgi_temp_path      $tmp/fastcgi;
    uwsgi_temp_path        $tmp/uwsgi;
    scgi_temp_path         $tmp/scgi;

    llm_circuit_breaker  zone=llm_test_deb:64k failures=5;

    llm_provider  down  uri=/_llm/down  format=openai  model=m-down;
    llm_provider  fake  uri=/_llm/fake  format=openai  model=m-fake;

    server {
        listen  127.0.0.1:$port;

        llm_fallback_on       error timeout invalid_response http_5xx;
        llm_fallback_timeout  30s;
        llm_response_headers  on;

        location = /v1/chat/completions {
            llm_fallback_chain  down fake;
        }

        location = /llm/status {
            llm_status;
        }

        location = /_llm/down {
            internal;
            proxy_pass  http://127.0.0.1:$port2/down;
        }

        location = /_llm/fake {
            internal;
            proxy_pass  http://127.0.0.1:$port2/v1/chat/completions;
        }
    }

    # the providers
    server {
        listen  127.0.0.1:$port2;

        location = /down {
            default_type  application/json;
            return  503 '{"error":{"message":"overloaded"}}';
        }

        location = /v1/chat/completions {
            default_type  application/json;
            return  200 '{"id":"chatcmpl-deb","object":"chat.completion","created":1,"model":"m-fake","choices":[{"index":0,"message":{"role":"assistant","content":"hello from the package"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}';
        }
    }
}
EOF

if out=$("$nginx" -t -c "$tmp/nginx.conf" 2>&1); then
    ok "nginx -t of a configuration with the module's directives"
else
    sed 's/^/    /' <<< "$out"
    fatal "nginx -t of a configuration with the module's directives"
fi

if [ -n "$system_conf_ok" ]; then
    if out=$("$nginx" -t 2>&1); then
        ok "nginx -t of /etc/nginx/nginx.conf with the module enabled"
    else
        sed 's/^/    /' <<< "$out"
        not_ok "nginx -t of /etc/nginx/nginx.conf with the module enabled"
    fi
fi


# ---------------------------------------------------------------- request

if ! "$nginx" -c "$tmp/nginx.conf" > "$tmp/start.log" 2>&1; then
    sed 's/^/    /' "$tmp/start.log"
    fatal "nginx -c $tmp/nginx.conf"
fi
for _ in $(seq 1 100); do
    [ -s "$tmp/nginx.pid" ] && break
    sleep 0.1
done
master=$(cat "$tmp/nginx.pid" 2>/dev/null || true)
[ -n "$master" ] || fatal "nginx started (no $tmp/nginx.pid)"
ok "nginx started on 127.0.0.1:$port (master $master)"

# wait until both listeners answer
for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/llm/status" \
       && curl -s -o /dev/null "http://127.0.0.1:$port2/"
    then
        break
    fi
    sleep 0.1
done

maps=
for w in $(pgrep -P "$master" || true); do
    if grep -qF "$so" "/proc/$w/maps" 2>/dev/null; then
        maps=$w
    fi
done
check "a worker (${maps:-none}) maps $so" [ -n "$maps" ]

code=$(curl -sS --max-time 60 -o "$tmp/body" -D "$tmp/headers" \
            -w '%{http_code}' -H 'Content-Type: application/json' \
            -d '{"model":"any","messages":[{"role":"user","content":"hi"}]}' \
            "http://127.0.0.1:$port/v1/chat/completions" || true)
tr -d '\r' < "$tmp/headers" > "$tmp/headers.txt" || true
body=$(cat "$tmp/body" 2>/dev/null || true)

check "POST /v1/chat/completions: 200 (got ${code:-nothing})" [ "$code" = 200 ]
check "X-LLM-Provider: fake" \
    grep -qix 'X-LLM-Provider: fake' "$tmp/headers.txt"
check "X-LLM-Attempts: 2" grep -qix 'X-LLM-Attempts: 2' "$tmp/headers.txt"
check "X-LLM-Fallback: down:http_503" \
    grep -qix 'X-LLM-Fallback: down:http_503' "$tmp/headers.txt"
check "the answer is the fake provider's chat.completion" \
    grep -q '"object":"chat.completion".*"content":"hello from the package"' \
    <<< "$body"
if [ "$code" != 200 ]; then
    sed 's/^/    /' "$tmp/headers.txt" 2>/dev/null || true
    echo "    $body"
fi

status=$(curl -sS --max-time 30 "http://127.0.0.1:$port/llm/status" || true)
check "llm_status counts an attempt of each provider" \
    grep -qE '"down":\{[^}]*"attempts":1,.*"fake":\{[^}]*"successes":1' \
    <<< "$status"

stop_nginx
check "nginx stopped" [ ! -s "$tmp/nginx.pid" ]


# ---------------------------------------------------------------- purge

log "apt-get purge $pkg"
if apt-get purge -y -q "$pkg" > "$tmp/apt-purge.log" 2>&1; then
    ok "apt-get purge $pkg"
else
    sed 's/^/    /' "$tmp/apt-purge.log"
    not_ok "apt-get purge $pkg"
fi

st=$(status_of "$pkg")
check "dpkg: $pkg not installed (${st:-not known to dpkg})" \
    [ -z "$st" -o "$st" = not-installed ]

left=()
for f in "${new_paths[@]}"; do
    if [ -e "$f" ] || [ -L "$f" ]; then
        left+=("$f")
    fi
done
check "no file or directory of the package is left${left:+: ${left[*]}}" \
    [ ${#left[@]} -eq 0 ]
check "no $so" [ ! -e "$so" ]
check "no $snippet" [ ! -e "$snippet" ]
check "no $doc" [ ! -e "$doc" ]

shopt -s nullglob
links=("$enabled"/*mod-http-llm-fallback.conf*)
shopt -u nullglob
check "no symlink in $enabled${links:+: ${links[*]}}" [ ${#links[@]} -eq 0 ]

enabled_after=$(list_dir "$enabled")
check "$enabled is as before" [ "$enabled_after" = "$enabled_before" ]

extra=$(comm -3 <(echo "$pkgs_before") <(package_list) | tr -d '\t')
check "the installed packages are as before${extra:+ (differ: $extra)}" \
    [ -z "$extra" ]
