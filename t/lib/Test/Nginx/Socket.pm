package Test::Nginx::Socket;

# The project's stand-in for Test::Nginx::Socket (openresty/test-nginx
# 0.33), used only when the real module is not installed.  See the POD at
# the end of this file.  This file is the client side: it builds and sends
# the requests, parses the responses and runs the checks.  The nginx
# process and the block loop live in Util.pm next to this file.

use strict;
use warnings;

our $VERSION = '0.33';

# Load the Util.pm that sits next to this file, never another copy that
# might come earlier in @INC.
BEGIN {
    require File::Basename;
    require File::Spec;
    my $util = File::Spec->rel2abs(
        File::Spec->catfile(File::Basename::dirname(__FILE__), 'Util.pm'));
    unless ($INC{'Test/Nginx/Util.pm'}) {
        require $util;
        $INC{'Test/Nginx/Util.pm'} = $util;
    }
    Test::Nginx::Util->import;
}

# Test::Base parses the blocks; being its subclass also gives test files
# plan(), blocks(), is(), like(), ... and the 'no_plan' / tests => N import.
use Test::Base -base;

use Digest::MD5 ();
use Digest::SHA ();
use Encode ();
use IO::Select ();
use IO::Socket::INET ();
use List::Util qw(min);
use POSIX qw(EAGAIN EINTR WNOHANG);
use Time::HiRes qw(sleep time);

# Same list as the real module: a test file that runs here runs there too.
our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test
    repeat_each config_preamble worker_connections
    master_process_enabled
    no_long_string workers master_on master_off
    log_level no_shuffle no_root_location use_hup
    server_name
    server_addr server_root html_dir server_port server_port_for_client
    timeout no_nginx_manager check_accum_error_log
    add_block_preprocessor bail_out add_test_cleanup_handler add_cleanup_handler
    add_response_body_check
);

our $TotalConnectingTimeouts = 0;
our @ResponseBodyChecks;

$Test::Nginx::Util::RunTestHelper         = \&run_test_helper;
$Test::Nginx::Util::CheckErrorLog         = \&check_error_log;
$Test::Nginx::Util::CheckShutdownErrorLog = \&check_shutdown_error_log;

sub set_http_config_filter ($) { $Test::Nginx::Util::FilterHttpConfig = shift }
sub add_response_body_check ($) { push @ResponseBodyChecks, shift }

# Record a skipped test instead of running $code when in a "dry run".
sub skip_or_run ($$$) {
    my ($dry_run, $why, $code) = @_;
    if ($dry_run) {
        Test::More->builder->skip("$why - tests skipped due to $dry_run");
        return;
    }
    $code->();
}

# A failure whose extra test would upset a fixed plan.
sub fail_unplanned ($) {
    Test::More->builder->no_ending(1);
    Test::More::fail(shift);
}

#==========================================================================
# Building requests
#==========================================================================

