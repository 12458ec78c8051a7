#!/usr/bin/env bash
# Build the Debian package libnginx-mod-http-llm-fallback (debian/) with
# dpkg-buildpackage, debhelper and nginx-dev's dh-sequence-nginx, then check
# it with lintian.
#
# usage: util/build-deb.sh [OUT]          (OUT defaults to build/)
#
#   OUT/deb/libnginx-mod-http-llm-fallback-VERSION/
#                       the copy of the sources that is built, so nothing in
#                       the repository is written to
#   OUT/deb/build.log   dpkg-buildpackage's output
#   OUT/deb/lintian.log lintian's output
#   OUT/deb/*.deb, *.changes, *.buildinfo
#                       everything dpkg-buildpackage made (with the -dbgsym
#                       package of the module's debugging symbols)
#   OUT/libnginx-mod-http-llm-fallback_VERSION_ARCH.deb
#                       the package (any older one is removed)
#
# VERSION is the one of debian/changelog's first entry. lintian fails the
# build on any error or warning not overridden in debian/ (each override
# says why it is there).

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build}
mkdir -p "$out"
out=$(cd "$out" && pwd)

pkg=libnginx-mod-http-llm-fallback

log() {
    echo "build-deb: $*"
}

for tool in dpkg-buildpackage dpkg-parsechangelog dh dh_nginx lintian; do
    if ! command -v "$tool" > /dev/null; then
        log "$tool is missing: run 'make deps'" >&2
        exit 1
    fi
done

version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
deb=${pkg}_${version}_${arch}.deb

dir=$out/deb
src=$dir/$pkg-$version

rm -rf "$dir"
mkdir -p "$src/conf"

# what the package is built from
cp -a "$top/config" "$top/ngx_http_llm_fallback_module.c" "$top/src" \
      "$top/README.md" "$top/debian" "$src/"
cp -a "$top/conf/examples" "$src/conf/"

if [ -z "${DEB_BUILD_OPTIONS:-}" ]; then
    export DEB_BUILD_OPTIONS="parallel=${JOBS:-$(nproc 2>/dev/null || echo 2)}"
fi

log "dpkg-buildpackage $pkg $version ($dir/build.log)"
if ! (cd "$src" && dpkg-buildpackage -uc -us) > "$dir/build.log" 2>&1
then
    tail -n 40 "$dir/build.log" >&2
    log "dpkg-buildpackage failed; the whole log is $dir/build.log" >&2
    exit 1
fi

if [ ! -f "$dir/$deb" ]; then
    log "dpkg-buildpackage made no $deb" >&2
    exit 1
fi

log "lintian ($dir/lintian.log)"
rc=0
lintian --fail-on error,warning --display-info --show-overrides \
    "$dir/${pkg}_${version}_${arch}.changes" > "$dir/lintian.log" 2>&1 \
    || rc=$?
cat "$dir/lintian.log"
if [ $rc -ne 0 ]; then
    log "lintian failed (exit $rc)" >&2
    exit 1
fi

rm -f "$out/${pkg}"_*.deb
cp "$dir/$deb" "$out/$deb"

log "built $out/$deb"
dpkg-deb -f "$out/$deb" Package Version Architecture Depends | sed 's/^/    /'
