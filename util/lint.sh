#!/usr/bin/env bash
# C style checks in the spirit of lua-nginx-module's CI: lines over 80
# columns, tabs, trailing white space and C++ "//" comments in the module's
# *.c and *.h files. Prints every hit as file:line: text and fails on any.
#
# And the layering rule: src/ngx_http_llm_fallback_handler.c, the driver,
# is the only file that moves the chain on, sends the response or ends the
# request. A call of the driver's names (ngx_http_llm_fallback_next,
# _finish, the senders _send_result, _send_error, _send_stream_header) or
# of ngx_http_finalize_request() in any other file fails: a service
# reports through what the driver hands it (README "Inside the module").
#
# usage: util/lint.sh [FILE...]     (default: *.c src/*.c src/*.h)

set -euo pipefail

cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
    files=("$@")
else
    shopt -s nullglob
    files=(*.c *.h src/*.c src/*.h)
fi

if [ ${#files[@]} -eq 0 ]; then
    echo "lint: no C files found" >&2
    exit 1
fi

exec perl -e '
    use strict;
    use warnings;

    my $hits = 0;

    sub report {
        my ($file, $line, $what, $text) = @_;
        $hits++;
        chomp $text;
        print "$file:$line: $what: $text\n";
    }

    for my $file (@ARGV) {
        open my $fh, "<", $file or die "lint: $file: $!\n";
        my @lines = <$fh>;
        close $fh;

        my $n = 0;
        for my $l (@lines) {
            $n++;
            my $t = $l;
            $t =~ s/\r?\n\z//;
            report($file, $n, "longer than 80 columns", $l)
                if length($t) > 80;
            report($file, $n, "tab", $l) if $t =~ /\t/;
            report($file, $n, "trailing white space", $l)
                if $t =~ /\s\z/;
        }

        # "//" comments: blank out /* */ comments, string and character
        # literals (keeping new lines so line numbers stay right), then look
        # for what is left.
        my $src = join "", @lines;
        $src =~ s{ (/\*.*?\*/) | ("(?:\\.|[^"\\\n])*") | (\x27(?:\\.|[^\x27\\\n])*\x27) }{
            my $m = $1 // $2 // $3;
            (my $k = $m) =~ s/[^\n]/ /g;
            $k;
        }gsex;

        $n = 0;
        for my $l (split /\n/, $src, -1) {
            $n++;
            if ($l =~ m{//}) {
                report($file, $n, "C++ comment", $lines[$n - 1]);
            }

            # a definition (at the start of its line) is not a call

            next if $file =~ m{(?:^|/)ngx_http_llm_fallback_handler\.c\z}
                    || $file !~ m{\.c\z} || $l =~ m{^ngx_http_};

            if ($l =~ m{\b(ngx_http_llm_fallback_(?:next|finish|send_result
                                                  |send_error
                                                  |send_stream_header)
                         |ngx_http_finalize_request)\s*\(}x)
            {
                report($file, $n, "calls the driver'"'"'s $1() outside "
                       . "handler.c", $lines[$n - 1]);
            }
        }
    }

    if ($hits) {
        print STDERR "lint: $hits problem(s)\n";
        exit 1;
    }

    print "lint: ", scalar(@ARGV), " files ok\n";
' "${files[@]}"