# "--- more_headers" text -> ("Key: value\r\n..." , is_chunked)
sub parse_more_headers ($) {
    my $text = shift;
    my ($out, $is_chunked) = ('', 0);
    for my $line (split /\n+/, $text) {
        next if $line =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $line, 2;
        $val //= '';
        $is_chunked = 1 if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

# Turn "METHOD [URI [HTTP/x.y]]\n[body]" into a complete HTTP request:
# default URI "/", default HTTP/1.1, automatic Host, Connection and
# Content-Length headers.  Also returns the offsets needed to split the
# result into packets again.
sub build_request ($$$$$) {
    my ($name, $text, $more_headers, $is_chunked, $conn) = @_;

    my ($line, $body) = split /\n/, $text, 2;
    $body //= '';
    bail_out("$name - Request line should be non-empty")
        if !defined $line || $line eq '';

    $line =~ /^(\s*)(\S+) *(?:(\S+) *)?(?:(\S+) *)?\s*$/
        or bail_out("$name - Request line is not valid. Should be "
                    . "'meth [url [version]]' but got \"$line\".");
    my ($lead, $method, $uri, $ver) = ($1, $2, $3 // '/', $4 // 'HTTP/1.1');

    my $orig_body_start = length($line) + ($text =~ /\n/ ? 1 : 0);

    my $len_header = '';
    if (!$is_chunked && $body ne '' && $more_headers !~ /(?:^|\n)Content-Length:/) {
        $body =~ s/^\s+|\s+$//g;
        $len_header = "Content-Length: " . length($body) . "\r\n";
    }

    my $headers = '';
    $headers .= "Host: $Test::Nginx::Util::ServerName\r\n"
        if $more_headers !~ /(?:^|\n)Host:/i;
    $headers .= "Connection: $conn\r\n"
        if $more_headers !~ /(?:^|\n)Connection/i;

    my $request_line = "$method $uri $ver";
    my $head = "$request_line\r\n$headers$more_headers$len_header\r\n";

    return {
        value           => $head . $body,
        lead            => length $lead,
        orig_line_len   => length $line,
        orig_body_start => $orig_body_start,
        new_line_len    => length $request_line,
        new_body_start  => length $head,
    };
}

# Build a request given as several packets: the packet boundaries keep
# their place in the request line and in the body.
sub build_request_packets ($$$$$) {
    my ($name, $more_headers, $is_chunked, $conn, $packets) = @_;

    my @values = map { ref $_ ? $_->{value} : $_ } @$packets;
    my $built = build_request($name, join('', @values), $more_headers, $is_chunked, $conn);
    my $full = $built->{value};

    my @cuts;
    my $offset = 0;
    for my $v (@values[0 .. $#values - 1]) {
        $offset += length $v;
        my $cut;
        if ($offset >= $built->{orig_body_start}) {
            $cut = $built->{new_body_start} + $offset - $built->{orig_body_start};
        } else {
            $cut = $offset - $built->{lead};
            $cut = 0 if $cut < 0;
            $cut = $built->{new_line_len} if $cut > $built->{new_line_len};
        }
        $cut = length $full if $cut > length $full;
        push @cuts, $cut;
    }

    my @out;
    my $prev = 0;
    for my $i (0 .. $#values) {
        my $end = $i < $#values ? $cuts[$i] : length $full;
        $end = $prev if $end < $prev;
        my %packet = ref $packets->[$i] ? %{ $packets->[$i] } : ();
        $packet{value} = substr $full, $prev, $end - $prev;
        push @out, \%packet;
        $prev = $end;
    }
    return \@out;
}

sub more_headers_for ($$$) {
    my ($name, $more_headers, $i) = @_;
    if (ref $more_headers eq 'ARRAY') {
        my $hdr = $more_headers->[$i];
        bail_out("$name - --- more_headers lacks data for request $i")
            unless defined $hdr;
        return parse_more_headers($hdr);
    }
    return parse_more_headers($more_headers);
}

# The requests of a block: a list of requests, each a list of packets
# ({ value => bytes, delay_before => seconds }).
sub get_req_from_block ($) {
    my $block = shift;
    my $name = $block->name;

    if (defined(my $raw = $block->raw_request)) {
        return [[ map { { value => $_ } } ref $raw eq 'ARRAY' ? @$raw : ($raw) ]];
    }

    my $request;
    if (defined $block->request_eval) {
        Test::More::diag("$name - request_eval DEPRECATED. Use request eval instead.");
        $request = eval $block->request_eval;
        warn $@ if $@;
    } else {
        $request = $block->request;
        if (defined $request && !ref $request) {
            1 while $request =~ s/^\s*#[^\n]+\s+|^\s+//gs;   # leading comments
        }
    }
    my $more_headers = $block->more_headers // '';

    if (my $reqs = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $reqs eq 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$reqs) {
            my $text = expand_env_in_text($reqs->[$i], $name,
                                          $Test::Nginx::Util::RandPorts);
            my ($hdr, $chunked) = more_headers_for($name, $more_headers, $i);
            my $conn = $i == $#$reqs ? 'close' : 'keep-alive';
            $all .= build_request($name, $text, $hdr, $chunked, $conn)->{value};
        }
        return [[ { value => $all } ]];
    }

    bail_out("$name - request empty") unless defined $request;

    if (!ref $request) {
        my ($hdr, $chunked) = more_headers_for($name, $more_headers, 0);
        return [[ { value => build_request($name, $request, $hdr, $chunked, 'close')->{value} } ]];
    }

    bail_out("$name - invalid ---request : MUST be string or array of requests")
        unless ref $request eq 'ARRAY';

    my @list;
    for my $i (0 .. $#$request) {
        my $one = $request->[$i];
        my ($hdr, $chunked) = more_headers_for($name, $more_headers, $i);
        if (!ref $one) {
            push @list, [ { value => build_request($name, $one, $hdr, $chunked, 'close')->{value} } ];
        } elsif (ref $one eq 'ARRAY') {
            for my $p (@$one) {
                bail_out("$name - Invalid syntax. $p should be a string or hash with value.")
                    if ref $p && ref $p ne 'HASH';
            }
            push @list, build_request_packets($name, $hdr, $chunked, 'close', $one);
        } else {
            bail_out("$name - Invalid syntax. $one should be a string or an array of packets.");
        }
    }
    return \@list;
}

#==========================================================================
# Sending
#==========================================================================

sub connect_to_server ($$$) {
    my ($name, $addr, $timeout) = @_;
    my $port = $Test::Nginx::Util::ServerPortForClient;
    my $total = $TotalConnectingTimeouts ? 20 : 50;

    for my $try (1 .. $total) {
        my $sock = IO::Socket::INET->new(
            PeerAddr => $addr, PeerPort => $port, Proto => 'tcp',
            Timeout => $timeout,
        );
        return $sock if $sock;
        my $err = $!;

        my $child = $Test::Nginx::Util::ChildPid;     # valgrind mode
        if (defined $child && waitpid($child, WNOHANG) != 0) {
            warn "WARNING: Child process $child is already gone.\n";
            fail_unplanned("$name - Can't connect to $addr:$port: $err (aborted)\n");
            return;
        }

        my $wait = min(1, (sleep_time() + sleep_time() * $try) * $try / 2);
        warn "$name - Can't connect to $addr:$port: $err\n\tRetry connecting after $wait sec\n"
            if $wait >= 0.6;
        sleep $wait;
    }

    my $msg = "$name - Can't connect to $addr:$port: $! (aborted)\n";
    bail_out($msg) if ++$TotalConnectingTimeouts >= 3;
    fail_unplanned($msg);
    return;
}

# Send one request (a list of packets) and read the response until the
# server closes the connection or nothing arrives for $timeout seconds.
sub send_request ($$$$) {
    my ($packets, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;
    my @todo = @$packets;

    my $head_req = (join '', map { $_->{value} } @todo) =~ /^\s*HEAD\s+/ ? 1 : 0;

    my $addr = $block->server_addr_for_client // $Test::Nginx::Util::ServerAddr;
    my $sock = connect_to_server($name, $addr, $timeout) or return (undef, $head_req);
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';

    my $resp = '';
    my $out = (shift @todo)->{value};
    my $writing = 1;
    my $deadline = time + $timeout;

    while (1) {
        my $rsel = IO::Select->new($sock);
        my $wsel = $writing ? IO::Select->new($sock) : undef;
        my ($readable, $writable) =
            IO::Select->select($rsel, $wsel, undef, $deadline - time);

        if (!$readable && !$writable) {
            next if $! == EINTR && time < $deadline;
            close $sock;
            if (defined $block->abort) {
                sleep 0.005;
            } else {
                fail_unplanned("ERROR: client socket timed out - $name\n");
            }
            last;
        }
        $deadline = time + $timeout;

        if ($writable && @$writable) {
            my $n = syswrite($sock, $out);
            if (!defined $n) {
                if ($! != EAGAIN) {
                    warn "write failed: $!\n";
                    $writing = 0;
                }
            } elsif ($n < length $out) {
                substr($out, 0, $n) = '';
            } elsif (@todo) {
                my $next = shift @todo;
                $out = $next->{value};
                my $delay = $next->{delay_before} // $middle_delay;
                sleep $delay if $delay;
                $deadline = time + $timeout;
            } else {
                $writing = 0;
                if (defined(my $how = $block->shutdown)) {
                    shutdown($sock, $how =~ /^\s*$/ ? 1 : $how);
                }
            }
        }

        if ($readable && @$readable) {
            my $eof;
            while (1) {
                my $n = sysread($sock, my $buf, 4096);
                if (!defined $n) {
                    last if $! == EAGAIN;
                    warn "WARNING: $name - HTTP response read failure: $!\n";
                    $eof = 1;
                    last;
                }
                if ($n == 0) { $eof = 1; last }
                $resp .= $buf;
            }
            if ($eof) {
                close $sock;
                last;
            }
        }
    }

    return ($resp, $head_req);
}

#==========================================================================
# Parsing responses
#==========================================================================

# Returns ($response, $raw_headers, $left_over_bytes); an empty list when
# the chunked body is broken (a failed test has been reported then).
sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;

    my $raw_headers = $raw =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my $res = Test::Nginx::Socket::Response->parse($raw);
    my $code = $res->code;

    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $left;
    my $te  = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');

    if (defined $te && $te eq 'chunked') {
        my @trailers = $res->header('Trailer');
        my ($decoded, $rest) = dechunk($name, $res->content, \@trailers)
            or return;
        $res->content($decoded);
        $left = $rest;

    } elsif (defined $len && $len =~ /^\d+$/) {
        my $body = $res->content;
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got ", length $body, "\n" unless $head_req;
        } elsif (length $body > $len) {
            $left = substr $body, $len;
            $res->content(substr $body, 0, $len);
        }
    }

    return ($res, $raw_headers, $left);
}

# Decode a chunked body.  Returns (decoded, left-over bytes) or an empty
# list after reporting a failure.
sub dechunk ($$$) {
    my ($name, $raw, $trailers) = @_;
    my $decoded = '';
    pos($raw) = 0;

    while (1) {
        if ($raw =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*\r\n/gc) {
            my $size = hex $1;
            if ($size == 0) {
                for my $t (@$trailers) {
                    next if $raw =~ /\G\Q$t\E: [^\n]*\r\n/gc;
                    fail_unplanned("$name - invalid trailer data received (expected $t).");
                    return;
                }
                if ($raw !~ /\G\r\n/gc) {
                    fail_unplanned("$name - invalid chunked data received (expected CRLF).");
                    return;
                }
                my $at = pos $raw;
                return ($decoded, $at < length $raw ? substr($raw, $at) : undef);
            }
            my $at = pos $raw;
            if (length($raw) - $at < $size) {
                fail_unplanned("$name - invalid chunked data received "
                               . "(not enough octets for the data section)");
                return;
            }
            $decoded .= substr $raw, $at, $size;
            pos($raw) = $at + $size;
            if ($raw !~ /\G\r\n/gc) {
                fail_unplanned("$name - invalid chunked data received (expected CRLF).");
                return;
            }
        } elsif ($raw =~ /\G(.+)/gcs) {
            fail_unplanned("$name - invalid chunked body received: $1");
            return;
        } else {
            fail_unplanned("$name - no last chunk found - $raw");
            return;
        }
    }
}

#==========================================================================
# Checks
#==========================================================================

# Expected values are arrays when a block sends several requests.
sub get_indexed_value ($$$$) {
    my ($name, $value, $req_idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$req_idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return ref $value eq 'ARRAY' ? $value->[0] : $value;
}

sub check_error_code ($$$$$) {
    my ($block, $res, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    my $got = ($res && $res->code) || '';

    skip_or_run $dry_run, $name, sub {
        if (defined $block->error_code_like) {
            my $pat = get_indexed_value($name, $block->error_code_like, $req_idx, $need_array);
            Test::More::like($got, qr/$pat/sm, "$name - status code ok");
        } else {
            my $want = defined $block->error_code
                     ? get_indexed_value($name, $block->error_code, $req_idx, $need_array)
                     : 200;
            Test::More::is($got, $want, "$name - status code ok");
        }
    };
}

sub check_raw_response_headers ($$$$$) {
    my ($block, $raw_headers, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    $raw_headers //= '';

    for my $kind (qw(like unlike)) {
        my $section = "raw_response_headers_$kind";
        my $spec = $block->$section;
        next unless defined $spec;
        my $pat = get_indexed_value($name, $spec, $req_idx, $need_array);
        skip_or_run $dry_run, "$name - $section", sub {
            if ($kind eq 'like') {
                Test::More::like($raw_headers, qr/$pat/s, "$name - raw resp headers like");
            } else {
                Test::More::unlike($raw_headers, qr/$pat/s, "$name - raw resp headers unlike");
            }
        };
    }
}

# "Name: value" / "!Name" lines, in file order
sub header_expectations ($) {
    my $text = shift;
    my @list;
    for my $line (split /\n/, $text) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            push @list, [$line, undef];
        } else {
            push @list, [split /\s*:\s*/, $line, 2];
        }
    }
    return @list;
}

sub check_response_headers ($$$$$$) {
    my ($block, $res, $raw_headers, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    my $port = $Test::Nginx::Util::ServerPort;
    my $client_port = $Test::Nginx::Util::ServerPortForClient;

    if (defined $block->response_headers) {
        my $spec = get_indexed_value($name, $block->response_headers, $req_idx, $need_array);
        for my $pair (header_expectations($spec)) {
            my ($key, $val) = @$pair;
            if (!defined $val) {
                skip_or_run $dry_run, "$name - response_headers", sub {
                    Test::More::unlike($raw_headers // '', qr/^\s*\Q$key\E\s*:/m,
                                       "$name - header $key not present in the raw headers");
                };
                next;
            }
            $val =~ s/\$ServerPort\b/$port/g;
            $val =~ s/\$ServerPortForClient\b/$client_port/g;
            my $got = ($res ? $res->header($key) : undef) // '';
            skip_or_run $dry_run, "$name - response_headers", sub {
                Test::More::is($got, $val, "$name - header $key ok");
            };
        }

    } elsif (defined $block->response_headers_like) {
        my $spec = get_indexed_value($name, $block->response_headers_like, $req_idx, $need_array);
        for my $pair (header_expectations($spec)) {
            my ($key, $val) = @$pair;
            $val //= '';
            my $got = ($res ? $res->header($key) : undef) // '';
            skip_or_run $dry_run, "$name - response_headers_like", sub {
                Test::More::like($got, qr/^$val$/, "$name - header $key like ok");
            };
        }
    }
}

my %BodyFilters = (
    md5_hex  => sub { Digest::MD5::md5_hex($_[0]) },
    sha1_hex => sub { Digest::SHA::sha1_hex($_[0]) },
    uc       => sub { uc $_[0] },
    lc       => sub { lc $_[0] },
    ucfirst  => sub { ucfirst $_[0] },
    lcfirst  => sub { lcfirst $_[0] },
    length   => sub { length $_[0] },
);

sub run_filter_helper ($$$) {
    my ($block, $filter, $content) = @_;
    return $filter->($content) if ref $filter eq 'CODE';
    my $name = $block->name;
    if (ref $filter) {
        bail_out("$name - the --- response_body_filters section only supports "
                 . "subroutine reference values and string values");
    }
    my $code = $BodyFilters{$filter}
        or bail_out("$name - unknown filter, \"$filter\", specified in the "
                    . "--- response_body_filters section");
    return $code->($content);
}

# --- response_body_filters: "uc md5_hex", a code ref, a list, or a list
# of lists (one per request).
sub transform_response_body ($$$) {
    my ($block, $res, $req_idx) = @_;
    my $filters = $block->response_body_filters;
    return unless defined $filters && $res && defined $res->content;
    my $name = $block->name;

    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//g;
        $filters = [split /\s+/, $filters];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }
    if (ref $filters->[0] eq 'ARRAY') {
        $filters = $filters->[$req_idx];
        bail_out("$name - the ---response_body_filters two-dimensional array "
                 . "unmatch the specified request($req_idx)") unless defined $filters;
    }

    my $content = $res->content;
    $content = run_filter_helper($block, $_, $content) for @$filters;
    $res->content($content);
}

sub check_response_body ($$$$$$) {
    my ($block, $res, $dry_run, $req_idx, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;
    my $content = $res ? $res->content : undef;
    my $port = $Test::Nginx::Util::ServerPort;
    my $client_port = $Test::Nginx::Util::ServerPortForClient;

    if (defined(my $file = $block->write_resp_body_file) && $res) {
        Test::Nginx::Util::write_file($file, $content // '');
    }

    if (defined $block->response_body || defined $block->response_body_eval) {
        if (defined $block->response_body_json_sort && defined $content) {
            require JSON::PP;
            my $js = JSON::PP->new->canonical(1);
            my $obj = eval { $js->loose(1)->decode($content) };
            $content = $js->encode($obj) . "\n" if !$@;
        }

        my $expected;
        if ($block->response_body_eval) {
            Test::More::diag("$name - response_body_eval is DEPRECATED. Use response_body eval instead.");
            $expected = eval get_indexed_value($name, $block->response_body_eval,
                                               $req_idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, $block->response_body, $req_idx, $need_array);
        }

        Encode::from_to($expected, 'UTF-8', $block->charset)
            if $block->charset && defined $expected;

        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$port/g;
            $expected =~ s/\$ServerPortForClient\b/$client_port/g;
            $expected = expand_env_in_text($expected, $name, $Test::Nginx::Util::RandPorts);
        }

        my $what = "(repeated req $repeated_req_idx, req $req_idx)";
        skip_or_run $dry_run, "$name - response_body", sub {
            if (ref $expected) {
                Test::More::like($content, $expected, "$name - response_body - like $what");
            } else {
                is_str($content, $expected, "$name - response_body - response is expected $what");
            }
        };

    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $section = "response_body_$type";
        my $pat = get_indexed_value($name, $block->$section, $req_idx, $need_array);
        $pat =~ s/\$ServerPort\b/$port/g;
        $pat =~ s/\$ServerPortForClient\b/$client_port/g;
        my $summary = trim($content) // '';

        skip_or_run $dry_run, "$name - $section", sub {
            my $test_name = "$name - $section - response is expected ($summary)";
            if ($type eq 'like') {
                Test::More::like($content, qr/$pat/s, $test_name);
            } else {
                Test::More::unlike($content, qr/$pat/s, $test_name);
            }
        };
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $req_idx, $repeated_req_idx, $dry_run);
    }
}

#--------------------------------------------------------------------------
# Log checks
#--------------------------------------------------------------------------

# A section value -> list of patterns (strings are one pattern per line).
sub pattern_list ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return grep { length } split /\n+/, $pats;
    }
    return ($pats) if ref $pats eq 'Regexp';
    return grep { defined } @$pats;
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}

sub value_contains ($$) {
    my ($val, $str) = @_;
    return 0 unless defined $val;
    return scalar grep { index("$_", $str) >= 0 } ref $val eq 'ARRAY' ? @$val : ($val);
}

sub fmt_str ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

# One test per pattern: it must match at least one line ($want_match) or
# no line at all.  $file is "error.log" or "access.log", $suffix e.g.
# " (req 0)".
sub check_log_patterns (%) {
    my %a = @_;
    my ($name, $lines, $suffix, $file) = @a{qw(name lines suffix file)};

    for my $pat (pattern_list($a{patterns})) {
        my @hits = grep { line_matches($lines->[$_], $pat) } 0 .. $#$lines;
        skip_or_run $a{dry_run}, "$name - $a{section}", sub {
            if ($a{want_match}) {
                if (@hits) {
                    Test::More::pass("$name - pattern \"$pat\" matches a line in $file$suffix");
                } else {
                    Test::More::fail("$name - pattern \"$pat\" should match a line in $file$suffix");
                }
                return;
            }
            my $p = fmt_str($pat);
            if (!@hits) {
                Test::More::pass("$name - pattern \"$p\" does not match a line in $file$suffix");
                return;
            }
            my $i = $hits[0];
            my $ln = fmt_str($lines->[$i]);
            my $last = min($i + 9, $#$lines - 1);
            my $context = join '', @$lines[$i + 1 .. $last];
            Test::More::fail("$name - pattern \"$p\" should not match any line in "
                             . "$file but matches line \"$ln\"$suffix\n$context");
        };
    }
}

sub check_error_log ($$$$$) {
    my ($block, $res, $dry_run, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;
    my $suffix = " (req $repeated_req_idx)";
    my $lines;
    my $get_lines = sub { $lines ||= error_log_data() || [] };

    # --- grep_error_log / --- grep_error_log_out
    my $grep_pat = $block->grep_error_log;
    $grep_pat = $grep_pat->[$repeated_req_idx] if ref $grep_pat eq 'ARRAY';
    if (defined $grep_pat) {
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but --- grep_error_log is defined")
            unless defined $expected;
        $expected = $expected->[$repeated_req_idx] if ref $expected eq 'ARRAY';
        $expected = expand_env_in_text($expected, $name, $Test::Nginx::Util::RandPorts)
            unless ref $expected;

        skip_or_run $dry_run, "$name - error_log", sub {
            my $matched = '';
            for my $line (@{ $get_lines->() }) {
                my $m = ref $grep_pat ? ($line =~ $grep_pat ? $& : undef)
                      : (index($line, $grep_pat) >= 0 ? $grep_pat : undef);
                $matched .= "$m\n" if defined $m && $m !~ /\n/;
            }
            if (ref $expected eq 'Regexp') {
                Test::More::like($matched, $expected, "$name - grep_error_log_out$suffix");
            } else {
                is_str($matched, $expected, "$name - grep_error_log_out$suffix");
            }
        };
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but --- grep_error_log_out is defined");
    }

    for my $section (qw(error_log no_error_log)) {
        my $pats = $block->$section;
        next unless defined $pats;
        check_log_patterns(
            name => $name, section => $section, patterns => $pats,
            lines => $get_lines->(), want_match => $section eq 'error_log',
            dry_run => $dry_run, file => 'error.log', suffix => $suffix,
        );
    }

    return if $dry_run;

    # Serious log levels are reported unless the block expects them.
    for my $level (qw(alert crit emerg)) {
        next if value_contains($block->error_log, "[$level")
             || value_contains($block->no_error_log, "[$level");
        for my $line (@{ $get_lines->() }) {
            warn "WARNING: $name - " . fmt_str($line) . "\n" if $line =~ /\[$level\]/;
        }
    }

    for my $line (@{ $get_lines->() }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            (my $l = $line) =~ s/\n$//;
            fail_unplanned("$name - $l\n");
        }
    }
}

sub check_access_log ($$$) {
    my ($block, $dry_run, $repeated_req_idx) = @_;
    my $lines;
    for my $section (qw(access_log no_access_log)) {
        my $pats = $block->$section;
        next unless defined $pats;
        $lines ||= access_log_data();
        check_log_patterns(
            name => $block->name, section => $section, patterns => $pats,
            lines => $lines, want_match => $section eq 'access_log',
            dry_run => $dry_run, file => 'access.log',
            suffix => " (req $repeated_req_idx)",
        );
    }
}

# --- shutdown_error_log / --- no_shutdown_error_log: what nginx logged
# while it was stopped after the block.
sub check_shutdown_error_log ($$) {
    my ($block, $dry_run) = @_;
    my $lines;
    for my $section (qw(shutdown_error_log no_shutdown_error_log)) {
        my $pats = $block->$section;
        next unless defined $pats;
        $lines ||= error_log_data() || [];
        check_log_patterns(
            name => $block->name, section => $section, patterns => $pats,
            lines => $lines, want_match => $section eq 'shutdown_error_log',
            dry_run => $dry_run ? 'dry_run' : 0, file => 'error.log', suffix => '',
        );
    }
}

#==========================================================================
# One repetition of a block
#==========================================================================

sub run_test_helper ($$$) {
    my ($block, $dry_run, $repeated_req_idx) = @_;
    my $name = $block->name;

    my $requests = get_req_from_block($block);
    bail_out("$name - request empty") unless @$requests;

    my $timeout = parse_time($block->timeout) // timeout();
    my $pipelined = $block->pipelined_requests;
    my $need_array = $pipelined ? 1 : @$requests > 1;

    my $res;
    my $req_idx = 0;
    for my $i (0 .. $#$requests) {
        my ($raw, $head_req) = $dry_run
            ? ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0)
            : send_request($requests->[$i], parse_time($block->raw_request_middle_delay),
                           $timeout, $block);

        # pipelined requests share one connection: split the responses
        my $responses = $pipelined ? scalar @$pipelined : 1;
        for my $n (1 .. $responses) {
            my ($raw_headers, $left);
            $raw //= '';
            unless (defined $block->ignore_response) {
                if (defined $block->http09) {
                    $res = Test::Nginx::Socket::Response->new(200, 'OK', [], $raw);
                    $raw_headers = '';
                } else {
                    ($res, $raw_headers, $left) = parse_response($name, $raw, $head_req);
                }
            }

            if ($n < $responses) {
                $raw = $left;
            } elsif (defined $left && $left ne '') {
                (my $shown = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                warn "WARNING: $name - unexpected extra bytes after last chunk in "
                     . "response: \"$shown\"\n";
            }

            unless (defined $block->ignore_response) {
                check_error_code($block, $res, $dry_run, $req_idx, $need_array);
                check_raw_response_headers($block, $raw_headers, $dry_run, $req_idx, $need_array);
                check_response_headers($block, $res, $raw_headers, $dry_run, $req_idx, $need_array);
                transform_response_body($block, $res, $req_idx);
                check_response_body($block, $res, $dry_run, $req_idx, $repeated_req_idx, $need_array);
            }

            # logs are checked between requests too
            if ($n < $responses || $i < $#$requests) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $res, $dry_run, $repeated_req_idx, $need_array);
                check_access_log($block, $dry_run, $repeated_req_idx)
                    unless defined $block->ignore_response;
            }
            $req_idx++;
        }
    }

    sleep $block->wait if $block->wait;
    check_error_log($block, $res, $dry_run, $repeated_req_idx, $need_array);
    check_access_log($block, $dry_run, $repeated_req_idx)
        unless defined $block->ignore_response;
}

#==========================================================================
# A minimal HTTP response object (the real module uses HTTP::Response)
#==========================================================================

package Test::Nginx::Socket::Response;

sub new {
    my ($class, $code, $message, $headers, $content) = @_;
    return bless { code => $code, message => $message,
                   headers => $headers, content => $content }, $class;
}

sub parse {
    my ($class, $raw) = @_;
    my ($head, $body) = ($raw, '');
    if ($raw =~ /\r?\n\r?\n/) {
        $head = substr $raw, 0, $-[0];
        $body = substr $raw, $+[0];
    }
    my @lines = split /\r?\n/, $head;
    my $status = shift(@lines) // '';
    my ($code, $message);
    if ($status =~ m{^HTTP/\d+(?:\.\d+)?\s+(\d+)\s*(.*)$}) {
        ($code, $message) = ($1, $2);
    }
    my @headers;
    for my $line (@lines) {
        if ($line =~ /^\s+(.*)/ && @headers) {
            $headers[-1][1] .= "\n$1";
        } elsif ($line =~ /^([^\s:]+)\s*:\s*(.*)$/) {
            push @headers, [$1, $2];
        }
    }
    return $class->new($code, $message, \@headers, $body);
}

sub code    { $_[0]{code} }
sub message { $_[0]{message} }

sub content {
    my $self = shift;
    $self->{content} = shift if @_;
    return $self->{content};
}

# Case-insensitive; "_" and "-" are the same (as in HTTP::Headers).
# Several headers of one name: a list, or joined with ", " in scalar context.
sub header {
    my ($self, $name) = @_;
    (my $want = lc $name) =~ tr/_/-/;
    my @values = map { $_->[1] }
                 grep { (my $k = lc $_->[0]) =~ tr/_/-/; $k eq $want }
                 @{ $self->{headers} };
    return @values if wantarray;
    return @values ? join(', ', @values) : undef;
}

1;
__END__

=head1 NAME

Test::Nginx::Socket - the project's stand-in for openresty's Test::Nginx::Socket

=head1 SYNOPSIS

    use FindBin;
    BEGIN { push @INC, "$FindBin::Bin/lib" }  # a real installed Test::Nginx wins
    use Test::Nginx::Socket 'no_plan';

    no_shuffle();
    run_tests();

    __DATA__

    === TEST 1: hello
    --- config
        location = /t { return 200 "hello\n"; }
    --- request
    GET /t
    --- response_body
    hello
    --- no_error_log
    [error]

=head1 DESCRIPTION

CPAN's Test::Nginx (openresty/test-nginx 0.33) cannot be installed on every
machine, so the project carries this re-implementation in F<t/lib>.  It is
written from scratch to behave like the real one for the features the
project uses; a suite must pass unchanged under both.  Blocks are parsed by
Debian's Test::Base (libtest-base-perl), results go to Test::More as TAP.

=head2 Functions

Exported as by the real module: C<run_tests>, C<repeat_each>, C<no_shuffle>,
C<plan>, C<blocks> (and the other Test::Base/Test::More functions),
C<log_level>, C<master_on>, C<master_off>, C<workers>, C<worker_connections>,
C<no_long_string>, C<no_root_location>, C<add_block_preprocessor>,
C<env_to_nginx>, C<config_preamble>, C<server_port>, C<server_addr>,
C<server_name>, C<server_root>, C<html_dir>, C<timeout>, C<bail_out>,
C<add_cleanup_handler>, C<add_test_cleanup_handler>,
C<add_response_body_check>, C<is_str>, C<check_accum_error_log>.

Like the real module, variables such as C<$ServerPort> and C<$ServRoot> are
B<not> exported to the test file: use C<$Test::Nginx::Util::ServerPort>,
C<server_port()>, C<server_root()> or C<$TEST_NGINX_SERVER_PORT> in the
config text.

=head2 Sections

Config: C<main_config>, C<post_main_config>, C<http_config>, C<config>,
C<server_name>, C<user_files>, C<init>, C<post_setup_server_root>,
C<log_level>, C<error_log_file>.

Requests: C<request> (C<METHOD [URI [HTTP/1.x]]> then the body; C<eval> may
give a list of requests or of packets), C<more_headers>, C<raw_request>,
C<raw_request_middle_delay>, C<pipelined_requests>, C<timeout>, C<abort>,
C<shutdown>, C<wait>, C<server_addr_for_client>.

Responses: C<error_code> (default 200), C<error_code_like>,
C<response_body>, C<response_body_like>/C<_unlike> (C<qr/.../s>),
C<response_body_eval>, C<response_body_filters>,
C<response_body_json_sort>, C<response_headers> (C<Name: value>,
C<!Name>), C<response_headers_like>, C<raw_response_headers_like>/C<_unlike>,
C<ignore_response>, C<http09>, C<charset>, C<write_resp_body_file>.

Logs: C<error_log>, C<no_error_log>, C<grep_error_log>,
C<grep_error_log_out>, C<access_log>, C<no_access_log>,
C<shutdown_error_log>, C<no_shutdown_error_log>.

Fake upstream: C<tcp_listen>, C<tcp_reply> (string, array, or a sub that
gets the request), C<tcp_reply_delay>, C<tcp_query>, C<tcp_query_len>,
C<tcp_query_auto_timeout>, C<tcp_no_close>, C<tcp_shutdown>.

Other: C<must_die>, C<suppress_stderr>, C<skip_nginx>, C<skip_nginx2>,
C<skip_eval>, C<skip_openssl>, C<todo>, C<todo_nginx>, C<ONLY>, C<SKIP>,
C<LAST>; C<no_check_leak> and friends are accepted and ignored.

An unknown section name gets a warning on stderr (the real module
silently ignores a misspelled C<--- response_bdy>).  C<http2>, C<http3>,
C<curl*>, C<stap*> and C<udp_*> are recognised but not supported.

=head2 Environment

C<TEST_NGINX_BINARY>, C<TEST_NGINX_LOAD_MODULES>, C<TEST_NGINX_PORT> /
C<TEST_NGINX_SERVER_PORT>, C<TEST_NGINX_CLIENT_PORT>,
C<TEST_NGINX_RANDOMIZE>, C<TEST_NGINX_SERVROOT>, C<TEST_NGINX_LOG_LEVEL>,
C<TEST_NGINX_NO_SHUFFLE>, C<TEST_NGINX_TIMEOUT>, C<TEST_NGINX_NO_CLEAN>,
C<TEST_NGINX_MASTER_PROCESS>, C<TEST_NGINX_USE_VALGRIND>,
C<TEST_NGINX_ERROR_LOG>, C<TEST_NGINX_SLEEP>, C<TEST_NGINX_FAST_SHUTDOWN>,
C<TEST_NGINX_WORKER_USER>, C<TEST_NGINX_EVENT_TYPE>,
C<TEST_NGINX_POSTPONE_OUTPUT>, C<TEST_NGINX_LD_PRELOAD>,
C<TEST_NGINX_IGNORE_MISSING_DIRECTIVES>, C<TEST_NGINX_CHECK_ACCUM_ERR_LOG>,
C<TEST_NGINX_VERBOSE>.  C<$TEST_NGINX_RAND_PORT_N> and any other
C<$TEST_NGINX_FOO> in config text are expanded (a missing one bails out).

=head2 Known differences from the real module

=over

=item * No HTTP/2, HTTP/3, curl, SystemTap, UDP server, HUP reload,
check-leak or benchmark modes (a warning is printed, the mode is ignored).

=item * A C<no_error_log> pattern that matches several lines gives one
failing test, not one per line; C<response_headers> are checked in file
order, not hash order.

=item * nginx failing to start for a reason other than "Address already in
use" bails out at once instead of retrying for 30 seconds.

=item * C<TEST_NGINX_MASTER_PROCESS> also accepts C<1>/C<yes>/C<true>.

=item * A write error while sending the request stops writing but the
response is still read.

=back

=cut
