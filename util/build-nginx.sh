#!/usr/bin/env bash
# Build a newer nginx than the distro's, and the module against it with
# warnings as errors: nginx 1.26.3, the version of Debian 13 (trixie), from
# the upstream tarball of Debian's source package.
#
# usage: util/build-nginx.sh [DIR]        (default build/nginx-1.26)
#
#   DIR/apt/             private apt lists and cache (/etc/apt is only
#                        read: its Debian archive URI gives the one
#                        "deb-src URI trixie main" line)
#   DIR/src/nginx-1.26.3/  nginx_1.26.3.orig.tar.gz, checked against the
#                        sha256 of the Sources index, unpacked
#   DIR/obj/             nginx build directory
#   DIR/sbin/nginx       the nginx binary (prefix DIR, error log on stderr)
#   DIR/ngx_http_llm_fallback_module.so
#
# The source is fetched once; configure runs again only when the module's
# config file or the arguments changed; make rebuilds what changed. Only
# the upstream tarball is used (Debian's patches are not applied: the
# .dsc and debian.tar.xz may be missing from the mirror).
#
# environment: NGINX_SUITE (trixie), NGINX_DEBIAN_VERSION (1.26.3-3+deb13u10;
# when the index does not have it, the newest 1.26.3 one it has),
# JOBS (nproc).

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build/nginx-1.26}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

module=ngx_http_llm_fallback_module
suite=${NGINX_SUITE:-trixie}
debian_version=${NGINX_DEBIAN_VERSION:-1.26.3-3+deb13u10}
upstream=${debian_version%%-*}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# Debian's hardening flags, and warnings as errors (nginx adds -Werror to
# its own flags with gcc too)
cc_opt="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security"
cc_opt="$cc_opt -fPIC -Wdate-time -D_FORTIFY_SOURCE=2 -Werror"
ld_opt="-Wl,-z,relro -Wl,-z,now -fPIC"

# the built-in modules of Debian's nginx binary that the suites, the SDK
# test and conf/examples use (ssi, sub, gunzip, dav, realip, stub_status,
# limit_req, ...), paths under DIR
args=(--prefix="$dir"
      --error-log-path=stderr
      --with-compat
      --with-debug
      --with-threads
      --with-pcre-jit
      --with-http_ssl_module
      --with-http_v2_module
      --with-http_stub_status_module
      --with-http_realip_module
      --with-http_auth_request_module
      --with-http_dav_module
      --with-http_slice_module
      --with-http_addition_module
      --with-http_flv_module
      --with-http_gunzip_module
      --with-http_gzip_static_module
      --with-http_mp4_module
      --with-http_random_index_module
      --with-http_secure_link_module
      --with-http_sub_module)

log() {
    echo "build-nginx: $*"
}

debsrc_name=build-nginx
# shellcheck source=util/debian-source.sh
. "$top/util/debian-source.sh"


fetch_source() {
    local apt=$dir/apt src=$dir/src dl=$dir/src.tmp uri signed v versions
    local tarball=nginx_$upstream.orig.tar.gz want got

    uri=$(debsrc_archive_uri) || return 1

    signed=
    [ -f "$keyring" ] && signed="[signed-by=$keyring] "

    debsrc_set "$apt" "deb-src $signed$uri $suite main"
    debsrc_update "$apt" || return 1

    versions=$(debsrc_versions nginx)

    v=
    if echo "$versions" | grep -qxF "$debian_version"; then
        v=$debian_version
    else
        v=$(echo "$versions" | grep -E "^${upstream//./\\.}-" | head -n 1 \
            || true)
    fi

    if [ -z "$v" ]; then
        log "no nginx $upstream in $uri $suite (it has: ${versions//$'\n'/ })" >&2
        return 1
    fi

    want=$(debsrc_sha256 nginx "$v" "$tarball")
    if [ -z "$want" ]; then
        log "no sha256 of $tarball in the index of nginx $v" >&2
        return 1
    fi

    rm -rf "$dl"
    mkdir -p "$dl"

    # the .dsc and the Debian tarball may be missing from the mirror:
    # apt-get fails for them, the upstream tarball is what is needed
    log "apt-get source --download-only nginx=$v ($uri $suite)"
    (cd "$dl" && apt-get "${debsrc_opts[@]}" source --download-only \
                     "nginx=$v") > "$apt/source.log" 2>&1 || true

    if [ ! -f "$dl/$tarball" ]; then
        cat "$apt/source.log" >&2
        log "could not fetch $tarball" >&2
        return 1
    fi

    got=$(sha256sum "$dl/$tarball" | cut -d ' ' -f 1)
    if [ "$got" != "$want" ]; then
        log "$tarball: sha256 $got, the index says $want" >&2
        rm -rf "$dl"
        return 1
    fi

    log "$tarball: sha256 $got ok"

    tar -C "$dl" -xzf "$dl/$tarball"

    if [ ! -x "$dl/nginx-$upstream/configure" ]; then
        log "$tarball has no nginx-$upstream/configure" >&2
        return 1
    fi

    rm -rf "$src"
    mkdir -p "$src"
    mv "$dl/nginx-$upstream" "$src/"
    rm -rf "$dl"
}


srcdir=$dir/src/nginx-$upstream

if [ ! -x "$srcdir/configure" ]; then
    fetch_source
fi

obj=$dir/obj
stamp=$(printf '%s\n' "${args[@]}" "$cc_opt" "$ld_opt" "$srcdir")

if [ ! -f "$obj/Makefile" ] || [ "$top/config" -nt "$obj/Makefile" ] \
   || [ "$stamp" != "$(cat "$obj/configure.stamp" 2>/dev/null)" ]
then
    log "configure ($srcdir)"
    rm -f "$obj/Makefile" "$obj/configure.stamp"
    mkdir -p "$obj"

    (cd "$srcdir" \
     && ./configure "${args[@]}" \
            --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
            --add-dynamic-module="$top" --builddir="$obj") \
        > "$dir/configure.log" 2>&1 \
        || { tail -n 30 "$dir/configure.log" >&2; exit 1; }

    printf '%s\n' "$stamp" > "$obj/configure.stamp"
fi

log "make (nginx $upstream + module)"
make -j"$jobs" -C "$srcdir" -f "$obj/Makefile" binary modules \
    > "$dir/make.log" 2>&1 \
    || { grep -E 'error|warning' "$dir/make.log" | head -n 40 >&2;
         tail -n 20 "$dir/make.log" >&2; exit 1; }

# renamed into place: a running nginx that mapped the old file is not hurt
mkdir -p "$dir/sbin"
for f in "$obj/nginx:$dir/sbin/nginx" "$obj/$module.so:$dir/$module.so"; do
    from=${f%%:*}
    to=${f#*:}
    if ! cmp -s "$from" "$to"; then
        cp "$from" "$to.tmp" && mv -f "$to.tmp" "$to"
    fi
done

log "$dir/sbin/nginx ($("$dir/sbin/nginx" -v 2>&1))"
log "$dir/$module.so"
