# Every PromQL expression of conf/examples/grafana-dashboard.json, checked
# with "promtool test rules" against what the module's llm_status
# prometheus really served (plain Test::More, own nginx, as t/012):
#
#   1. util/dashboard-rules.pl turns the dashboard's queries into recording
#      rules (one per panel target and per template variable), so the rules
#      are the dashboard's own and cannot drift from it;
#   2. scripted traffic goes through nginx (two workers) to a fake provider
#      that fails or answers after 1.5 s, and to a Redis-cached location:
#      an answer, failures that open the breaker, a skip, a cache miss and
#      hit, a successful trial that closes the breaker, one more failure;
#      /metrics is scraped after each step;
#   3. the scrapes become promtool input series, one minute apart, with the
#      labels Prometheus adds (instance, job); a series a scrape does not
#      have yet (a status code not seen yet, a model pair not used yet) is
#      0 there, as its counter was;
#   4. each rule's value is compared with what this traffic must give
#      (%expect below): rates over the 10 minutes that $__rate_interval
#      stands for, ratios, and percentiles from the buckets the 1.5 s
#      answers and the fast failures fall in.
#
# The file promtool ran is kept when a check fails (its path is printed).

use strict;
use warnings;
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use LLMNginx;
use LLMRedis;

my ($promtool) = grep { -x } map { "$_/promtool" } split /:/, $ENV{PATH};

plan skip_all => 'TEST_NGINX_LOAD_MODULES does not name the module'
    unless module_path();
plan skip_all => 'promtool is not installed (apt-get install prometheus)'
    unless $promtool;
plan skip_all => 'redis-server is not installed (Debian: redis-server)'
    unless $LLMRedis::Available;

my $top = "$FindBin::Bin/..";
my $dashboard = "$top/conf/examples/grafana-dashboard.json";
my $port = free_port();
my $redis = $ENV{TEST_NGINX_REDIS_PORT};
my $body = '{"model":"client-model","messages":[{"role":"user",'
         . '"content":"hi"}]}';

sub answer {
    my ($model, $prompt, $completion) = @_;

    return qq({"id":"chatcmpl-d","object":"chat.completion","created":1,)
         . qq("model":"$model","choices":[{"index":0,"message":{"role":)
         . qq("assistant","content":"hello"},"finish_reason":"stop"}],)
         . qq("usage":{"prompt_tokens":$prompt,)
         . qq("completion_tokens":$completion}});
}

my %answers = (
    '/primary' => answer('gpt-primary-0613', 5, 7),
    '/backup' => answer('backup-model', 20, 70),
);

# The fake provider, a forking Perl server: the provider key chooses what
# it does ("Authorization: Bearer MODE"): "down" is a 503 at once, "slow"
# a 200 after 1.5 s; the path chooses the answer's model and usage.
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

        my ($path) = $head =~ m{^POST (\S+)};
        my ($mode) = $head =~ /^Authorization: Bearer (\S+)/mi;
        $mode //= '';

        if ($mode eq 'down') {
            my $e = '{"error":{"message":"down","type":"server_error"}}';
            print $c "HTTP/1.1 503 Service Unavailable\r\n"
                   . "Content-Type: application/json\r\n"
                   . "Content-Length: " . length($e) . "\r\n"
                   . "Connection: close\r\n\r\n$e";

        } else {
            sleep 1.5;
            my $ok = $answers{$path // ''} // '{}';
            print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   . "Content-Length: " . length($ok) . "\r\n"
                   . "Connection: close\r\n\r\n$ok";
        }

        close $c;
        POSIX::_exit(0);
    }
}

close $fake;

