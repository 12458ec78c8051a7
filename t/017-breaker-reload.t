# The breaker's state across reloads that fail and reloads that succeed,
# with a self-managed nginx (master process on, two workers; plain
# Test::More, as t/012):
#
#   1. a reload that fails (the new configuration listens on a port that
#      is taken: bind() fails) changes nothing: a provider that the new
#      configuration removed stays open in the running workers, with its
#      counters, and is still skipped;
#   2. a reload that succeeds forgets the removed provider: added again
#      later, it starts afresh; a kept provider keeps its state.

use strict;
use warnings;
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use LLMNginx;

plan skip_all => 'TEST_NGINX_LOAD_MODULES does not name the module'
    unless module_path();

my $port = free_port();
my $body = '{"messages":[{"role":"user","content":"hi"}]}';

my $ok = '{"id":"chatcmpl-r","object":"chat.completion","created":1,'
       . '"model":"m","choices":[{"index":0,"message":{"role":"assistant",'
       . '"content":"hello"},"finish_reason":"stop"}],'
       . '"usage":{"prompt_tokens":5,"completion_tokens":7}}';

my $down = '{"error":{"message":"down","type":"server_error"}}';

# a port held by this script: a configuration listening there fails
my $taken = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0) or die $!;
my $taken_port = $taken->sockport;

sub http_config {
    my (%o) = @_;
    my $cooldown = $o{cooldown} // '60s';
    my $gone = $o{gone} // 1;
    my $listen = $o{listen} ? "listen 127.0.0.1:$o{listen};" : '';

    my $providers = "llm_provider flaky uri=/_llm/down;\n"
                  . "    llm_provider ok uri=/_llm/ok;\n";
    my $locations = '';

    if ($gone) {
        $providers .= "    llm_provider gone uri=/_llm/down;\n";
        $locations = 'location /gone { llm_fallback_chain gone ok; }';
    }

    return <<"END";
    llm_circuit_breaker zone=cb:1m failures=2 cooldown=$cooldown
                        max_cooldown=5m;
    $providers

    server {
        listen 127.0.0.1:$port;
        $listen

        location /chat { llm_fallback_chain flaky ok; }
        $locations

        location = /status { llm_status; }

        location = /_llm/down {
            internal;
            default_type application/json;
            return 503 '$down';
        }

        location = /_llm/ok {
            internal;
            default_type application/json;
            return 200 '$ok';
        }
    }
END
}

my $nginx = start_nginx(workers => 2, http => http_config());

END {
    stop_nginx($nginx) if $nginx;
}

wait_port($port) or BAIL_OUT("nginx does not listen");

# one request on a new connection: { status, h => { lc name => value },
# body }
sub request {
    my ($method, $uri, $data) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 30)
        or return { status => 0, h => {}, body => '' };

    $data //= '';

    print $s "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
           . "Connection: close\r\nContent-Type: application/json\r\n"
           . "Content-Length: " . length($data) . "\r\n\r\n$data";

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
    my ($path) = @_;
    return request('POST', $path, $body);
}

sub status {
    my $r = request('GET', '/status');
    return eval { decode_json($r->{body}) } // {};
}

# waits (up to 20 s) until the status satisfies the check
sub wait_status {
    my ($check) = @_;

    for (1 .. 400) {
        my $st = status();
        return $st if eval { $check->($st) };
        select(undef, undef, undef, 0.05);
    }

    return status();
}

sub wait_log {
    my ($re) = @_;

    for (1 .. 400) {
        return 1 if error_log_lines($nginx, $re);
        select(undef, undef, undef, 0.05);
    }

    return 0;
}

sub state_of {
    my ($st, $name) = @_;
    my $p = $st->{providers}{$name} or return undef;
    return [ @{$p}{qw(state opened attempts consecutive_failures)} ];
}


# both breakers open

for (1 .. 2) {
    chat('/chat');
    chat('/gone');
}

my $st = status();
is($st->{providers}{flaky}{state}, 'open', '"flaky" is open');
is($st->{providers}{gone}{state}, 'open', '"gone" is open');

my $flaky = state_of($st, 'flaky');
my $gone = state_of($st, 'gone');


# 1. a reload that fails: "gone" removed, and a listen on a taken port

reload_nginx($nginx, http => http_config(cooldown => '61s', gone => 0,
                                         listen => $taken_port));

ok(wait_log(qr/still could not bind\(\)/),
   'the reload failed: bind() to a taken port');

$st = status();

is($st->{breaker}{cooldown_ms}, 60000,
   'the running workers keep the old configuration');
is_deeply(state_of($st, 'gone'), $gone,
          'after the failed reload "gone" is still open, its counters kept');
is_deeply(state_of($st, 'flaky'), $flaky, '"flaky" is unchanged too');

my $r = chat('/gone');
is($r->{status}, 200, 'a request on /gone is answered');
is($r->{h}{'x-llm-fallback'}, 'gone:open', 'and it still skips "gone"');

$r = chat('/chat');
is($r->{h}{'x-llm-fallback'}, 'flaky:open', '"flaky" is still skipped');


# 2. a reload that succeeds forgets "gone", keeps "flaky"

reload_nginx($nginx, http => http_config(cooldown => '62s', gone => 0));

$st = wait_status(sub { $_[0]{breaker}{cooldown_ms} == 62000 });
is($st->{breaker}{cooldown_ms}, 62000, 'the second reload is in force');
ok(!exists $st->{providers}{gone}, '"gone" is not configured any more');
is($st->{providers}{flaky}{state}, 'open', '"flaky" kept its state');

reload_nginx($nginx, http => http_config(cooldown => '63s'));

$st = wait_status(sub { $_[0]{breaker}{cooldown_ms} == 63000 });
is($st->{breaker}{cooldown_ms}, 63000, 'the third reload is in force');
is_deeply(state_of($st, 'gone'), ['closed', 0, 0, 0],
          '"gone", configured again, starts afresh: it was forgotten');
is($st->{providers}{flaky}{state}, 'open', '"flaky" is still open');

my @alerts = error_log_lines($nginx,
                             qr/\[(?:alert|crit)\]|exited on signal/);
is(scalar @alerts, 0, 'no alert, crit or crash in error.log')
    or diag(@alerts);

done_testing();
