# A half-open trial that is taken for lost (it held its slot longer than
# max(max_cooldown, 120s)) and whose report comes late must not touch
# the slot of the trial that replaced it: with probes=1, never two
# trials at a time. A self-managed nginx, one worker (plain Test::More).
#
# This suite waits for the 120 s after which a trial slot is reclaimed.

use strict;
use warnings;
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use IO::Socket::INET;
use IO::Select;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);
use Test::More;
use LLMNginx;

plan skip_all => 'TEST_NGINX_LOAD_MODULES does not name the module'
    unless module_path();

my $port = free_port();
my $body = '{"messages":[{"role":"user","content":"hi"}]}';

my $ok = '{"id":"chatcmpl-l","object":"chat.completion","created":1,'
       . '"model":"m","choices":[{"index":0,"message":{"role":"assistant",'
       . '"content":"hello"},"finish_reason":"stop"}],'
       . '"usage":{"prompt_tokens":5,"completion_tokens":7}}';

# The fake provider, a forking Perl server; the client's ?mode= reaches
# it as the key: "down" is a 503 at once, "hangN" a 503 after N seconds,
# "slowN" a 200 after N seconds, anything else a 200.
my $fake = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                 LocalPort => 0, ReuseAddr => 1) or die $!;
my $fake_port = $fake->sockport;

my $fake_pid = fork // die $!;

if ($fake_pid == 0) {
    setpgrp(0, 0);
    $SIG{CHLD} = 'IGNORE';

    while (1) {
        my $c = $fake->accept or next;
        my $pid = fork;

        if (!defined $pid || $pid) {
            close $c;
            next;
        }

        my $head = '';
        while (defined(my $line = <$c>)) {
            $head .= $line;
            last if $line eq "\r\n";
        }

        my ($len) = $head =~ /^Content-Length: (\d+)/mi;
        read($c, my $got, $len // 0);

        my ($mode) = $head =~ /^Authorization: Bearer (\S+)/mi;
        $mode //= 'up';

        sleep $1 if $mode =~ /^(?:slow|hang)(\d+)$/;

        if ($mode eq 'down' || $mode =~ /^hang/) {
            my $e = '{"error":{"message":"down","type":"server_error"}}';
            print $c "HTTP/1.1 503 Service Unavailable\r\n"
                   . "Content-Type: application/json\r\n"
                   . "Content-Length: " . length($e) . "\r\n"
                   . "Connection: close\r\n\r\n$e";

        } else {
            print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   . "Content-Length: " . length($ok) . "\r\n"
                   . "Connection: close\r\n\r\n$ok";
        }

        close $c;
        POSIX::_exit(0);
    }
}

close $fake;

my $nginx = start_nginx(workers => 1, http => <<"END");
    llm_circuit_breaker zone=cb:1m failures=1 cooldown=1s max_cooldown=1s
                        probes=1;

    llm_provider flaky uri=/_llm/fake api_key=\$arg_mode;
    llm_provider ok uri=/_llm/ok;

    server {
        listen 127.0.0.1:$port;

        location /chat {
            llm_attempt_timeout 300s;
            llm_fallback_chain flaky ok;
        }

        location = /status { llm_status; }

        location = /_llm/fake {
            internal;
            proxy_read_timeout 300s;
            proxy_pass http://127.0.0.1:$fake_port/;
        }

        location = /_llm/ok {
            internal;
            default_type application/json;
            return 200 '$ok';
        }
    }
END

END {
    stop_nginx($nginx) if $nginx;
    kill 'KILL', -$fake_pid if $fake_pid;
}

wait_port($port) or BAIL_OUT("nginx does not listen");

sub send_request {
    my ($method, $uri, $data) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 300) or return;

    $data //= '';

    print $s "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
           . "Connection: close\r\nContent-Type: application/json\r\n"
           . "Content-Length: " . length($data) . "\r\n\r\n$data";

    return $s;
}

sub read_response {
    my ($s) = @_;
    my (%h, $status);

    my $line = <$s>;
    ($status) = ($line // '') =~ m{^HTTP/1\.1 (\d+)};

    while (defined($line = <$s>)) {
        last if $line eq "\r\n";
        $h{lc $1} = $2 if $line =~ /^([^:]+):\s*(.*?)\r\n$/;
    }

    local $/;
    my $rest = <$s>;
    close $s;

    return { status => $status // 0, h => \%h, body => $rest // '' };
}

sub chat {
    my ($mode) = @_;
    return read_response(send_request('POST', "/chat?mode=$mode", $body));
}

sub flaky {
    my $s = send_request('GET', '/status') or return {};
    my $r = read_response($s);
    my $st = eval { decode_json($r->{body}) } // {};
    return $st->{providers}{flaky} // {};
}

sub wait_flaky {
    my ($check, $seconds) = @_;

    for (1 .. ($seconds // 10) * 20) {
        my $p = flaky();
        return $p if eval { $check->($p) };
        sleep 0.05;
    }

    return flaky();
}

# no answer within this many seconds: the request is in flight
sub silent {
    my ($s, $seconds) = @_;
    return !IO::Select->new($s)->can_read($seconds);
}


chat('down');
is(flaky()->{state}, 'open', 'one failure opens the breaker');

my $p = wait_flaky(sub { $_[0]{state} eq 'half_open' });
is($p->{state}, 'half_open', 'half-open after the cooldown');

# trial A: its provider answers a 503 after 130 s

my $trial_a = send_request('POST', '/chat?mode=hang130', $body);
my $a_start = time;

$p = wait_flaky(sub { $_[0]{probes} == 1 });
is($p->{probes}, 1, 'trial A holds the slot');

# its slot is taken for lost after 120 s: trial B gets it

sleep($a_start + 122 - time);

my $trial_b = send_request('POST', '/chat?mode=slow100', $body);

ok(silent($trial_b, 2), 'request B is a trial in flight: the lost slot was reclaimed');
is(flaky()->{probes}, 1, 'one trial in flight');

# A reports its failure late

$p = wait_flaky(sub { $_[0]{attempts} == 2 }, 30);
is($p->{attempts}, 2, 'trial A ended, late');

my $ar = read_response($trial_a);
is($ar->{h}{'x-llm-provider'}, 'ok', 'A fell back');

# long enough for a re-opened breaker (1 s) to be half-open again

sleep 1.5;

$p = flaky();
is($p->{probes}, 1, 'B still holds the only slot: A did not give it back');
is($p->{state}, 'half_open', 'A, no longer a trial, did not re-open it');

my $s = send_request('POST', '/chat?mode=slow100', $body);
ok(!silent($s, 10), 'request C is answered at once');

my $c = read_response($s);
is($c->{h}{'x-llm-fallback'}, 'flaky:open',
   'request C is not a second trial: it skips "flaky"');
is($c->{h}{'x-llm-provider'}, 'ok', 'C is served by "ok"');

# B's client goes away: its slot is given back

close $trial_b;

$p = wait_flaky(sub { $_[0]{probes} == 0 });
is($p->{probes}, 0, 'B gave its slot back');

my $d = chat('up');
is($d->{h}{'x-llm-provider'}, 'flaky', 'the next request is the trial');
is(flaky()->{state}, 'closed', 'and its success closed the breaker');

my @alerts = error_log_lines($nginx,
                             qr/\[(?:alert|crit|emerg)\]|exited on signal/);
is(scalar @alerts, 0, 'no alert, crit or crash in error.log')
    or diag(@alerts);

done_testing();
