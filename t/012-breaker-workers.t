# The circuit breaker across two worker processes and reloads, with a
# self-managed nginx (plain Test::More, as t/008 and t/009):
#
#   1. failures spread over both workers add up to one count and open the
#      breaker for both (the count is shared: llm_status);
#   2. half-open: one slow trial, and meanwhile every other request, in
#      either worker, skips the provider; the trial's success closes it;
#   3. a trial whose client goes away gives its slot back;
#   4. nginx -s reload (SIGHUP) keeps the state of the providers that are
#      still configured, even reordered, and forgets a removed provider.
#
# Checks are made on state (llm_status, X-LLM-* headers), never on time:
# the only waits are for cooldowns, and waiting longer is always safe.

use strict;
use warnings;
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Test::More;
use LLMNginx;

plan skip_all => 'TEST_NGINX_LOAD_MODULES does not name the module'
    unless module_path();

my $port = free_port();
my $body = '{"messages":[{"role":"user","content":"hi"}]}';

my $ok = '{"id":"chatcmpl-w","object":"chat.completion","created":1,'
       . '"model":"m","choices":[{"index":0,"message":{"role":"assistant",'
       . '"content":"hello"},"finish_reason":"stop"}],'
       . '"usage":{"prompt_tokens":5,"completion_tokens":7}}';

# The fake provider, a forking Perl server: what it does is chosen by the
# client's ?mode=, which reaches it as the provider key ("Authorization:
# Bearer MODE"): "down" is a 503 at once, "slowN" answers 200 after N
# seconds, "hangN" never before N seconds, anything else is a 200.
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

        if ($mode =~ /^(?:slow|hang)(\d+)$/) {
            sleep $1;
        }

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

sub http_config {
    my (%o) = @_;
    my $breaker = $o{breaker}
        // 'llm_circuit_breaker zone=cb:1m failures=10 cooldown=1s;';
    my $providers = $o{providers} // <<'END';
    llm_provider flaky uri=/_llm/fake api_key=$arg_mode;
    llm_provider gone uri=/_llm/fake api_key=$arg_mode;
    llm_provider ok uri=/_llm/ok;
END
    my $locations = $o{locations} // <<'END';
        location /gone { llm_fallback_chain gone ok; }
END

    return <<"END";
    $breaker
$providers
    server {
        listen 127.0.0.1:$port reuseport;

        location /chat {
            llm_attempt_timeout 60s;
            llm_fallback_chain flaky ok;
            add_header X-Pid \$pid always;
        }
$locations
        location = /status { llm_status; }

        location = /_llm/fake {
            internal;
            proxy_pass http://127.0.0.1:$fake_port/;
        }

        location = /_llm/ok {
            internal;
            return 200 '$ok';
        }
    }
END
}

my $nginx = start_nginx(workers => 2, http => http_config());

END {
    stop_nginx($nginx) if $nginx;
    kill 'KILL', -$fake_pid if $fake_pid;
}

wait_port($port) or BAIL_OUT("nginx does not listen");

# one request on a new connection: { status, h => { lc name => value },
# body }
sub request {
    my ($method, $uri, $data) = @_;
    my $s = send_request($method, $uri, $data) or return { status => 0 };
    return read_response($s);
}

