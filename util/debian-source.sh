# shellcheck shell=bash
# Debian source packages through a private apt directory: sourced by
# util/build-asan.sh and util/build-nginx.sh. /etc/apt is only read; the
# lists, the cache and the sources list live under the caller's directory.
#
#   debsrc_from_system DIR   sources list: the machine's deb lines as deb-src
#   debsrc_archive_uri       the Debian archive URI the machine's apt uses
#   debsrc_set DIR LINE      sources list: that one line
#   debsrc_update DIR        apt-get update into DIR/lists
#   debsrc_versions PKG      the versions of PKG in the index, newest first
#   debsrc_sha256 PKG V FILE the sha256 of FILE of PKG=V in the index
#
# After debsrc_from_system or debsrc_set, the array debsrc_opts holds the
# options that point apt-get and apt-cache at DIR.

debsrc_log() {
    echo "${debsrc_name:-debian-source}: $*"
}


# the options and directories of the private apt in DIR
debsrc_init() {
    local apt=$1

    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" \
             "$apt/sources.list.d"
    rm -f "$apt/sources.list.d"/*

    debsrc_opts=(-q
                 -o "Dir::Etc::SourceList=/dev/null"
                 -o "Dir::Etc::SourceParts=$apt/sources.list.d"
                 -o "Dir::State::Lists=$apt/lists"
                 -o "Dir::Cache=$apt/cache"
                 -o "APT::Sandbox::User=root")
}


# the distro's deb lines (deb822 .sources and one-line .list files),
# turned into deb-src lines
debsrc_from_system() {
    local apt=$1 f

    debsrc_init "$apt"

    if [ -d /etc/apt/sources.list.d ]; then
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            sed 's/^Types:.*/Types: deb-src/' "$f"
            echo
        done > "$apt/sources.list.d/src.sources"

        for f in /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            sed -n 's/^deb /deb-src /p' "$f"
        done > "$apt/sources.list.d/src.list"
    fi

    if [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list \
            >> "$apt/sources.list.d/src.list"
    fi

    for f in "$apt/sources.list.d"/*; do
        [ -s "$f" ] || rm -f "$f"
    done

    if [ -z "$(ls "$apt/sources.list.d")" ]; then
        debsrc_log "no apt sources found in /etc/apt" >&2
        return 1
    fi
}


# The URI of the Debian archive itself (not -security, -updates or
# -backports, nor a third-party repository) in the machine's sources:
# a deb822 stanza or a one-line entry whose suites include a release
# codename, and that has a dists/ of Debian (the URI ends in /debian).
debsrc_archive_uri() {
    local f uri

    uri=$(
        {
            for f in /etc/apt/sources.list.d/*.sources; do
                [ -f "$f" ] && cat "$f" && echo
            done
        } | awk '
            /^[ \t]*#/ { next }
            /^[ \t]*$/ {
                if (types ~ /(^| )deb( |$)/ && release && uris != "") {
                    print uris
                }
                types = ""; uris = ""; release = 0
                next
            }
            tolower($1) == "types:" { $1 = ""; types = $0 " " }
            tolower($1) == "uris:" { uris = $2 }
            tolower($1) == "suites:" {
                for (i = 2; i <= NF; i++) {
                    if ($i !~ /-/) { release = 1 }
                }
            }
            END {
                if (types ~ /(^| )deb( |$)/ && release && uris != "") {
                    print uris
                }
            }'

        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            sed -e 's/\[[^]]*\]//' "$f" \
                | awk '$1 == "deb" && $3 !~ /-/ { print $2 }'
        done
    )

    uri=$(echo "$uri" | sed 's#/*$##' | grep -E '^https?://.*/debian$' \
          | head -n 1 || true)

    if [ -z "$uri" ]; then
        debsrc_log "no Debian archive found in the apt sources of /etc/apt" \
            >&2
        return 1
    fi

    echo "$uri"
}


debsrc_set() {
    local apt=$1 line=$2

    debsrc_init "$apt"
    echo "$line" > "$apt/sources.list.d/src.list"
}


debsrc_update() {
    local apt=$1

    debsrc_log "fetching the source index"

    apt-get "${debsrc_opts[@]}" update > "$apt/update.log" 2>&1 \
        || { cat "$apt/update.log" >&2; return 1; }
}


debsrc_versions() {
    apt-cache "${debsrc_opts[@]}" showsrc "$1" 2>/dev/null \
        | sed -n 's/^Version: //p' | sort -Vr | uniq
}


# the Checksums-Sha256 entry of FILE in the stanza of PKG version V
debsrc_sha256() {
    apt-cache "${debsrc_opts[@]}" showsrc "$1" 2>/dev/null \
        | awk -v v="$2" -v f="$3" '
            /^Package: / { ver = "" }
            /^Version: / { ver = $2 }
            /^[^ ]/ { sha = ($1 == "Checksums-Sha256:") }
            sha && /^ / && ver == v && $3 == f { print $1; exit }'
}
