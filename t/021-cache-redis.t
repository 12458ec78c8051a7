# The cache against a real Redis that misbehaves: absent at start, killed
# mid-run, restarted, hung (DEBUG SLEEP); two nginx nodes sharing one
# Redis; clients that go away while their lookup is pending; the stored
# key and value as documented. A plain Test::More script: Test::Nginx
# cannot act between requests. With TEST_NGINX_USE_VALGRIND=1 each nginx
# runs under valgrind and its findings fail the script.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use JSON::PP ();
use POSIX ();
use File::Temp ();

use LLMNode;

BEGIN {
    if (!LLMNode::module_so()) {
        plan skip_all => 'TEST_NGINX_LOAD_MODULES does not name the module';
    }
}

use LLMRedis;

if (!$LLMRedis::Available) {
    plan skip_all => 'redis-server is not installed (Debian: redis-server)';
}

# valgrind and the sanitizers slow nginx down: timeouts and waits scale
my $slow = $ENV{TEST_NGINX_USE_VALGRIND} ? 6 : $ENV{ASAN_OPTIONS} ? 3 : 1;

my $ok = '{"id":"chatcmpl-c","object":"chat.completion","created":1,'
       . '"model":"m-ok","choices":[{"index":0,"message":{"role":"assistant",'
       . '"content":"hello"},"finish_reason":"stop"}],'
       . '"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}';

# a node: "ok" answers (or fails with 503 when $fail), cache on $redis
sub node {
    my (%o) = @_;
    my $target = $o{fail} ? '503' : 'ok';

    # valgrind and ASan slow nginx down more than the default 100ms allows
    $o{cache} .= ' timeout=2s' if $slow > 1 && $o{cache} !~ /timeout=/;

    return LLMNode->new(http => <<"END");
    llm_provider ok uri=/_llm/ok;

    server {
        listen 127.0.0.1:\@FAKE\@;
        default_type application/json;
        location = /ok { return 200 '$ok'; }
        location = /503 { return 503 '{"error":{"message":"busy"}}'; }
    }

    server {
        listen 127.0.0.1:\@PORT\@;

        location /chat {
            llm_fallback_chain ok;
            llm_cache redis=127.0.0.1:$o{redis} $o{cache};
        }

        location = /_llm/ok {
            internal;
            proxy_pass http://127.0.0.1:\@FAKE\@/$target;
        }
    }
END
}