my $nginx = start_nginx(workers => 2, http => <<"END");
    llm_circuit_breaker zone=dashboard:1m failures=2 window=60s
                        cooldown=10s max_cooldown=1m;

    llm_provider primary uri=/_llm/primary model=gpt-primary
                 api_key=\$arg_mode;
    llm_provider backup uri=/_llm/backup api_key=slow;

    server {
        listen 127.0.0.1:$port reuseport;

        location /chat { llm_fallback_chain primary backup; }

        location /cached {
            llm_cache redis=127.0.0.1:$redis ttl=1h;
            llm_fallback_chain backup;
        }

        location = /metrics { llm_status prometheus; }

        location /_llm/ {
            internal;
            proxy_pass http://127.0.0.1:$fake_port/;
        }
    }
END

END {
    stop_nginx($nginx) if $nginx;
    kill 'KILL', -$fake_pid if $fake_pid;
}

wait_port($port) or BAIL_OUT("nginx does not listen");

sub request {
    my ($method, $uri, $data) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 30) or return { status => 0 };

    $data //= '';

    print $s "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
           . "Connection: close\r\nContent-Type: application/json\r\n"
           . "Content-Length: " . length($data) . "\r\n\r\n$data";

    local $/;
    my $raw = <$s> // '';
    close $s;

    my ($head, $rest) = split /\r\n\r\n/, $raw, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.1 (\d+)};
    my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () }
            split /\r\n/, $head // '';

    return { status => $status // 0, h => \%h, body => $rest // '' };
}

