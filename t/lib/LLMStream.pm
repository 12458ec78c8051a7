package LLMStream;

# A scripted fake provider for the streaming suites: a forking HTTP server
# on a free port ($ENV{TEST_NGINX_STREAM_PORT}) that answers /s/NAME with
# the script NAME given to stream_server() before run_tests().
#
# A script is a list of steps:
#   "bytes"            written as they are (one write)
#   0.2                a pause, in seconds
#   { tiny => "bytes", seg => 1, pause => 0.002 }
#                      written SEG bytes at a time with PAUSE between, so
#                      that nginx reads them in separate segments
#   { cut => 1 }       close the connection here
#   { reset => 1 }     reset the connection (RST) here
#   { hang => 1 }      send nothing more, keep the connection open
#   { repeat => N, step => "bytes" } written N times
# and it ends with a close, as an HTTP/1.0-style close-delimited body,
# unless the head says otherwise.
#
# Each request's body is saved as DIR/NAME.req, and when a connection
# ends the server writes DIR/NAME.closed with how it ended ("eof": the
# script ran to its end, "peer": nginx closed it first); /closed/NAME
# answers that word, or "open", so a later test block can check that
# nginx closed the provider connection; /req/NAME answers the last
# request body NAME got, /head/NAME its request line and headers.
#
# /client/PORT/PATH?stall=S&read=N&every=T is a slow client instead: it
# sends the request body it got as a POST to 127.0.0.1:PORT/PATH (HTTP/1.1,
# Connection: close) from a socket with a small receive buffer, waits S
# seconds, then reads N bytes every T seconds, and answers with the status
# and the de-chunked body it received.  A test block proxies to it to see
# what a client that reads slowly gets.  With h2=1 the client speaks
# HTTP/2 (prior knowledge, a 4 KiB stream window) through node and
# h2-slow-client.js next to this file; have_node() says whether node runs.
#
# It is plain Perl in the test process, so the suites run unchanged under
# the real Test::Nginx.

use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY SOL_SOCKET SO_LINGER SO_RCVBUF
              AF_INET SOCK_STREAM pack_sockaddr_in inet_aton);
use POSIX ();
use File::Temp ();
use File::Basename ();
use File::Spec ();
use IPC::Open2 ();
use Time::HiRes ();
use Exporter 'import';

our @EXPORT = qw(stream_server sse_head sse_head_chunked sse_event
                 openai_chunk openai_stream anthropic_stream gemini_stream
                 chunked have_node);

my ($pid, $dir, $owner);

sub sse_head {
    my (%o) = @_;
    my $status = $o{status} // 200;
    my $type = $o{type} // 'text/event-stream';

    return "HTTP/1.1 $status X\r\nContent-Type: $type\r\n"
         . "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
}

sub sse_head_chunked {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
         . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
}

sub chunked {
    my ($data) = @_;
    return sprintf("%x\r\n", length $data) . "$data\r\n";
}

sub sse_event {
    my ($data, $name) = @_;
    return (defined $name ? "event: $name\n" : '') . "data: $data\n\n";
}

sub openai_chunk {
    my ($delta, $finish, %o) = @_;
    my $f = defined $finish ? qq("$finish") : 'null';
    my $model = $o{model} // 'fake-stream-model';

    return qq({"id":"chatcmpl-s1","object":"chat.completion.chunk",)
         . qq("created":1700000000,"model":"$model","choices":[{"index":0,)
         . qq("delta":$delta,"finish_reason":$f}]});
}

# the events of an OpenAI stream of TEXTS, as a list of strings
sub openai_stream {
    my (@texts) = @_;
    my @ev = (sse_event(openai_chunk('{"role":"assistant","content":""}')));

    push @ev, sse_event(openai_chunk(qq({"content":"$_"}))) for @texts;
    push @ev, sse_event(openai_chunk('{}', 'stop'));
    push @ev, sse_event(qq({"id":"chatcmpl-s1","object":"chat.completion.chunk",)
                        . qq("created":1700000000,"model":"fake-stream-model",)
                        . qq("choices":[],"usage":{"prompt_tokens":9,)
                        . qq("completion_tokens":4,"total_tokens":13}}));
    push @ev, "data: [DONE]\n\n";

    return @ev;
}