sub cache_of { $_[0]{headers}{'x-llm-cache'} // '-' }

# requests until the cache status is not ERROR, for at most $secs
sub until_cache_works {
    my ($n, $secs, %o) = @_;
    my $deadline = time + $secs;
    my $res;

    while (time < $deadline) {
        $res = $n->request(%o);
        return $res if cache_of($res) ne 'ERROR';
        sleep 0.1;
    }

    return $res;
}

sub redis_up {
    my ($port) = @_;
    my $r = eval { LLMRedis::redis_cmd_at($port, 'PING') };
    return defined $r && $r eq 'PONG';
}

my $nodes = 0;

sub no_crash {
    my ($n, $name) = @_;
    my @bad = grep { /\[(alert|crit|emerg)\]|exited on signal/ }
              split /\n/, $n->error_log;
    is(scalar @bad, 0, "$name: no alert, crit or crash in error.log")
        or diag(join "\n", @bad);

    if ($ENV{TEST_NGINX_USE_VALGRIND}) {
        my @errors = $n->valgrind_errors;
        is(scalar @errors, 0, "$name: valgrind found nothing")
            or diag(join "\n", @errors);
    }
}


subtest 'Redis absent at start, then started: the cache works without a reload'
=> sub {
    my $port = LLMRedis::free_port();
    my $n = node(redis => $port, cache => 'timeout=' . 200 * $slow . 'ms');

    my $r = $n->request;
    is($r->{status}, 200, 'answered while Redis is absent');
    is(cache_of($r), 'ERROR', 'status ERROR');
    cmp_ok($r->{elapsed}, '<', 1 * $slow, 'answered at once');

    $r = $n->request;
    is($r->{status}, 200, 'answered again (backing off)');
    is(cache_of($r), 'ERROR', 'still ERROR');

    redis_start(port => $port);

    $r = until_cache_works($n, 5 * $slow);
    is(cache_of($r), 'MISS', 'MISS once Redis is there');
    is($r->{status}, 200, 'status 200');

    $r = $n->request;
    is(cache_of($r), 'HIT', 'then HIT');
    is($r->{headers}{'x-llm-attempts'}, '0', 'no attempt');

    like($n->error_log, qr/llm cache: connect\(\) to redis 127\.0\.0\.1:$port failed/,
         'the failed connect is logged');

    # killed mid-run

    redis_stop($port, kill => 1);

    $r = $n->request;
    is($r->{status}, 200, 'answered right after Redis was killed');
    is(cache_of($r), 'ERROR', 'status ERROR');
    like($r->{body}, qr/"content":"hello"/, 'by the provider');
    cmp_ok($r->{elapsed}, '<', 1 * $slow, 'at once');

    for my $i (1 .. 5) {
        $r = $n->request;
        is("$r->{status} " . cache_of($r), '200 ERROR',
           "request $i while Redis is down");
    }

    like($n->error_log, qr/llm cache: lost the connection to redis 127\.0\.0\.1:$port/,
         'the lost connection is logged');

    # restarted, empty

    redis_start(port => $port);

    my $t0 = time;
    $r = until_cache_works($n, 5 * $slow);
    is(cache_of($r), 'MISS', 'MISS after the restart (Redis came back empty)');
    cmp_ok(time - $t0, '<', 3 * $slow, 'within the longest backoff (2s)');

    $r = $n->request;
    is(cache_of($r), 'HIT', 'HIT again');

    no_crash($n, 'absent/killed/restarted');
    $n->stop;
    redis_stop($port);
};


subtest 'Redis hung (DEBUG SLEEP): requests are answered within timeout=, '
      . 'the cache comes back' => sub {
    my $port = redis_start();
    my $n = node(redis => $port, cache => 'timeout=' . 200 * $slow . 'ms');

    my $r = $n->request;
    is(cache_of($r), 'MISS', 'MISS');
    $r = $n->request;
    is(cache_of($r), 'HIT', 'HIT');

    my $sleeper = redis_send($port, 'DEBUG', 'SLEEP', 3 * $slow);
    sleep 0.2;

    $r = $n->request;
    is($r->{status}, 200, 'answered while Redis sleeps');
    is(cache_of($r), 'ERROR', 'status ERROR');
    like($r->{body}, qr/"content":"hello"/, 'by the provider');
    cmp_ok($r->{elapsed}, '<', 0.9 * $slow, 'within timeout= and a provider call');

    # concurrent clients while it still sleeps

    my (@pipes, @pids);
    for (1 .. 8) {
        pipe(my $rd, my $wr) or die $!;
        my $pid = fork // die $!;
        if ($pid == 0) {
            close $rd;
            my $res = $n->request;
            printf $wr "%s %s %.3f\n", $res->{status}, cache_of($res),
                   $res->{elapsed};
            close $wr;
            POSIX::_exit(0);
        }
        close $wr;
        push @pipes, $rd;
        push @pids, $pid;
    }

    my @lines = map { local $/; scalar <$_> } @pipes;
    waitpid $_, 0 for @pids;

    is(scalar(grep { /^200 (ERROR|HIT) / } @lines), 8,
       '8 concurrent clients answered during the hang')
        or diag(@lines);
    is(scalar(grep { (split ' ')[2] > 1.5 * $slow } @lines), 0,
       'none waited for Redis')
        or diag(@lines);

    close $sleeper;
    sleep 0.1 until redis_up($port);

    $r = until_cache_works($n, 5 * $slow);
    is(cache_of($r), 'HIT', 'HIT again once Redis is awake (entry kept)');

    like($n->error_log, qr/llm cache: redis 127\.0\.0\.1:$port timed out/,
         'the timeout is logged');

    no_crash($n, 'hung');
    $n->stop;
    redis_stop($port);
};


subtest 'two nginx nodes share one Redis' => sub {
    my $port = $ENV{TEST_NGINX_REDIS_PORT};
    redis_cmd('FLUSHALL');

    my $a = node(redis => $port, cache => '');
    my $b = node(redis => $port, cache => '', fail => 1);

    my $r = $b->request(body => '{"messages":[{"role":"user","content":"b"}]}');
    is($r->{status}, 502, 'node b\'s provider fails');

    $r = $a->request;
    is("$r->{status} " . cache_of($r), '200 MISS', 'node a: MISS');

    my $key = cache_key(request => '{"messages":[{"role":"user","content":"hi"}]}',
                        chain => ['ok']);

    for (1 .. 50) {
        last if redis_cmd('EXISTS', $key);
        sleep 0.02;
    }

    $r = $b->request;
    is("$r->{status} " . cache_of($r), '200 HIT', 'node b: HIT from node a\'s answer');
    is($r->{headers}{'x-llm-provider'}, 'ok', 'produced by "ok"');
    is($r->{headers}{'x-llm-attempts'}, '0', 'no attempt on node b');
    like($r->{body}, qr/"content":"hello"/, 'node a\'s answer');

    no_crash($a, 'node a');
    no_crash($b, 'node b');
    $a->stop;
    $b->stop;
};


subtest 'reload: new workers connect again, old ones close their connection'
=> sub {
    plan skip_all => 'no master process under valgrind'
        if $ENV{TEST_NGINX_USE_VALGRIND};

    my $port = $ENV{TEST_NGINX_REDIS_PORT};
    redis_cmd('FLUSHALL');

    my $n = node(redis => $port, cache => '');

    my $r = $n->request;
    is(cache_of($r), 'MISS', 'MISS');

    kill 'HUP', $n->master_pid;

    my $hit;
    for (1 .. 50) {
        sleep 0.1;
        $r = $n->request;
        $hit = cache_of($r) eq 'HIT' && $n->error_log =~ /gracefully shutting down/;
        last if $hit;
    }

    ok($hit, 'HIT after the reload');

    for (1 .. 50) {
        last if $n->error_log =~ /exiting/;
        sleep 0.1;
    }

    unlike($n->error_log, qr/open socket/, 'no socket left open by old workers');

    no_crash($n, 'reload');
    $n->stop;
};


subtest 'the key and the value are as documented' => sub {
    my $port = $ENV{TEST_NGINX_REDIS_PORT};
    redis_cmd('FLUSHALL');

    my $n = node(redis => $port, cache => 'ttl=10m stale=1h prefix=doc:');
    my $req = '{"model":"m","messages":[{"role":"user","content":"hi"}],'
            . '"stream":true,"stream_options":{"include_usage":true}}';

    my $t0 = int(time * 1000);
    my $r = $n->request(body => $req, headers => ['Authorization: Bearer sk-x']);
    is("$r->{status} " . cache_of($r), '200 MISS', 'MISS');

    my $key = cache_key(request => $req, chain => ['ok'],
                        scope => 'Bearer sk-x', prefix => 'doc:');
    like($key, qr/^doc:v1:[0-9a-f]{64}$/, 'prefix, v1:, hex SHA-256');

    my $keys;
    for (1 .. 50) {
        $keys = redis_cmd('KEYS', '*');
        last if @$keys;
        sleep 0.02;
    }

    is_deeply($keys, [$key], 'the one key is the documented one');

    my $v = JSON::PP->new->decode(redis_cmd('GET', $key));
    is_deeply([sort keys %$v], [qw(completion model provider stored)],
              'completion, model, provider, stored');
    is($v->{provider}, 'ok', 'provider');
    is($v->{model}, 'm-ok', 'model');
    is($v->{completion}{choices}[0]{message}{content}, 'hello', 'completion');
    cmp_ok($v->{stored}, '>=', $t0 - 1000, 'stored: ms since the epoch');
    cmp_ok($v->{stored}, '<=', int(time * 1000) + 1000, 'stored: not later');
    unlike(redis_cmd('GET', $key), qr/sk-x/, 'no credential in the entry');

    my $pttl = redis_cmd('PTTL', $key);
    cmp_ok($pttl, '>', 70 * 60 * 1000 - 60000, 'Redis TTL is ttl + stale');
    cmp_ok($pttl, '<=', 70 * 60 * 1000, 'and not more');

    no_crash($n, 'key');
    $n->stop;
};


subtest 'a client that goes away while its lookup is pending' => sub {
    my $port = redis_start();

    # the reply comes after the client has gone

    my $n = node(redis => $port, cache => 'timeout=5s');

    my $r = $n->request;
    is(cache_of($r), 'MISS', 'MISS');

    my $sleeper = redis_send($port, 'DEBUG', 'SLEEP', 1.5);
    sleep 0.1;

    for (1 .. 3) {
        $n->request(close_after => 0.2);
    }

    close $sleeper;
    sleep 0.1 until redis_up($port);
    sleep 0.2;

    $r = $n->request;
    is("$r->{status} " . cache_of($r), '200 HIT', 'the next request is a HIT');

    like($n->error_log, qr/client prematurely closed connection/,
         'the client going away was noticed');

    # the lookup times out, and the connection is closed, after the client
    # has gone

    my $m = node(redis => $port, cache => 'timeout=' . 300 * $slow . 'ms');

    $sleeper = redis_send($port, 'DEBUG', 'SLEEP', 1);
    sleep 0.1;

    for (1 .. 3) {
        $m->request(close_after => 0.05);
    }

    sleep 0.5;
    close $sleeper;
    sleep 0.1 until redis_up($port);

    $r = until_cache_works($m, 5 * $slow);
    is("$r->{status} " . cache_of($r), '200 HIT', 'then a HIT');

    no_crash($n, 'late reply');
    no_crash($m, 'timed out');
    $n->stop;
    $m->stop;
    redis_stop($port);
};


subtest 'a slow large SET does not hold up the lookups of other requests, '
      . 'and is not cut short by their timeout' => sub {
    # every SET of 64 KB or more takes 1.5 s, as on a slow link; a lookup
    # must never wait behind one (timeout= is 300 ms)
    my $delay = 1.5 * $slow;
    my $port = slow_set_redis(delay => $delay, min => 65536);

    # a 200 KB answer, served from a file (too long for a config string)
    # in the full shape the real API sends, so that it is passed on as is
    my $big = $ok;
    $big =~ s/"content":"hello"/'"content":"' . ('x' x 200_000) . '","refusal":null'/e;
    $big =~ s/"finish_reason"/"logprobs":null,"finish_reason"/;

    my $file = File::Temp->new(SUFFIX => '.json');
    print $file $big;
    close $file;
    chmod 0644, "$file";

    my $timeout = 300 * $slow;
    my $n = LLMNode->new(http => <<"END");
    llm_provider big uri=/_llm/big;

    server {
        listen 127.0.0.1:\@FAKE\@;
        default_type application/json;
        location = /big.json { alias $file; }
    }

    server {
        listen 127.0.0.1:\@PORT\@;

        location /chat {
            llm_fallback_chain big;
            llm_cache redis=127.0.0.1:$port timeout=${timeout}ms;
        }

        location = /_llm/big {
            internal;
            proxy_method GET;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_pass http://127.0.0.1:\@FAKE\@/big.json;
        }
    }
END

    my $hi = '{"messages":[{"role":"user","content":"hi"}]}';
    my $r = $n->request(body => $hi);
    is(cache_of($r), 'MISS', 'MISS: the 200 KB answer is being stored, slowly');
    is(length($r->{body}), length($big), "the client got it whole")
        or diag("$r->{status} " . substr($r->{body}, 0, 300));

    my $t0 = time;
    my @during;

    for my $i (1 .. 3) {
        $r = $n->request(body => qq({"messages":[{"role":"user",)
                                 . qq("content":"other $i"}]}));
        push @during, cache_of($r);
    }

    is_deeply(\@during, [qw(MISS MISS MISS)],
              'lookups made while the large SETs are written are answered: '
              . 'MISS, never ERROR');
    cmp_ok(time - $t0, '<', $delay, 'and none of them waited for a SET');

    # the four SETs finish one after another on their own connection

    my $sets = 0;
    for (1 .. 100) {
        $sets = eval { LLMRedis::redis_cmd_at($port, 'SETS') } // 0;
        last if $sets >= 4;
        sleep 0.1 * $slow;
    }

    is($sets, 4, 'every SET was done: none was cut short by a watchdog');

    $r = $n->request(body => $hi);
    is(cache_of($r), 'HIT', 'the first answer is a HIT');

    unlike($n->error_log, qr/timed out/, 'no timeout logged');

    no_crash($n, 'slow SET');
    $n->stop;
};


done_testing();