sub send_request {
    my ($method, $uri, $data) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 30) or return;

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
    my ($mode, $path) = @_;
    return request('POST', ($path // '/chat') . "?mode=$mode", $body);
}

sub status {
    my $r = request('GET', '/status');
    return eval { decode_json($r->{body}) } // {};
}

sub provider {
    my ($name) = @_;
    return status()->{providers}{$name} // {};
}

# waits (up to 10 s) until the status satisfies the check
sub wait_status {
    my ($check) = @_;

    for (1 .. 200) {
        my $st = status();
        return $st if $check->($st);
        select(undef, undef, undef, 0.05);
    }

    return status();
}


# 1. ten failures from both workers open it; then both workers skip it

my (@pids, @lines);

for my $i (1 .. 10) {
    my $r = chat('down');
    push @pids, $r->{h}{'x-pid'} // 0;
    push @lines, join ' ', $r->{status}, $r->{h}{'x-llm-fallback'} // '-';
}

is_deeply(\@lines, [("200 flaky:http_503") x 10],
          'the first ten requests try "flaky" and fall back');

my %by = map { $_ => 1 } @pids;

SKIP: {
    skip 'all ten requests went to one worker: cannot show sharing', 1
        if keys %by < 2;

    cmp_ok(scalar keys %by, '>=', 2,
           'the ten failures were spread over both workers');
}

my $p = provider('flaky');
is($p->{state}, 'open', 'the shared count reached failures=10: open');
is($p->{attempts}, 10, 'llm_status counts the attempts of both workers');
is($p->{opened}, 1, 'opened once');

my (%skip_pids, @skips);

for (1 .. 20) {
    my $r = chat('up');
    push @skips, $r->{h}{'x-llm-fallback'} // '-';
    $skip_pids{ $r->{h}{'x-pid'} // 0 } = 1;
    last if keys %skip_pids >= 2 && @skips >= 6;
}

is_deeply([ grep { $_ ne 'flaky:open' } @skips ], [],
          'every later request skips "flaky", whichever worker serves it');
cmp_ok(scalar keys %skip_pids, '>=', 2, 'both workers skipped it');

is(status()->{requests}{total}, 10 + @skips,
   'requests are counted across workers');


# 2. half-open: one slow trial; meanwhile the others skip it

wait_status(sub { $_[0]{providers}{flaky}{state} eq 'half_open' });

my $trial = send_request('POST', '/chat?mode=slow3', $body);

my $st = wait_status(sub { $_[0]{providers}{flaky}{probes} == 1 });
is($st->{providers}{flaky}{probes}, 1, 'a trial is in flight');
is($st->{providers}{flaky}{state}, 'half_open', 'the breaker is half-open');

my @during;

for (1 .. 6) {
    my $r = chat('up');
    push @during, ($r->{h}{'x-llm-fallback'} // '-') . ' '
                  . ($r->{h}{'x-llm-provider'} // '-');
}

is_deeply(\@during, [("flaky:open ok") x 6],
          'while the trial runs, other requests skip the provider');

my $tr = read_response($trial);
is($tr->{status}, 200, 'the trial answered');
is($tr->{h}{'x-llm-provider'}, 'flaky', 'the trial was served by "flaky"');
ok(!$tr->{h}{'x-llm-fallback'}, 'the trial did not fall back');

$p = provider('flaky');
is($p->{state}, 'closed', 'the successful trial closed the breaker');
is($p->{probes}, 0, 'no trial in flight');

is(chat('up')->{h}{'x-llm-provider'}, 'flaky', '"flaky" is used again');


# 3. a trial whose client goes away gives its slot back

for (1 .. 10) {
    chat('down');
}

is(provider('flaky')->{state}, 'open', 'open again');
is(provider('flaky')->{opened}, 2, 'opened twice');

wait_status(sub { $_[0]{providers}{flaky}{state} eq 'half_open' });

my $gone = send_request('POST', '/chat?mode=hang30', $body);

$st = wait_status(sub { $_[0]{providers}{flaky}{probes} == 1 });
is($st->{providers}{flaky}{probes}, 1, 'a trial hangs in flight');

close $gone;

$st = wait_status(sub { $_[0]{providers}{flaky}{probes} == 0 });
is($st->{providers}{flaky}{probes}, 0,
   'the client went away: its trial slot is free again');
is($st->{providers}{flaky}{state}, 'half_open', 'still half-open');

my $r = chat('up');
is($r->{h}{'x-llm-provider'}, 'flaky', 'the next request is the trial');
is(provider('flaky')->{state}, 'closed', 'and it closed the breaker');


# 4. reload: the state of kept providers survives, a removed one is
#    forgotten

my $policy = 'llm_circuit_breaker zone=cb:1m failures=10 cooldown=%s;';

# first a cooldown long enough to outlast the reloads below

reload_nginx($nginx, http => http_config(breaker => sprintf $policy, '60s'));

wait_status(sub { $_[0]{breaker}{cooldown_ms} == 60000 });

for (1 .. 10) {
    chat('down');
    chat('down', '/gone');
}

$st = status();
is($st->{providers}{flaky}{state}, 'open', 'flaky is open before reload');
is($st->{providers}{gone}{state}, 'open', 'gone is open before reload');

my %before = %{ $st->{providers}{flaky} };

# "gone" removed, "ok" and "flaky" swapped

reload_nginx($nginx, http => http_config(
    breaker => sprintf($policy, '61s'),
    providers => <<'END',
    llm_provider ok uri=/_llm/ok;
    llm_provider flaky uri=/_llm/fake api_key=$arg_mode;
END
    locations => ''));

$st = wait_status(sub { $_[0]{breaker}{cooldown_ms} == 61000 });

is($st->{breaker}{cooldown_ms}, 61000, 'the new configuration is in force');
ok(!exists $st->{providers}{gone}, 'after the reload "gone" is not listed');
is_deeply([ @{ $st->{providers}{flaky} }{qw(state opened attempts)} ],
          [ 'open', @before{qw(opened attempts)} ],
          'the breaker and counters of "flaky" survived the reload');

$r = chat('up');
is($r->{h}{'x-llm-fallback'}, 'flaky:open',
   'a new worker skips the provider opened before the reload');

# "gone" back

reload_nginx($nginx, http => http_config(breaker => sprintf $policy, '62s'));

$st = wait_status(sub { $_[0]{breaker}{cooldown_ms} == 62000 });

is_deeply([ @{ $st->{providers}{gone} }{qw(state opened attempts)} ],
          ['closed', 0, 0],
          'a provider added again starts afresh: it was forgotten');
is($st->{providers}{flaky}{state}, 'open', '"flaky" is still open');

my @alerts = error_log_lines($nginx,
                             qr/\[(?:alert|crit|emerg)\]|exited on signal/);
is(scalar @alerts, 0, 'no alert, crit or crash in error.log')
    or diag(@alerts);

done_testing();