sub anthropic_stream {
    my (@texts) = @_;
    my @ev;

    push @ev, sse_event('{"type":"message_start","message":{"id":"msg_1",'
        . '"type":"message","role":"assistant","model":"claude-fake",'
        . '"content":[],"stop_reason":null,"usage":{"input_tokens":11,'
        . '"output_tokens":1}}}', 'message_start');
    push @ev, sse_event('{"type":"content_block_start","index":0,'
        . '"content_block":{"type":"text","text":""}}', 'content_block_start');
    push @ev, sse_event('{"type":"ping"}', 'ping');

    for (@texts) {
        push @ev, sse_event('{"type":"content_block_delta","index":0,'
            . qq("delta":{"type":"text_delta","text":"$_"}}),
            'content_block_delta');
    }

    push @ev, sse_event('{"type":"content_block_stop","index":0}',
                        'content_block_stop');
    push @ev, sse_event('{"type":"message_delta","delta":{"stop_reason":'
        . '"end_turn","stop_sequence":null},"usage":{"output_tokens":6}}',
        'message_delta');
    push @ev, sse_event('{"type":"message_stop"}', 'message_stop');

    return @ev;
}

sub gemini_stream {
    my (@texts) = @_;
    my @ev;
    my $last = pop @texts;

    for (@texts) {
        push @ev, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":"
            . "\"$_\"}],\"role\":\"model\"},\"index\":0}],\"usageMetadata\":"
            . "{\"promptTokenCount\":8,\"totalTokenCount\":8},"
            . "\"modelVersion\":\"gemini-fake\"}\r\n\r\n";
    }

    push @ev, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":"
        . "\"$last\"}],\"role\":\"model\"},\"finishReason\":\"STOP\","
        . "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,"
        . "\"candidatesTokenCount\":5,\"totalTokenCount\":13},"
        . "\"modelVersion\":\"gemini-fake\"}\r\n\r\n";

    return @ev;
}

sub stream_server {
    my (%scripts) = @_;

    $dir = File::Temp::tempdir(CLEANUP => 1);

    my $srv = IO::Socket::INET->new(
        Listen    => 128,
        LocalAddr => '127.0.0.1',
        LocalPort => 0,
        Proto     => 'tcp',
        ReuseAddr => 1,
    ) or die "cannot listen: $!";

    $ENV{TEST_NGINX_STREAM_PORT} = $srv->sockport;
    $ENV{TEST_NGINX_STREAM_DIR} = $dir;

    $owner = $$;
    $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid) {
        close $srv;
        return $srv->sockport;
    }

    POSIX::setpgid(0, 0);
    $SIG{CHLD} = 'IGNORE';
    $SIG{PIPE} = 'IGNORE';

    while (1) {
        my $c = $srv->accept or next;
        my $child = fork;

        if (!defined $child || $child) {
            close $c;
            next;
        }

        close $srv;
        serve($c, \%scripts);
        POSIX::_exit(0);
    }
}

sub read_request {
    my ($c) = @_;
    my $raw = '';

    while ($raw !~ /\r\n\r\n/) {
        my $n = sysread($c, $raw, 65536, length $raw);
        return undef unless $n;
    }

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
    $len //= 0;

    while (length($body) < $len) {
        my $n = sysread($c, $body, $len - length $body, length $body);
        last unless $n;
    }

    return ($head, $body);
}

sub save {
    my ($file, $data) = @_;

    open my $fh, '>', "$dir/$file" or return;
    print $fh $data;
    close $fh;
}

sub serve {
    my ($c, $scripts) = @_;

    setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);

    my ($head, $body) = read_request($c);
    return unless defined $head;

    my ($path) = $head =~ m{^\w+ (\S+)};
    $path //= '/';

    if ($path =~ m{^/(closed|req|head)/(\w+)}) {
        my $state = $1 eq 'closed' ? 'open' : 'none';

        if (open my $fh, '<', "$dir/$2.$1") {
            local $/;
            $state = <$fh>;
            close $fh;
        }

        syswrite $c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            . "Content-Length: " . length($state) . "\r\n"
            . "Connection: close\r\n\r\n$state";
        return;
    }

    if ($path =~ m{^/client/(\d+)(/[^?]*)\??(.*)}) {
        slow_client($c, $1, $2, { map { split /=/, $_, 2 } split /&/, $3 },
                    $body);
        return;
    }

    my ($name) = $path =~ m{^/s/(\w+)};
    my $script = defined $name ? $scripts->{$name} : undef;

    unless ($script) {
        syswrite $c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                   . "Connection: close\r\n\r\n";
        return;
    }

    save("$name.req", $body);
    save("$name.head", "$head\r\n");
    unlink "$dir/$name.closed";

    my $how = run_script($c, $script);

    save("$name.closed", $how);
}

sub have_node {
    return system('node -e 0 >/dev/null 2>&1') == 0;
}

