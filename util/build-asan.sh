#!/usr/bin/env bash
# Build nginx itself and the module with AddressSanitizer + UBSan, from
# Debian's nginx source package, so that nginx's pools are checked too:
# -DNGX_DEBUG_PALLOC=1 turns every pool allocation into its own malloc(),
# which ASan guards (nginx development guide, "Debugging memory issues").
#
# usage: util/build-asan.sh DIR
#
#   DIR/src/nginx-*/     unpacked Debian source (fetched once with apt-get
#                        source, using private apt lists: /etc/apt is left
#                        alone)
#   DIR/obj/             nginx build directory
#   DIR/sbin/nginx       the sanitized nginx binary
#   DIR/ngx_http_llm_fallback_module.so
#
# nginx is configured with the configure arguments of the distro binary
# (nginx -V of $NGINX_BIN, default /usr/sbin/nginx), without its --with-cc-opt
# and --with-ld-opt and without the dynamic modules that need more libraries
# (geoip, image_filter, perl, xslt), so it has the same built-in modules
# (gunzip, sub, ...) and behaves like /usr/sbin/nginx. Without a distro binary
# nginx-dev's conf_flags are used.
# configure runs again only when the module's config file, the arguments or
# the flags changed; NO_UBSAN=1 builds without UBSan.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build/asan}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

module=ngx_http_llm_fallback_module
nginx_dev=${NGINX_DEV:-/usr/share/nginx/src}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# UBSan runs in trap mode: undefined behaviour executes a trap instruction,
# which ASan (ASAN_OPTIONS=handle_sigill=1, util/asan-env.sh) reports with
# a stack trace like any other error. GCC's libubsan is a separate run time
# that reads its options lazily from /proc/self/environ at the first report;
# in nginx workers setproctitle() has overwritten that memory by then, so its
# reports (and ASan's afterwards) would go to nginx's stderr (error.log,
# wiped by Test::Nginx for every block) instead of log_path.
# Not checked: alignment (nginx reads unaligned words on x86 on purpose) and
# nonnull-attribute (nginx passes NULL with length 0 to memcpy()).
cc_opt="-g -O1 -fno-omit-frame-pointer -fsanitize=address"
if [ -z "${NO_UBSAN:-}" ]; then
    cc_opt="$cc_opt -fsanitize=undefined -fsanitize-undefined-trap-on-error"
    cc_opt="$cc_opt -fno-sanitize=alignment,nonnull-attribute"
fi
cc_opt="$cc_opt -DNGX_DEBUG_PALLOC=1 -Werror"
# -z nodelete: nginx dlclose()s modules when it exits, before LeakSanitizer
# runs; keeping the module mapped lets leak reports name its functions.
# (A reload dlopen()s the module while the old cycle still holds it, so
# nothing changes there.)
ld_opt="-fsanitize=address -Wl,-z,nodelete"

log() {
    echo "build-asan: $*"
}

debsrc_name=build-asan
# shellcheck source=util/debian-source.sh
. "$top/util/debian-source.sh"


fetch_source() {
    local apt=$dir/apt src=$dir/src v versions

    rm -rf "$src.tmp"
    mkdir -p "$src.tmp"

    # the distro's deb lines, turned into deb-src lines, in a private list
    debsrc_from_system "$apt" || return 1
    debsrc_update "$apt" || return 1

    # newest first; a version may be listed but missing on the mirror
    # (security pool), so try them in turn
    versions=$(debsrc_versions nginx)

    for v in $versions; do
        log "apt-get source nginx=$v"
        if (cd "$src.tmp" && apt-get "${debsrc_opts[@]}" source "nginx=$v") \
            > "$apt/source.log" 2>&1
        then
            rm -rf "$src"
            mv "$src.tmp" "$src"
            return 0
        fi
        rm -rf "$src.tmp" && mkdir -p "$src.tmp"
    done

    cat "$apt/source.log" >&2
    log "could not fetch Debian's nginx source package" >&2
    return 1
}



# the distro binary's configure arguments, for the same set of modules
configure_args() {
    local line a
    local -a all=()

    args=()
    line=$("${NGINX_BIN:-/usr/sbin/nginx}" -V 2>&1 \
           | sed -n 's/^configure arguments: //p' || true)

    if [ -n "$line" ]; then
        # nginx prints them shell-quoted (--with-cc-opt='-g -O2 ...')
        eval "all=($line)"

    else
        # shellcheck disable=SC1091
        . "$nginx_dev/conf_flags"
        all=("${NGX_CONF_FLAGS[@]}")
    fi

    for a in "${all[@]}"; do
        case $a in
        --with-cc-opt=* | --with-ld-opt=* | --add-module=* \
        | --add-dynamic-module=* | --builddir=*)
            ;;
        --with-http_geoip_module=dynamic | --with-stream_geoip_module=dynamic \
        | --with-http_image_filter_module=dynamic \
        | --with-http_perl_module=dynamic | --with-http_xslt_module=dynamic)
            ;;
        *)
            args+=("$a")
            ;;
        esac
    done
}


srcdir=$(ls -d "$dir"/src/nginx-[0-9]*/ 2>/dev/null | head -n 1 || true)

if [ -z "$srcdir" ] || [ ! -x "$srcdir/configure" ]; then
    fetch_source
    srcdir=$(ls -d "$dir"/src/nginx-[0-9]*/ | head -n 1)
fi

srcdir=${srcdir%/}
obj=$dir/obj

configure_args
stamp=$(printf '%s\n' "${args[@]}" "$cc_opt" "$ld_opt" "$srcdir")

if [ ! -f "$obj/Makefile" ] || [ "$top/config" -nt "$obj/Makefile" ] \
   || [ "$stamp" != "$(cat "$obj/configure.stamp" 2>/dev/null)" ]
then
    log "configure ($srcdir)"
    rm -f "$obj/Makefile" "$obj/configure.stamp"
    mkdir -p "$obj"

    # configure runs test programs: leaks in them must not fail features
    (cd "$srcdir" \
     && ASAN_OPTIONS=detect_leaks=0 ./configure "${args[@]}" \
            --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
            --add-dynamic-module="$top" --builddir="$obj") \
        > "$dir/configure.log" 2>&1 \
        || { tail -n 30 "$dir/configure.log" >&2; exit 1; }

    printf '%s\n' "$stamp" > "$obj/configure.stamp"
fi

log "make (nginx + module)"
ASAN_OPTIONS=detect_leaks=0 make -j"$jobs" -C "$srcdir" -f "$obj/Makefile" \
    binary modules > "$dir/make.log" 2>&1 \
    || { grep -E 'error|warning' "$dir/make.log" | head -n 40 >&2;
         tail -n 20 "$dir/make.log" >&2; exit 1; }

mkdir -p "$dir/sbin"
for f in "$obj/nginx:$dir/sbin/nginx" "$obj/$module.so:$dir/$module.so"; do
    from=${f%%:*}
    to=${f#*:}
    if ! cmp -s "$from" "$to"; then
        cp "$from" "$to.tmp" && mv -f "$to.tmp" "$to"
    fi
done

log "$dir/sbin/nginx"
log "$dir/$module.so"
