# Secrets never leak: the configured API keys (api_key= literal,
# api_key_file=, api_key_env=, a key from a variable, an Anthropic and a
# Gemini key), the client's Authorization and the Redis password appear
# in no response header or body, in no error.log line at "info", in no
# Redis key or value and in no llm_status output, after successful,
# refused (401), failed (500), timed out and fallback requests, including
# provider errors that quote the key they were sent (those are relayed
# with the key replaced by "[redacted]").
#
# Also: the api_key_file permission warning.
#
# Every response body is checked by add_response_body_check(), every
# block's headers by --- raw_response_headers_unlike and its log by
# --- no_error_log (all set by the block preprocessor); the Redis entries
# are read after the last block.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }

use File::Temp ();

our (%Secret, $KeyDir);

BEGIN {
    %Secret = (
        literal  => 'sk-literal-7f3a9c1e5b',
        file     => 'sk-file-4d8e2a6c0f',
        env      => 'sk-env-9b1f7d3e5a',
        variable => 'sk-var-2c6e0a8f4d',
        anthropic => 'sk-ant-6d2f8b4a0c',
        gemini   => 'AIza-gem-1e5b9d3f7a',
        client   => 'sk-client-secret-5e9a1c7b3f',
        redis    => 'redis-pass-8a4c2e6f0b',
    );

    $ENV{LLM_TEST_SECRET_ENV} = $Secret{env};

    # key files with the modes the permission blocks need
    $KeyDir = File::Temp::tempdir(CLEANUP => 1);
    $ENV{TEST_NGINX_KEY_DIR} = $KeyDir;

    my %files = ('secret.key' => [0600, "$Secret{file}\n"],
                 map { ("m$_.key" => [oct($_), "sk-perm-$_\n"]) }
                     qw(0600 0640 0644 0604 0666 0602 0660));

    for my $name (keys %files) {
        my ($mode, $text) = @{ $files{$name} };
        open my $fh, '>', "$KeyDir/$name" or die "$KeyDir/$name: $!";
        print $fh $text;
        close $fh;
        chmod $mode, "$KeyDir/$name" or die "chmod $KeyDir/$name: $!";
    }
}

use Test::Nginx::Socket 'no_plan';
use LLMFake;
use LLMHostile;
use LLMRedis;

BEGIN {
    $ENV{TEST_NGINX_REDIS_AUTH_PORT} = $LLMRedis::Available
        ? LLMRedis::redis_start(args => ['--requirepass', $Secret{redis}])
        : 1;
}

# any secret, or its distinctive tail (a partly masked key)
our $Leak = do {
    my @all = map { (quotemeta, substr($_, -10)) } values %Secret;
    my $re = join '|', @all;
    qr/$re/;
};

# a different body for every request, so that the cache never answers
# in place of a provider
my $n = 0;

sub chat {
    my ($query, $uri) = @_;
    $n++;
    return "POST " . ($uri // '/chat') . "?$query\n"
           . qq({"messages":[{"role":"user","content":"question $n"}]});
}

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;

    return if $dry_run;

    Test::More::unlike($body // '', $Leak,
                       $block->name . " - no secret in response body $req_idx");
});