sub slow_client {
    my ($c, $port, $path, $o, $body) = @_;
    my ($raw, $s) = ('');

    if ($o->{h2}) {
        my $js = File::Spec->catfile(File::Basename::dirname(__FILE__),
                                     'h2-slow-client.js');

        my $pid = IPC::Open2::open2(my $out, my $in, 'node', $js, $port,
                                    $path, $o->{stall} // 1,
                                    $o->{read} // 1024,
                                    $o->{every} // 0.01);
        print $in $body;
        close $in;

        local $/;
        $raw = <$out> // '';
        waitpid $pid, 0;

        my ($status, $rest) = split /\n\n/, $raw, 2;

        write_all($c, "HTTP/1.1 " . ($status || 502) . " X\r\n"
                      . "Content-Type: text/plain\r\n"
                      . "Content-Length: " . length($rest // '') . "\r\n"
                      . "Connection: close\r\n\r\n" . ($rest // ''));
        return;
    }

    socket($s, AF_INET, SOCK_STREAM, 0) or return;
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, $o->{rcvbuf} // 4096);
    connect($s, pack_sockaddr_in($port, inet_aton('127.0.0.1'))) or return;

    write_all($s, "POST $path HTTP/1.1\r\nHost: localhost\r\n"
                  . "Content-Type: application/json\r\n"
                  . "Content-Length: " . length($body) . "\r\n"
                  . "Connection: close\r\n\r\n$body") or return;

    Time::HiRes::sleep($o->{stall} // 1);

    while (sysread($s, $raw, $o->{read} // 1024, length $raw)) {
        Time::HiRes::sleep($o->{every} // 0.01);
    }

    close $s;

    my ($head, $rest) = split /\r\n\r\n/, $raw, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
    $rest //= '';

    if (($head // '') =~ /^transfer-encoding:\s*chunked/mi) {
        my $out = '';

        while ($rest =~ s/\A([0-9a-fA-F]+)\r\n//) {
            my $n = hex $1;
            last if $n == 0;
            $out .= substr($rest, 0, $n, '');
            $rest =~ s/\A\r\n//;
        }

        $rest = $out;
    }

    $status //= 502;

    write_all($c, "HTTP/1.1 $status X\r\nContent-Type: text/plain\r\n"
                  . "Content-Length: " . length($rest) . "\r\n"
                  . "Connection: close\r\n\r\n$rest");
}

# "eof" when the script ran to its end, "peer" when nginx closed first
sub run_script {
    my ($c, $script) = @_;

    for my $step (@$script) {

        if (!ref $step && $step =~ /^\d*\.?\d+$/ && length $step < 8) {
            return 'peer' if peer_closed($c, $step);
            next;
        }

        if (!ref $step) {
            return 'peer' unless write_all($c, $step);
            next;
        }

        if ($step->{tiny}) {
            my $seg = $step->{seg} // 1;
            my $data = $step->{tiny};

            for (my $i = 0; $i < length $data; $i += $seg) {
                return 'peer' unless write_all($c, substr($data, $i, $seg));
                Time::HiRes::sleep($step->{pause} // 0.001);
            }

            next;
        }

        if ($step->{repeat}) {
            for (1 .. $step->{repeat}) {
                return 'peer' unless write_all($c, $step->{step});
            }

            next;
        }

        if ($step->{reset}) {
            setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
            close $c;
            return 'reset';
        }

        if ($step->{cut}) {
            close $c;
            return 'cut';
        }

        if ($step->{hang}) {
            return 'peer' if peer_closed($c, 60);
            return 'eof';
        }

        if ($step->{forever}) {
            # an endless stream: one event every "every" seconds
            while (1) {
                return 'peer' unless write_all($c, $step->{forever});
                return 'peer' if peer_closed($c, $step->{every} // 0.05);
            }
        }
    }

    close $c;
    return 'eof';
}

sub write_all {
    my ($c, $data) = @_;
    my $off = 0;

    while ($off < length $data) {
        my $n = syswrite($c, $data, length($data) - $off, $off);
        return 0 unless $n;
        $off += $n;
    }

    return 1;
}

# waits up to SECONDS; true when the peer closed the connection meanwhile
sub peer_closed {
    my ($c, $seconds) = @_;
    my $end = Time::HiRes::time() + $seconds;

    while ((my $left = $end - Time::HiRes::time()) > 0) {
        my $rin = '';
        vec($rin, fileno($c), 1) = 1;

        my $n = select(my $rout = $rin, undef, undef, $left);

        if ($n > 0) {
            my $buf;
            my $r = sysread($c, $buf, 4096);
            return 1 if !defined $r || $r == 0;
        }
    }

    return 0;
}

sub request_body {
    my ($name) = @_;

    open my $fh, '<', "$dir/$name.req" or return undef;
    local $/;
    my $body = <$fh>;
    close $fh;

    return $body;
}

END {
    local $?;
    if ($pid && $owner && $$ == $owner) {
        kill 'KILL', -$pid;
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
}

1;