sub chat {
    my ($uri, $provider, $cache) = @_;
    my $r = request('POST', $uri, $body);

    is($r->{status}, 200, "POST $uri: 200");
    is($r->{h}{'x-llm-provider'} // '', $provider,
       "POST $uri: answered by $provider") if defined $provider;
    is($r->{h}{'x-llm-cache'} // '', $cache, "POST $uri: cache $cache")
        if defined $cache;
}

# one scrape: { 'name{labels}' => value }, in the order served
my @order;
my %known;

sub scrape {
    my $r = request('GET', '/metrics');
    my %s;

    is($r->{status}, 200, 'GET /metrics');

    for my $line (split /\n/, $r->{body}) {
        next if $line =~ /^#/ || $line eq '';

        $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/
            or die "not a sample: $line\n";

        $s{$1} = $2;
        push @order, $1 unless $known{$1}++;
    }

    return \%s;
}

sub breaker_state {
    my ($name) = @_;
    return scrape_quiet()->{"llm_breaker_state{provider=\"$name\"}"} // -1;
}

sub scrape_quiet {
    my $r = request('GET', '/metrics');
    my %s = map { /^(\S+) (\S+)$/ ? ($1 => $2) : () }
            grep { !/^#/ } split /\n/, $r->{body};
    return \%s;
}

# the traffic, a scrape after each step (minute 0, 1, ...)
my @scrapes;

push @scrapes, scrape();

chat('/chat?mode=slow', 'primary') for 1 .. 2;
push @scrapes, scrape();

chat('/chat?mode=down', 'backup') for 1 .. 3;
push @scrapes, scrape();

chat('/cached', 'backup', 'MISS');
chat('/cached', undef, 'HIT');
push @scrapes, scrape();

my $deadline = time + 30;
sleep 0.2 while breaker_state('primary') != 2 && time < $deadline;
is(breaker_state('primary'), 2, 'primary is half-open after its cooldown');

chat('/chat?mode=slow', 'primary');
push @scrapes, scrape();

chat('/chat?mode=down', 'backup');
push @scrapes, scrape();

is($scrapes[2]{'llm_breaker_state{provider="primary"}'}, 1,
   'the breaker was open at the third scrape');

# what the dashboard must show for this traffic, by rule, at minute 5
# (unless an "at" says otherwise): label set => value
my $r1 = 1 / 600;   # 1 in 10 minutes, per second

my %expect = (
    'dashboard:circuit_breaker_state:A' => [
        [2, { 'provider="primary"' => 1, 'provider="backup"' => 0 }],
        [5, { 'provider="primary"' => 0, 'provider="backup"' => 0 }]],
    'dashboard:consecutive_failures:A' => [
        [2, { 'provider="primary"' => 2, 'provider="backup"' => 0 }],
        [5, { 'provider="primary"' => 1, 'provider="backup"' => 0 }]],
    'dashboard:breaker_openings:A' => [
        [5, { 'provider="primary"' => 1, 'provider="backup"' => 0 }]],
    'dashboard:attempts_by_outcome:A' => [[5, {
        'outcome="success",provider="primary"' => 0.005,
        'outcome="http_503",provider="primary"' => 0.005,
        'outcome="open",provider="primary"' => $r1,
        'outcome="error",provider="primary"' => 0,
        'outcome="timeout",provider="primary"' => 0,
        'outcome="invalid_response",provider="primary"' => 0,
        'outcome="success",provider="backup"' => 5 / 600,
        'outcome="open",provider="backup"' => 0,
        'outcome="error",provider="backup"' => 0,
        'outcome="timeout",provider="backup"' => 0,
        'outcome="invalid_response",provider="backup"' => 0 }]],
    'dashboard:failures_by_reason:A' => [[5, {
        'outcome="http_503"' => 0.005, 'outcome="open"' => $r1,
        'outcome="error"' => 0, 'outcome="timeout"' => 0,
        'outcome="invalid_response"' => 0 }]],
    'dashboard:fallbacks:A' => [[5, {
        'provider="primary"' => 4 / 600, 'provider="backup"' => 0 }]],
    'dashboard:fallback_ratio:A' => [[5, {
        'provider="primary"' => 4 / 7, 'provider="backup"' => 0 }]],
    'dashboard:requests_by_status:A' => [[5, {
        'class="1xx"' => 0, 'class="2xx"' => 0.015, 'class="3xx"' => 0,
        'class="4xx"' => 0, 'class="5xx"' => 0 }]],

    # every answer took 1.5 s: a third of the way through the bucket of
    # (1, 2.5] for the first token, (1.28, 2.56] for the duration
    'dashboard:time_to_first_token:A' => [[5, {
        'gen_ai_provider_name="primary"' => 1.75,
        'gen_ai_provider_name="backup"' => 1.75 }]],
    'dashboard:time_to_first_token:B' => [[5, {
        'gen_ai_provider_name="primary"' => 2.425,
        'gen_ai_provider_name="backup"' => 2.425 }]],
    'dashboard:time_to_first_token:C' => [[5, {
        'gen_ai_provider_name="primary"' => 2.485,
        'gen_ai_provider_name="backup"' => 2.485 }]],
    'dashboard:request_duration:A' => [[5, {
        'gen_ai_provider_name="primary"' => 1.92,
        'gen_ai_provider_name="backup"' => 1.92 }]],
    'dashboard:request_duration:B' => [[5, {
        'gen_ai_provider_name="primary"' => 2.496,
        'gen_ai_provider_name="backup"' => 2.496 }]],
    'dashboard:request_duration:C' => [[5, {
        'gen_ai_provider_name="primary"' => 2.5472,
        'gen_ai_provider_name="backup"' => 2.5472 }]],

    # primary: 3 failures under 0.1 s and 3 answers in (1, 2.5]
    'dashboard:attempt_duration_p95:A' => [[5, {
        'provider="primary"' => 2.35, 'provider="backup"' => 2.425 }]],

    'dashboard:tokens:A' => [[5, {
        'provider="primary",type="prompt"' => 0.025,
        'provider="primary",type="completion"' => 0.035,
        'provider="backup",type="prompt"' => 100 / 600,
        'provider="backup",type="completion"' => 350 / 600 }]],
    'dashboard:tokens_per_answer_p95:A' => [[5, {
        'gen_ai_provider_name="primary",gen_ai_response_model='
        . '"gpt-primary-0613",gen_ai_token_type="input"' => 15.4,
        'gen_ai_provider_name="primary",gen_ai_response_model='
        . '"gpt-primary-0613",gen_ai_token_type="output"' => 15.4,
        'gen_ai_provider_name="backup",gen_ai_response_model='
        . '"backup-model",gen_ai_token_type="input"' => 61.6,
        'gen_ai_provider_name="backup",gen_ai_response_model='
        . '"backup-model",gen_ai_token_type="output"' => 246.4 }]],
    'dashboard:cache_hit_ratio:A' => [[5, { '' => 0.5 }]],
    'dashboard:cache_lookups:A' => [[5, {
        'status="hit"' => $r1, 'status="miss"' => $r1, 'status="stale"' => 0,
        'status="bypass"' => 0, 'status="error"' => 0 }]],
    'dashboard:var:instance' => [[5, { 'instance="n1"' => 5 }]],
    'dashboard:var:provider' => [[5, {
        'provider="primary"' => 6, 'provider="backup"' => 5 }]],
);

# 1. the rules, from the dashboard
my $dir = tempdir(CLEANUP => 1);
my $rules = `$^X '$top/util/dashboard-rules.pl' --window 10m '$dashboard'`;
is($?, 0, 'util/dashboard-rules.pl');

open my $fh, '>', "$dir/rules.yml" or die $!;
print $fh $rules;
close $fh;

my $out = `'$promtool' check rules '$dir/rules.yml' 2>&1`;
is($?, 0, 'promtool check rules') or diag($out);

my @records = map { $_->{record} }
              @{ decode_json($rules)->{groups}[0]{rules} };

is_deepx([sort @records], [sort keys %expect],
         'every dashboard expression has its expected values');

sub is_deepx { is_deeply(@_) or diag(explain($_[0])) }

# 2. the recorded scrapes as input series
my @series;

for my $key (@order) {
    my ($name, $labels) = $key =~ /^([^{]+)(?:\{(.*)\})?$/;
    my $all = join ',', 'instance="n1"', 'job="nginx-llm"',
                        defined $labels && $labels ne '' ? $labels : ();

    push @series, {
        series => "$name\{$all\}",
        values => join(' ', map { $_->{$key} // 0 } @scrapes),
    };
}

# as the rules round: to the nearest multiple of 2^-20 (exact in binary)
sub snap {
    my ($v) = @_;
    return POSIX::floor($v * 1048576 + 0.5) / 1048576;
}

my @tests;

for my $record (sort keys %expect) {
    for my $at (@{ $expect{$record} }) {
        my ($minute, $samples) = @$at;

        push @tests, {
            expr => $record,
            eval_time => "${minute}m",
            exp_samples => [ map {
                { labels => $_ eq '' ? $record : "$record\{$_\}",
                  value => 'NUMBER:' . sprintf('%.17g', snap($samples->{$_})) }
            } sort keys %$samples ],
        };
    }
}

my $test = {
    rule_files => ['rules.yml'],
    evaluation_interval => '1m',
    tests => [{ interval => '1m', input_series => \@series,
                promql_expr_test => \@tests }],
};

# the values with all the digits they need (Perl would print 15)
my $text = JSON::PP->new->canonical->pretty->encode($test);
$text =~ s/"NUMBER:([^"]+)"/$1/g;

open $fh, '>', "$dir/dashboard.test.yml" or die $!;
print $fh $text;
close $fh;

# 3. promtool
$out = `cd '$dir' && '$promtool' test rules dashboard.test.yml 2>&1`;

if (!is($?, 0, 'promtool test rules: every dashboard expression')) {
    diag($out);

    my $keep = File::Temp->newdir('llm-dashboard-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 0);
    system('cp', "$dir/rules.yml", "$dir/dashboard.test.yml", "$keep");
    diag("kept: $keep/rules.yml, $keep/dashboard.test.yml");
}

my @alerts = grep { /\[(?:alert|crit|emerg)\]/ }
             error_log_lines($nginx, qr/./);
is_deeply(\@alerts, [], 'no [alert], [crit] or [emerg] in error.log');

done_testing();
