#!/usr/bin/env bash
# Install the Debian packages the build, the test suites and the demo need.
# Quick no-op when everything is already installed. Runs as root (or via
# sudo when available). Services that package installation would start
# (nginx on :80, redis on :6379) are not started: tests and the demo run
# their own instances.

set -euo pipefail

packages=(
    # build
    gcc make libc6-dev dpkg-dev
    nginx nginx-dev
    libjansson-dev libhiredis-dev libcurl4-openssl-dev
    libssl-dev libpcre2-dev zlib1g-dev
    # AddressSanitizer build: Debian nginx sources are unpacked with
    # dpkg-source (dpkg-dev) from an .orig.tar.gz and a .debian.tar.xz
    xz-utils patch
    # nginx 1.26 (util/build-nginx.sh): the compiler and libraries above,
    # the Debian keyring that signs trixie's Sources index
    debian-archive-keyring
    # Debian package (make deb): dpkg-buildpackage checks build-essential
    # and debian/control's Build-Depends (nginx-dev gives dh-sequence-nginx);
    # no fakeroot: the package declares Rules-Requires-Root: no
    build-essential debhelper lintian
    # tests
    perl libtest-base-perl libtest-longstring-perl libtext-diff-perl
    libjson-pp-perl
    # OpenAI's schemas checked against every answer (t/lib/LLMSchema.pm)
    libjson-validator-perl
    curl ca-certificates redis-server wrk valgrind
    # libFuzzer harnesses of the translators (make fuzz)
    clang libclang-rt-14-dev
    # promtool for the Prometheus output and example rules
    prometheus
    nodejs
)

# make test-browser: the status page in headless Chromium, with a font for
# its screenshot; installed on its own so that a machine without them
# still gets everything else (make test-browser then says it is skipped)
browser_packages=(chromium fonts-dejavu-core)

# nodejs and npm: accept whatever node is already on PATH (CI images often
# ship node from another source than Debian).
missing=()
for p in "${packages[@]}"; do
    case $p in
    nodejs)
        if command -v node >/dev/null && command -v npm >/dev/null; then
            continue
        fi
        missing+=(nodejs npm)
        continue
        ;;
    libjson-pp-perl)
        # JSON::PP is part of perl itself
        continue
        ;;
    esac

    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$p")
    fi
done

browser_missing=()
for p in "${browser_packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        browser_missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ] && [ ${#browser_missing[@]} -eq 0 ]; then
    echo "deps: all packages installed"
    exit 0
fi

echo "deps: installing ${missing[*]} ${browser_missing[*]}"

sudo=
if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "deps: missing packages and not root: ${missing[*]}" >&2
        exit 1
    fi
    sudo="sudo -E"
fi

# Keep maintainer scripts from starting nginx (port 80) and redis-server
# (port 6379): a policy-rc.d answering 101 ("action forbidden") is honoured
# by invoke-rc.d and deb-systemd-invoke. Only install ours if there is none.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
    own_policy=1
    $sudo sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
fi

cleanup() {
    if [ -n "$own_policy" ]; then
        $sudo rm -f "$policy"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
# DEPS_APT_UPDATED=1: the caller (.ci/run) has just run apt-get update
if [ -z "${DEPS_APT_UPDATED:-}" ]; then
    $sudo apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
    $sudo apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold \
        "${missing[@]}"
fi

if [ ${#browser_missing[@]} -gt 0 ] \
   && ! $sudo apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef \
            -o Dpkg::Options::=--force-confold \
            "${browser_missing[@]}"
then
    echo "deps: WARNING: could not install ${browser_missing[*]}:" \
         "make test-browser will be skipped" >&2
fi

echo "deps: done"