add_block_preprocessor(sub {
    my $block = shift;
    my $s = \%Secret;

    my $http = LLMFake::fake_providers() . <<"END";
    map \$http_x_tenant \$tenant_key {
        default  $s->{variable};
    }

    llm_circuit_breaker zone=llm_test:64k failures=100;

    llm_provider literal  uri=/_llm/pick api_key=$s->{literal};
    llm_provider file     uri=/_llm/pick
                          api_key_file=\$TEST_NGINX_KEY_DIR/secret.key;
    llm_provider env      uri=/_llm/pick api_key_env=LLM_TEST_SECRET_ENV;
    llm_provider variable uri=/_llm/pick api_key=\$tenant_key;
    llm_provider claude   uri=/_llm/pick format=anthropic model=claude-x
                          api_key=$s->{anthropic};
    llm_provider gem      uri=/_llm/pick format=gemini model=gemini-x
                          api_key=$s->{gemini};
    llm_provider ok       uri=/_llm/ok;
END

    $http .= <<'END';

    # what the client's "f" argument names: an answer, a hang, or an
    # error that quotes the credential received, in each format
    # (a subrequest has no arguments of its own: $request_uri is the
    # client's)
    map $request_uri $llm_test_pick {
        default                 ok;
        "~[?&]f=(?<f>[a-z0-9]+)"  $f;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_3;
        default_type application/json;

        location = /ok {
            return 200 '{"id":"chatcmpl-s","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}]}';
        }

        location = /claudeok {
            return 200 '{"id":"msg_s","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"fine"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}';
        }

        location = /gemok {
            return 200 '{"candidates":[{"content":{"role":"model","parts":[{"text":"fine"}]},"finishReason":"STOP"}]}';
        }

        location = /leak401 {
            return 401 '{"error":{"message":"Incorrect API key provided: $http_authorization. You can find your API key at https://platform.example/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}';
        }

        location = /leak500 {
            return 500 '{"error":{"message":"internal error","type":"server_error","param":null,"code":null,"debug":{"headers":["Authorization: $http_authorization"],"$http_authorization":1}}}';
        }

        location = /claude401 {
            return 401 '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: $http_x_api_key"}}';
        }

        location = /hang {
            proxy_pass http://127.0.0.1:$TEST_NGINX_HANG_PORT;
        }

        location = /gem400 {
            return 400 '{"error":{"code":400,"message":"API key not valid: $http_x_goog_api_key","status":"INVALID_ARGUMENT"}}';
        }
    }
END

    $block->set_value("http_config", $http . ($block->http_config // ''));

    my $cache = $LLMRedis::Available
        ? "llm_cache redis=127.0.0.1:\$TEST_NGINX_REDIS_AUTH_PORT"
          . " password=$s->{redis} timeout=1s;" : '';

    $block->set_value("config", LLMFake::llm_locations() . <<"END"
    llm_attempt_timeout 500ms;
    $cache

    # the chain from ?chain=a,b
    location = /chat { llm_fallback_chain \$arg_chain; }

    location = /chat-401 {
        llm_fallback_on error timeout invalid_response http_401 http_5xx;
        llm_fallback_chain \$arg_chain;
    }

    location = /chat-off {
        llm_fallback_on off;
        llm_fallback_chain \$arg_chain;
    }

    location = /_llm/pick {
        internal;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_RAND_PORT_3/\$llm_test_pick;
    }

    location = /status { llm_status; }
END
        . ($block->config // ''));

    if (!defined $block->more_headers) {
        $block->set_value("more_headers", "Content-Type: application/json\n"
                          . "Authorization: Bearer $s->{client}");
    }

    # headers of every response, and the log
    my $reqs = $block->request;
    my $count = ref $reqs ? @$reqs : 1;

    $block->set_value("raw_response_headers_unlike",
                      $count > 1 ? [($Leak) x $count] : $Leak);

    my $no = $block->no_error_log;
    $block->set_value("no_error_log", [(ref $no ? @$no : ()), $Leak,
                                       '[debug]']);

    LLMHostile::survives($block);
});

log_level('info');
no_shuffle();
run_tests();

# what the blocks left in Redis: every key and value
SKIP: {
    Test::More::skip('redis-server is not installed', 3)
        unless $LLMRedis::Available;

    my $port = $ENV{TEST_NGINX_REDIS_AUTH_PORT};
    my $keys = LLMRedis::redis_cmd_at($port, 'AUTH', $Secret{redis},
                                      'KEYS', '*');
    my $dump = '';

    for my $k (@$keys) {
        $dump .= "$k\n" . (LLMRedis::redis_cmd_at($port, 'AUTH',
                               $Secret{redis}, 'GET', $k) // '') . "\n";
    }

    Test::More::cmp_ok(scalar @$keys, '>=', 16,
                       'redis: the successful answers were stored');
    Test::More::like($dump, qr/"content":"fine"/,
                     'redis: the entries hold the answers');
    Test::More::unlike($dump, $Leak, 'redis: no secret in any key or value');
}

__DATA__

=== TEST 1: successful answers, one per key source and format
--- request eval
[map { main::chat($_) } ('chain=literal', 'chain=file', 'chain=env',
     'chain=variable', 'chain=claude&f=claudeok', 'chain=gem&f=gemok',
     'chain=ok')]
--- error_code eval
[(200) x 7]
--- response_body_like eval
[(qr/"content":"fine"/) x 6, qr/hello from ok/]



=== TEST 2: refused keys: the provider's 401 quotes the key it got, the client gets it with the key redacted
--- request eval
[(map { main::chat("chain=$_&f=leak401") } qw(literal file env variable)),
 main::chat('chain=claude&f=claude401'), main::chat('chain=gem&f=gem400')]
--- error_code eval
[(401) x 5, 400]
--- response_body_like eval
[(qr/^\{"error":\{"message":"Incorrect API key provided: Bearer \[redacted\]\. You can find your API key at https:\/\/platform\.example\/account\/api-keys\.","type":"invalid_request_error","param":null,"code":"invalid_api_key"\}\}$/) x 4,
 qr/^\{"error":\{"message":"invalid x-api-key: \[redacted\]","type":"authentication_error","param":null,"code":null\}\}$/,
 qr/^\{"error":\{"message":"API key not valid: \[redacted\]",/]
--- error_log
attempt failed: http_40



=== TEST 3: a 500 that quotes the key in nested strings and in an object key, relayed as it is (llm_fallback_on off)
--- request eval
[map { main::chat("chain=$_&f=leak500", '/chat-off') } qw(literal file env variable)]
--- error_code eval
[(500) x 4]
--- response_body_like eval
[(qr/^\{"error":\{"message":"internal error","type":"server_error","param":null,"code":null,"debug":\{"headers":\["Authorization: Bearer \[redacted\]"\],"Bearer \[redacted\]":1\}\}\}$/) x 4]
--- error_log
attempt failed: http_500



=== TEST 4: failures that fall back: the error bodies go nowhere, the next provider answers
--- request eval
[main::chat('chain=literal,ok&f=leak500'), main::chat('chain=file,ok&f=leak500'),
 main::chat('chain=env,ok&f=leak401', '/chat-401'),
 main::chat('chain=variable,claude,ok&f=leak401', '/chat-401')]
--- error_code eval
[(200) x 4]
--- response_headers eval
["X-LLM-Fallback: literal:http_500", "X-LLM-Fallback: file:http_500",
 "X-LLM-Fallback: env:http_401",
 "X-LLM-Fallback: variable:http_401,claude:http_401"]
--- response_body_like eval
[(qr/hello from ok/) x 4]
--- error_log
attempt failed: http_



=== TEST 5: timeouts: the chain ends in a 502 that lists the attempts, or on the provider that answers
--- request eval
[main::chat('chain=literal,env&f=hang'), main::chat('chain=variable,gem,ok&f=hang')]
--- error_code eval
[502, 200]
--- response_headers eval
["x-should-retry: false", "X-LLM-Fallback: variable:timeout,gem:timeout"]
--- response_body_like eval
[qr/"attempts":\[\{"provider":"literal","status":504,"reason":"timeout"\},\{"provider":"env","status":504,"reason":"timeout"\}\]/,
 qr/hello from ok/]
--- error_log
attempt failed: timeout, status 504



=== TEST 6: llm_status, JSON and Prometheus, after answers and failures with every key
--- request eval
[(map { main::chat("chain=$_") } qw(literal file env variable)),
 main::chat('chain=claude&f=claude401'), main::chat('chain=gem,ok&f=gem400'),
 "GET /status", "GET /status?format=prometheus"]
--- error_code eval
[(200) x 4, 401, 400, 200, 200]
--- response_body_like eval
[(qr/"content":"fine"/) x 4, qr/\[redacted\]/, qr/\[redacted\]/,
 qr/^\{.*"literal":\{"state":"closed".*"file":.*"env":.*"variable":.*"claude":.*"gem":/s,
 qr/^# HELP .*llm_provider_attempts_total\{provider="literal",outcome="success"\} 1\n.*llm_provider_attempts_total\{provider="gem",outcome="http_400"\} 1\n/s]



=== TEST 7: a world-readable api_key_file is warned about, with the fix; the key is used
--- http_config
    llm_provider perm uri=/_llm/echo api_key_file=$TEST_NGINX_KEY_DIR/m0644.key;
--- config
    location = /perm { llm_fallback_chain perm; }
--- request eval
main::chat('', '/perm')
--- error_code: 200
--- response_body_like: auth=\[Bearer sk-perm-0644\]
--- error_log eval
qr{\[warn\] .*"api_key_file" "\Q$ENV{TEST_NGINX_KEY_DIR}\E/m0644\.key" is readable by any user \(mode 0644\), restrict it with "chmod 600 \Q$ENV{TEST_NGINX_KEY_DIR}\E/m0644\.key" \(or 640 to keep its group's access\) in }



=== TEST 8: readable by others but not by the group: chmod 600 only
--- http_config
    llm_provider perm uri=/_llm/echo api_key_file=$TEST_NGINX_KEY_DIR/m0604.key;
--- config
    location = /perm { llm_fallback_chain perm; }
--- request eval
main::chat('', '/perm')
--- error_code: 200
--- response_body_like: auth=\[Bearer sk-perm-0604\]
--- error_log eval
qr{\[warn\] .*"api_key_file" "\Q$ENV{TEST_NGINX_KEY_DIR}\E/m0604\.key" is readable by any user \(mode 0604\), restrict it with "chmod 600 \Q$ENV{TEST_NGINX_KEY_DIR}\E/m0604\.key" in }



=== TEST 9: readable and writable by any user, or only writable
--- http_config
    llm_provider perm uri=/_llm/echo api_key_file=$TEST_NGINX_KEY_DIR/m0666.key;
    llm_provider perm2 uri=/_llm/echo api_key_file=$TEST_NGINX_KEY_DIR/m0602.key;
--- config
    location = /perm { llm_fallback_chain perm; }
--- request eval
main::chat('', '/perm')
--- error_code: 200
--- response_body_like: auth=\[Bearer sk-perm-0666\]
--- error_log eval
[qr{\[warn\] .*"api_key_file" "\Q$ENV{TEST_NGINX_KEY_DIR}\E/m0666\.key" is readable and writable by any user \(mode 0666\), restrict it with "chmod 600 \Q$ENV{TEST_NGINX_KEY_DIR}\E/m0666\.key" \(or 640 to keep its group's access\) in },
 qr{\[warn\] .*"api_key_file" "\Q$ENV{TEST_NGINX_KEY_DIR}\E/m0602\.key" is writable by any user \(mode 0602\), restrict it with "chmod 600 \Q$ENV{TEST_NGINX_KEY_DIR}\E/m0602\.key" in }]



=== TEST 10: 0600, 0640 and 0660 are not warned about
--- http_config
    llm_provider perm uri=/_llm/echo api_key_file=$TEST_NGINX_KEY_DIR/m0600.key;
    llm_provider perm2 uri=/_llm/echo api_key_file=$TEST_NGINX_KEY_DIR/m0640.key;
    llm_provider perm3 uri=/_llm/echo api_key_file=$TEST_NGINX_KEY_DIR/m0660.key;
--- config
    location = /perm { llm_fallback_chain perm; }
--- request eval
main::chat('', '/perm')
--- error_code: 200
--- response_body_like: auth=\[Bearer sk-perm-0600\]
--- no_error_log
api_key_file
[warn]



=== TEST 11: keys shorter than 8 bytes are not redacted (no real key is that short, and they are likely in any text); 8 bytes are
--- http_config
    llm_provider short uri=/_llm/pick api_key=abc1234;
    llm_provider eight uri=/_llm/pick api_key=abcd1234;
--- request eval
[main::chat('chain=short&f=leak401'), main::chat('chain=eight&f=leak401')]
--- error_code eval
[401, 401]
--- response_body_like eval
[qr/"Incorrect API key provided: Bearer abc1234\. /, qr/"Incorrect API key provided: Bearer \[redacted\]\. /]
--- error_log
attempt failed: http_401
