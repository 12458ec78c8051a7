# The Redis response cache: keys, HIT/MISS/STALE/BYPASS/ERROR, TTL,
# stale-if-error, Cache-Control, llm_cache_bypass, Redis unavailable or
# hung, unix sockets, AUTH and SELECT, configuration errors.
#
# A real redis-server is started for this file by LLMRedis (and flushed
# before every block). Faults that need Redis killed, restarted or put to
# sleep mid-run, two nginx instances or a client that goes away are in
# t/021-cache-redis.t.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket;
use LLMFake;
use LLMRedis;
use LLMSchema;
use Time::HiRes ();

if (!$LLMRedis::Available) {
    plan(skip_all => 'redis-server is not installed (Debian: redis-server)');
}

plan('no_plan');
no_long_string();

our $Hi = '{"messages":[{"role":"user","content":"hi"}]}';
our $Ok = LLMFake::completion('hello from ok');

BEGIN {
    $ENV{TEST_NGINX_REDIS_AUTH_PORT} = $LLMRedis::Available
        ? LLMRedis::redis_start(args => ['--requirepass', 'secret']) : 1;
}

sub seed {
    my (%o) = @_;
    my $now = int(Time::HiRes::time() * 1000);
    my $entry = '{"completion":' . LLMFake::completion('from another node',
                                                       model => 'm-old')
              . ',"provider":"elsewhere","model":"m-old","stored":'
              . ($now - $o{age}) . '}';

    LLMRedis::redis_cmd('SET', $o{key}, $entry, 'PX', 60000);
}

sub chat {
    my ($body, $uri) = @_;
    return 'POST ' . ($uri // '/chat') . "\n" . ($body // $Hi);
}

# every body the module answers with: OpenAI's schemas (t/schema/)
LLMSchema::check_bodies();

add_block_preprocessor(sub {
    my $block = shift;

    LLMRedis::redis_cmd('FLUSHALL');

    $block->set_value("http_config", LLMFake::fake_providers() . q{
    llm_provider ok uri=/_llm/ok;
    llm_provider ok2 uri=/_llm/ok2;
    llm_provider p503 uri=/_llm/503;
    llm_provider p400 uri=/_llm/400;
    llm_provider garbage uri=/_llm/garbage;
    llm_provider doc uri=/_llm/doc;
} . ($block->http_config // ''));

    $block->set_value("config", LLMFake::llm_locations() . q{
        location = /sleep {
            proxy_pass http://127.0.0.1:$TEST_NGINX_HANG_PORT/;
            proxy_read_timeout 1600ms;
        }

        location /dav/ {
            alias html/;
            dav_methods DELETE;
        }

        location = /_llm/doc {
            internal;
            proxy_method GET;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/files/answer.json;
        }
} . ($block->config // ''));

    if (($ENV{TEST_NGINX_USE_VALGRIND} || $ENV{ASAN_OPTIONS})
        && defined $block->config)
    {
        # valgrind and ASan are slower than the default timeout=100ms
        (my $config = $block->config) =~
            s/(llm_cache redis=[^;]*);/
              my $d = $1; $d =~ m{timeout=} ? "$d;" : "$d timeout=3s;"/ge;
        $block->set_value("config", $config);
    }

    if (!defined $block->more_headers) {
        $block->set_value("more_headers", "Content-Type: application/json");
    }
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: MISS then HIT: the HIT makes no attempt and names the provider
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
        add_header X-Vars "$llm_cache_status|$llm_provider|$llm_attempts|$llm_model|$llm_prompt_tokens";
    }
--- request eval
[main::chat(), main::chat()]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Cache: MISS\nX-LLM-Provider: ok\nX-LLM-Attempts: 1\nX-Vars: MISS|ok|1|fake-model|5\nContent-Type: application/json",
 "X-LLM-Cache: HIT\nX-LLM-Provider: ok\nX-LLM-Attempts: 0\nX-Vars: HIT|ok|0|fake-model|\nContent-Type: application/json\n!X-LLM-Fallback"]
--- response_body eval
[$main::Ok, $main::Ok]
--- no_error_log
[error]
[warn]



=== TEST 2: the same request with keys reordered and other white space hits
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat('{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"stop":["a","b"]}'),
 main::chat(qq{{ "stop" : [ "a", "b" ],\n  "temperature" : 0.5 ,\n  "messages" : [ { "content" : "hi", "role" : "user" } ],\n  "model" : "m" }\n})]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: HIT\nX-LLM-Attempts: 0"]
--- no_error_log
[error]



=== TEST 3: a different Authorization misses, the same one hits
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(), main::chat(), main::chat(), main::chat()]
--- more_headers eval
["Content-Type: application/json\nAuthorization: Bearer sk-alice",
 "Content-Type: application/json\nAuthorization: Bearer sk-bob",
 "Content-Type: application/json",
 "Content-Type: application/json\nAuthorization: Bearer sk-alice"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: MISS", "X-LLM-Cache: MISS",
 "X-LLM-Cache: HIT"]
--- no_error_log
[error]



=== TEST 4: a different chain misses
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
    location /chat2 {
        llm_fallback_chain ok ok2;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(), main::chat(undef, '/chat2'), main::chat(undef, '/chat2')]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS\nX-LLM-Provider: ok",
 "X-LLM-Cache: MISS\nX-LLM-Provider: ok",
 "X-LLM-Cache: HIT\nX-LLM-Provider: ok"]
--- no_error_log
[error]



=== TEST 5: a different temperature misses
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat('{"messages":[{"role":"user","content":"hi"}],"temperature":0.2}'),
 main::chat('{"messages":[{"role":"user","content":"hi"}],"temperature":0.3}'),
 main::chat('{"messages":[{"role":"user","content":"hi"}]}'),
 main::chat('{"messages":[{"role":"user","content":"hi"}],"temperature":0.2}')]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: MISS", "X-LLM-Cache: MISS",
 "X-LLM-Cache: HIT"]
--- no_error_log
[error]



=== TEST 6: "stream" does not change the key: a stream request gets a HIT replayed as SSE, and an answer to a stream request is a HIT for others
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
    location /chat2 {
        llm_fallback_chain ok2;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(),
 main::chat('{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}'),
 main::chat('{"stream":true,"messages":[{"role":"user","content":"hi"}]}', '/chat2'),
 main::chat(undef, '/chat2')]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS\nContent-Type: application/json",
 "X-LLM-Cache: HIT\nX-LLM-Attempts: 0\nX-LLM-Provider: ok\nContent-Type: text/event-stream",
 "X-LLM-Cache: MISS\nContent-Type: text/event-stream",
 "X-LLM-Cache: HIT\nX-LLM-Provider: ok2\nContent-Type: application/json"]
--- response_body_like eval
["hello from ok",
 qr/^data: \{"id":"chatcmpl-fake","object":"chat.completion.chunk",[^\n]*"delta":\{"role":"assistant","content":"hello from ok","refusal":null\}[^\n]*\n\ndata: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: [^\n]*"usage":\{"prompt_tokens":5,[^\n]*\n\ndata: \[DONE\]\n\n$/,
 qr/"content":"hello from ok2".*data: \[DONE\]\n\n$/s,
 qr/^\{"id":"chatcmpl-fake","object":"chat.completion",.*"content":"hello from ok2"/]
--- no_error_log
[error]



=== TEST 7: llm_cache_key scopes entries to a tenant instead of the credential
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
        llm_cache_key "tenant=$http_x_tenant";
    }
--- request eval
[main::chat(), main::chat(), main::chat()]
--- more_headers eval
["Content-Type: application/json\nX-Tenant: acme\nAuthorization: Bearer sk-1",
 "Content-Type: application/json\nX-Tenant: acme\nAuthorization: Bearer sk-2",
 "Content-Type: application/json\nX-Tenant: globex\nAuthorization: Bearer sk-1"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: HIT", "X-LLM-Cache: MISS"]
--- no_error_log
[error]



=== TEST 8: an entry expires after ttl
--- no_schema_check: 2
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT ttl=1500ms;
    }
--- request eval
[main::chat(), main::chat(), "GET /sleep", main::chat(), main::chat()]
--- error_code eval
[200, 200, 504, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: HIT", "", "X-LLM-Cache: MISS\nX-LLM-Attempts: 1",
 "X-LLM-Cache: HIT"]
--- timeout: 5



=== TEST 9: an entry past ttl but within stale is not served while a provider answers
--- no_schema_check: 1
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT ttl=1500ms stale=1h;
    }
--- request eval
[main::chat(), "GET /sleep", main::chat(), main::chat()]
--- error_code eval
[200, 504, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "", "X-LLM-Cache: MISS\nX-LLM-Attempts: 1",
 "X-LLM-Cache: HIT"]
--- timeout: 5
--- no_error_log
serving a stale answer



=== TEST 10: stale-if-error: every provider fails, the entry past ttl is served as STALE (also to a stream request)
--- no_schema_check: 3
--- config
    location /chat {
        llm_fallback_chain doc;
        llm_fallback_on error timeout invalid_response http_404 http_5xx;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT ttl=1500ms stale=1h;
        add_header X-Status "$llm_cache_status" always;
    }
--- user_files eval
">>> answer.json\n" . LLMFake::completion('hello from doc')
--- request eval
[main::chat(), "DELETE /dav/answer.json", main::chat(), "GET /sleep",
 main::chat(),
 main::chat('{"messages":[{"role":"user","content":"hi"}],"stream":true}')]
--- error_code eval
[200, 204, 200, 504, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS\nX-LLM-Provider: doc",
 "",
 "X-LLM-Cache: HIT\nX-LLM-Attempts: 0",
 "",
 "X-LLM-Cache: STALE\nX-Status: STALE\nX-LLM-Provider: doc\nX-LLM-Attempts: 1\nContent-Type: application/json",
 "X-LLM-Cache: STALE\nContent-Type: text/event-stream"]
--- response_body_like eval
["hello from doc", "", "hello from doc", "", "hello from doc",
 qr/"content":"hello from doc".*data: \[DONE\]/s]
--- timeout: 5




=== TEST 11: without stale= an expired entry is not served when providers fail
--- no_schema_check: 2
--- config
    location /chat {
        llm_fallback_chain doc;
        llm_fallback_on error timeout invalid_response http_404 http_5xx;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT ttl=1500ms;
    }
--- user_files eval
">>> answer.json\n" . LLMFake::completion('hello from doc')
--- request eval
[main::chat(), "DELETE /dav/answer.json", "GET /sleep", main::chat()]
--- error_code eval
[200, 204, 504, 502]
--- response_headers eval
["X-LLM-Cache: MISS", "", "", "X-LLM-Cache: MISS\nX-LLM-Attempts: 1"]
--- response_body_like eval
["hello from doc", "", "", "llm_providers_exhausted"]
--- timeout: 5
--- no_error_log
serving a stale answer



=== TEST 12: a provider error that is not a fallback condition is passed on, not answered from a stale entry
--- no_schema_check: 2
--- config
    location /chat {
        llm_fallback_chain doc;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT ttl=1500ms stale=1h;
    }
--- user_files eval
">>> answer.json\n" . LLMFake::completion('hello from doc')
--- request eval
[main::chat(), "DELETE /dav/answer.json", "GET /sleep", main::chat()]
--- error_code eval
[200, 204, 504, 404]
--- response_headers eval
["X-LLM-Cache: MISS", "", "", "X-LLM-Cache: MISS"]
--- timeout: 5
--- no_error_log
serving a stale answer



=== TEST 13: an entry written by another node, under the documented key, is a HIT without any attempt
--- init
main::seed(key => LLMRedis::cache_key(request => $main::Hi, chain => ['p503']),
           age => 0);
--- config
    location /chat {
        llm_fallback_chain p503;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
        add_header X-Model "$llm_model";
    }
--- request eval
main::chat()
--- error_code: 200
--- response_headers
X-LLM-Cache: HIT
X-LLM-Provider: elsewhere
X-LLM-Attempts: 0
X-Model: m-old
--- response_body_like: "content":"from another node"
--- no_error_log
[error]
[warn]



=== TEST 14: stale-if-error with an entry past ttl: logged, reported with the reasons
--- init
main::seed(key => LLMRedis::cache_key(request => $main::Hi, chain => ['p503', 'garbage'],
                                      scope => 'Bearer sk-1'),
           age => 5000);
--- config
    location /chat {
        llm_fallback_chain p503 garbage;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT ttl=1s stale=1h;
    }
--- request eval
main::chat()
--- more_headers
Content-Type: application/json
Authorization: Bearer sk-1
--- error_code: 200
--- response_headers
X-LLM-Cache: STALE
X-LLM-Provider: elsewhere
X-LLM-Attempts: 2
X-LLM-Fallback: p503:http_503,garbage:invalid_response
--- response_body_like: "content":"from another node"
--- error_log eval
qr/\[warn\] .*llm cache: every provider failed \(p503:http_503,garbage:invalid_response\), serving a stale answer stored [5-9]\d{3,} ms ago/
--- no_error_log
[error]



=== TEST 15: stale-if-error when every provider's circuit is open
--- init
main::seed(key => LLMRedis::cache_key(request => $main::Hi, chain => ['p503']),
           age => 5000);
--- http_config
    llm_circuit_breaker zone=llm_cb:1m failures=1 cooldown=1h max_cooldown=1h;
--- config
    location /chat {
        llm_fallback_chain p503;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT ttl=1s stale=1h;
    }
--- request eval
[main::chat('{"messages":[{"role":"user","content":"other"}]}'), main::chat()]
--- error_code eval
[502, 200]
--- response_headers eval
["X-LLM-Cache: MISS",
 "X-LLM-Cache: STALE\nX-LLM-Provider: elsewhere\nX-LLM-Attempts: 0\nX-LLM-Fallback: p503:open"]
--- response_body_like eval
["llm_providers_exhausted", '"content":"from another node"']



=== TEST 16: stale-if-error when llm_fallback_timeout passes
--- init
main::seed(key => LLMRedis::cache_key(request => $main::Hi, chain => ['hang']),
           age => 5000);
--- http_config
    llm_provider hang uri=/_llm/hang;
--- config
    location /chat {
        llm_fallback_chain hang;
        llm_fallback_timeout 300ms;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT ttl=1s stale=1h;
    }
--- request eval
main::chat()
--- error_code: 200
--- response_headers
X-LLM-Cache: STALE
X-LLM-Provider: elsewhere
X-LLM-Attempts: 1
--- response_body_like: "content":"from another node"
--- error_log
serving a stale answer



=== TEST 17: an entry past ttl + stale is not served (clock skew between nodes)
--- init
main::seed(key => LLMRedis::cache_key(request => $main::Hi, chain => ['p503']),
           age => 5000);
--- config
    location /chat {
        llm_fallback_chain p503;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT ttl=1s stale=2s;
    }
--- request eval
main::chat()
--- error_code: 502
--- response_headers
X-LLM-Cache: MISS
--- no_error_log
serving a stale answer



=== TEST 18: an invalid entry is ignored (MISS) and replaced
--- init
LLMRedis::redis_cmd('SET', LLMRedis::cache_key(request => $main::Hi, chain => ['ok']),
                    'not json');
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(), main::chat()]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: HIT"]



=== TEST 19: an entry with escapes, white space and fields of a later version is read
--- init
my $now = int(Time::HiRes::time() * 1000);
LLMRedis::redis_cmd('SET', LLMRedis::cache_key(request => $main::Hi, chain => ['p503']),
    qq({ "v2" : [1, {"a": "}\\"]"}], "provider" : "else\\u0077here",\n)
    . qq( "model":"m\\"1", "stored" : $now , "completion" : )
    . LLMFake::completion('from another node') . ' }');
--- config
    location /chat {
        llm_fallback_chain p503;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
        add_header X-Model "$llm_model";
    }
--- request eval
[main::chat(), main::chat('{"messages":[{"role":"user","content":"hi"}],"stream":true}')]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Cache: HIT\nX-LLM-Provider: elsewhere\nX-Model: m\"1",
 "X-LLM-Cache: HIT\nContent-Type: text/event-stream"]
--- response_body_like eval
[qr/^\{"id":"chatcmpl-fake",.*"content":"from another node".*\}$/,
 qr/"content":"from another node".*data: \[DONE\]/s]
--- no_error_log
[error]
[warn]



=== TEST 20: entries that are not ours are ignored (MISS, logged) and replaced
--- init
my @bad = (
    '{"provider":"p","stored":1700000000000,"completion":{"a":1}',
    '{"provider":"p","stored":"1700000000000","completion":{"a":1}}',
    '{"provider":"p","stored":1700000000000,"completion":"text"}',
    '[1,2,3]',
    '{"provider":"p","stored":1700000000000,"completion":{"a":"\\',
    '{"stored":1700000000000,"completion":{"a":1}}',
    '',
);
for my $i (0 .. $#bad) {
    LLMRedis::redis_cmd('SET', LLMRedis::cache_key(
        request => qq({"messages":[{"role":"user","content":"$i"}]}),
        chain => ['ok']), $bad[$i]);
}
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[map({ main::chat(qq({"messages":[{"role":"user","content":"$_"}]})) } 0 .. 6),
 main::chat('{"messages":[{"role":"user","content":"3"}]}')]
--- error_code eval
[(200) x 8]
--- response_headers eval
[("X-LLM-Cache: MISS") x 7, "X-LLM-Cache: HIT"]
--- no_error_log
[error]



=== TEST 21: a stream request does not get a completion that is not JSON
--- init
my $now = int(Time::HiRes::time() * 1000);
LLMRedis::redis_cmd('SET', LLMRedis::cache_key(request => $main::Hi, chain => ['ok']),
    qq({"provider":"ok","model":"m","stored":$now,"completion":{"a":}}));
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
main::chat('{"messages":[{"role":"user","content":"hi"}],"stream":true}')
--- error_code: 200
--- response_headers
X-LLM-Cache: MISS
X-LLM-Attempts: 1
Content-Type: text/event-stream
--- response_body_like: "content":"hello from ok".*data: \[DONE\]
--- error_log
llm cache: ignored an invalid entry



=== TEST 22: llm_status counts each request once, with its final status
--- no_schema_check: 6
--- init
main::seed(key => LLMRedis::cache_key(request => '{"messages":[{"role":"user","content":"old"}]}',
                                      chain => ['p503']),
           age => 5000);
--- http_config
    llm_circuit_breaker zone=llm_cb:1m failures=100;
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
    location /chat2 {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:1;
    }
    location /chat3 {
        llm_fallback_chain p503;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT ttl=1s stale=1h;
    }
    location = /status { llm_status; }
--- request eval
[main::chat(), main::chat(), main::chat(), main::chat(undef, '/chat2'),
 main::chat('{"messages":[{"role":"user","content":"old"}]}', '/chat3'),
 main::chat('{"messages":[{"role":"user","content":"new"}]}', '/chat3'),
 "GET /status"]
--- more_headers eval
["Content-Type: application/json", "Content-Type: application/json",
 "Content-Type: application/json\nCache-Control: no-cache",
 "Content-Type: application/json", "Content-Type: application/json",
 "Content-Type: application/json", ""]
--- error_code eval
[200, 200, 200, 200, 200, 502, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: HIT", "X-LLM-Cache: BYPASS",
 "X-LLM-Cache: ERROR", "X-LLM-Cache: STALE", "X-LLM-Cache: MISS", ""]
--- response_body_like eval
["", "", "", "", "", "",
 qr/"cache":\{"hit":1,"miss":2,"stale":1,"bypass":1,"error":1\}/]



=== TEST 23: Cache-Control: no-cache skips the lookup and stores the answer
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(), main::chat(), main::chat(), main::chat()]
--- more_headers eval
["Content-Type: application/json\nCache-Control: no-cache",
 "Content-Type: application/json",
 "Content-Type: application/json\nCache-Control: max-age=0, No-Cache",
 "Content-Type: application/json"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-LLM-Cache: BYPASS\nX-LLM-Attempts: 1",
 "X-LLM-Cache: HIT\nX-LLM-Attempts: 0",
 "X-LLM-Cache: BYPASS\nX-LLM-Attempts: 1",
 "X-LLM-Cache: HIT"]
--- no_error_log
[error]



=== TEST 24: Cache-Control: no-store skips the lookup and the store
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(), main::chat(), main::chat(), main::chat()]
--- more_headers eval
["Content-Type: application/json\nCache-Control: no-store",
 "Content-Type: application/json",
 "Content-Type: application/json\nCache-Control: private,no-store",
 "Content-Type: application/json"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-LLM-Cache: BYPASS", "X-LLM-Cache: MISS", "X-LLM-Cache: BYPASS\nX-LLM-Attempts: 1",
 "X-LLM-Cache: HIT"]
--- no_error_log
[error]



=== TEST 25: llm_cache_bypass skips the lookup and still stores
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
        llm_cache_bypass $http_x_bypass $arg_nocache;
    }
--- request eval
[main::chat(), main::chat(), main::chat(), main::chat(undef, '/chat?nocache=yes')]
--- more_headers eval
["Content-Type: application/json\nX-Bypass: 1",
 "Content-Type: application/json\nX-Bypass: 0",
 "Content-Type: application/json",
 "Content-Type: application/json"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-LLM-Cache: BYPASS\nX-LLM-Attempts: 1", "X-LLM-Cache: HIT",
 "X-LLM-Cache: HIT", "X-LLM-Cache: BYPASS"]
--- no_error_log
[error]



=== TEST 26: error responses are never stored
--- config
    location /chat {
        llm_fallback_chain p503;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
    location /chat2 {
        llm_fallback_chain p400;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
    location /chat3 {
        llm_fallback_chain garbage;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(), main::chat(), main::chat(undef, '/chat2'),
 main::chat(undef, '/chat2'), main::chat(undef, '/chat3'),
 main::chat(undef, '/chat3')]
--- error_code eval
[502, 502, 400, 400, 502, 502]
--- response_headers eval
["X-LLM-Cache: MISS\nX-LLM-Attempts: 1", "X-LLM-Cache: MISS\nX-LLM-Attempts: 1",
 "X-LLM-Cache: MISS", "X-LLM-Cache: MISS",
 "X-LLM-Cache: MISS", "X-LLM-Cache: MISS"]



=== TEST 27: a fallback answer is stored and reported with its provider
--- config
    location /chat {
        llm_fallback_chain p503 ok2;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(), main::chat()]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Cache: MISS\nX-LLM-Provider: ok2\nX-LLM-Attempts: 2\nX-LLM-Fallback: p503:http_503",
 "X-LLM-Cache: HIT\nX-LLM-Provider: ok2\nX-LLM-Attempts: 0\n!X-LLM-Fallback"]
--- response_body_like eval
["hello from ok2", "hello from ok2"]



=== TEST 28: Redis refusing connections: the request is answered by the providers, status ERROR
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:1;
        add_header X-Status "$llm_cache_status";
    }
--- request eval
main::chat()
--- error_code: 200
--- response_headers
X-LLM-Cache: ERROR
X-Status: ERROR
X-LLM-Provider: ok
X-LLM-Attempts: 1
--- response_body_like: hello from ok
--- error_log
llm cache: connect() to redis 127.0.0.1:1 failed
--- no_error_log
[alert]
[crit]



=== TEST 29: Redis refusing connections: later requests (backing off or trying again) are answered too
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:1;
    }
--- request eval
[main::chat(), main::chat(), main::chat()]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Cache: ERROR", "X-LLM-Cache: ERROR", "X-LLM-Cache: ERROR"]
--- response_body_like eval
["hello from ok", "hello from ok", "hello from ok"]
--- no_error_log
[alert]
[crit]



=== TEST 30: a Redis that accepts but never answers costs a request at most timeout=
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_HANG_PORT timeout=300ms;
    }
--- request eval
main::chat()
--- error_code: 200
--- response_headers
X-LLM-Cache: ERROR
X-LLM-Provider: ok
--- timeout: 2
--- error_log eval
qr/llm cache: redis 127\.0\.0\.1:\d+ timed out/
--- no_error_log
[alert]
[crit]



=== TEST 31: a Redis that never answers: later requests too
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_HANG_PORT timeout=300ms;
    }
--- request eval
[main::chat(), main::chat(), main::chat()]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Cache: ERROR", "X-LLM-Cache: ERROR", "X-LLM-Cache: ERROR"]
--- timeout: 2
--- no_error_log
[alert]
[crit]



=== TEST 32: a unix socket
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=unix:$TEST_NGINX_REDIS_SOCKET;
    }
--- request eval
[main::chat(), main::chat()]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: HIT"]
--- no_error_log
[error]



=== TEST 33: AUTH and SELECT; two locations on one server and db share entries
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT password=secret db=3;
    }
    location /chat2 {
        llm_fallback_chain ok;
        llm_cache redis=localhost:$TEST_NGINX_REDIS_AUTH_PORT password=secret db=3 ttl=5m;
    }
--- request eval
[main::chat(), main::chat(), main::chat(undef, '/chat2')]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: HIT", "X-LLM-Cache: HIT"]
--- no_error_log
[error]



=== TEST 34: a wrong password: ERROR, the request is answered, the password is not logged
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT password=notthesecret;
    }
--- request eval
main::chat()
--- error_code: 200
--- response_headers
X-LLM-Cache: ERROR
X-LLM-Provider: ok
--- error_log
refused AUTH or SELECT
--- no_error_log
notthesecret
[alert]



=== TEST 35: llm_cache off in a location, and no X-LLM-Cache without a cache
--- config
    llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;

    location /chat {
        llm_fallback_chain ok;
        llm_cache off;
        add_header X-Status "[$llm_cache_status]";
    }
    location /chat2 {
        llm_fallback_chain ok;
    }
--- request eval
[main::chat(), main::chat(), main::chat(undef, '/chat2'), main::chat(undef, '/chat2')]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["!X-LLM-Cache\nX-Status: []\nX-LLM-Attempts: 1", "!X-LLM-Cache\nX-LLM-Attempts: 1",
 "X-LLM-Cache: MISS", "X-LLM-Cache: HIT"]
--- no_error_log
[error]



=== TEST 36: prefix= separates caches; llm_response_headers off keeps the variable
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=a:;
        llm_response_headers off;
        add_header X-Status "$llm_cache_status";
    }
    location /chat2 {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=b:;
    }
--- request eval
[main::chat(), main::chat(undef, '/chat2'), main::chat()]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["!X-LLM-Cache\nX-Status: MISS", "X-LLM-Cache: MISS", "!X-LLM-Cache\nX-Status: HIT\n!X-LLM-Provider"]
--- no_error_log
[error]



=== TEST 37: a request rejected before the lookup has no cache status
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request
POST /chat
{"messages":[]}
--- error_code: 400
--- response_headers
!X-LLM-Cache



=== TEST 38: llm_cache without redis=
--- config
    location /chat { llm_fallback_chain ok; llm_cache ttl=1h; }
--- must_die
--- error_log
"llm_cache" must have "redis=" parameter



=== TEST 39: llm_cache with a bad ttl
--- config
    location /chat { llm_fallback_chain ok; llm_cache redis=127.0.0.1:6379 ttl=soon; }
--- must_die
--- error_log
invalid parameter "ttl=soon" of "llm_cache"



=== TEST 40: llm_cache with ttl=0
--- config
    location /chat { llm_fallback_chain ok; llm_cache redis=127.0.0.1:6379 ttl=0; }
--- must_die
--- error_log
invalid parameter "ttl=0" of "llm_cache"



=== TEST 41: llm_cache with an unknown parameter
--- config
    location /chat { llm_fallback_chain ok; llm_cache redis=127.0.0.1:6379 size=1m; }
--- must_die
--- error_log
invalid parameter "size=1m" of "llm_cache"



=== TEST 42: llm_cache twice
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:6379;
        llm_cache off;
    }
--- must_die
--- error_log
"llm_cache" directive is duplicate



=== TEST 43: llm_cache with a bad db
--- config
    location /chat { llm_fallback_chain ok; llm_cache redis=127.0.0.1:6379 db=x; }
--- must_die
--- error_log
invalid parameter "db=x" of "llm_cache"



=== TEST 44: llm_cache with an invalid port
--- config
    location /chat2 { llm_fallback_chain ok; llm_cache redis=127.0.0.1:99999; }
--- must_die
--- error_log
invalid port in "redis=127.0.0.1:99999" of "llm_cache"



=== TEST 45: a bad password= is reported without its value
--- config
    location /chat2 { llm_fallback_chain ok; llm_cache redis=127.0.0.1:6379 password=; }
--- must_die
--- error_log
invalid parameter "password=" of "llm_cache"



=== TEST 46: a tampered entry whose provider name carries CR LF injects no header: MISS, a fresh answer, the entry replaced
--- init
my $now = int(Time::HiRes::time() * 1000);
LLMRedis::redis_cmd('SET', LLMRedis::cache_key(request => $main::Hi, chain => ['ok']),
    '{"provider":"ok\r\nX-Injected: 1","model":"m","stored":' . $now
    . ',"completion":' . LLMFake::completion('tampered') . '}');
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(), main::chat()]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Cache: MISS\nX-LLM-Provider: ok\n!X-Injected",
 "X-LLM-Cache: HIT\nX-LLM-Provider: ok\n!X-Injected"]
--- response_body_like eval
["hello from ok", "hello from ok"]



=== TEST 47: a tampered entry whose model carries CR LF does not reach $llm_model
--- init
my $now = int(Time::HiRes::time() * 1000);
LLMRedis::redis_cmd('SET', LLMRedis::cache_key(request => $main::Hi, chain => ['ok']),
    '{"provider":"ok","model":"m\u000d\u000aX-Injected: 1","stored":' . $now
    . ',"completion":' . LLMFake::completion('tampered') . '}');
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
        add_header X-Model "$llm_model";
    }
--- request eval
main::chat()
--- error_code: 200
--- response_headers
X-LLM-Cache: MISS
X-Model: fake-model
!X-Injected
--- response_body_like: hello from ok
--- error_log
llm cache: ignored an entry with an invalid provider or model name



=== TEST 48: a provider name that is not configured here must be a plain token
--- init
my $now = int(Time::HiRes::time() * 1000);
LLMRedis::redis_cmd('SET', LLMRedis::cache_key(request => $main::Hi, chain => ['ok']),
    '{"provider":"else where","model":"m","stored":' . $now
    . ',"completion":' . LLMFake::completion('tampered') . '}');
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
main::chat()
--- error_code: 200
--- response_headers
X-LLM-Cache: MISS
X-LLM-Provider: ok
--- response_body_like: hello from ok
--- error_log
llm cache: ignored an entry with an invalid provider or model name



=== TEST 49: an entry larger than llm_max_response_size and its metadata is not read: MISS, a fresh answer
--- init
my $now = int(Time::HiRes::time() * 1000);
LLMRedis::redis_cmd('SET', LLMRedis::cache_key(request => $main::Hi, chain => ['ok']),
    '{"provider":"ok","model":"m","stored":' . $now
    . ',"completion":' . LLMFake::completion('x' x 20000) . '}');
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_max_response_size 8k;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
main::chat()
--- error_code: 200
--- response_headers
X-LLM-Cache: MISS
X-LLM-Provider: ok
--- response_body_like: hello from ok
--- error_log eval
qr/\[warn\] .*llm cache: ignored an entry of 20\d{3} bytes, more than llm_max_response_size 8192 and 4096 bytes of metadata/



=== TEST 49b: the fresh answer replaces the oversized entry
--- init
my $now = int(Time::HiRes::time() * 1000);
LLMRedis::redis_cmd('SET', LLMRedis::cache_key(request => $main::Hi, chain => ['ok']),
    '{"provider":"ok","model":"m","stored":' . $now
    . ',"completion":' . LLMFake::completion('x' x 20000) . '}');
--- config
    location /chat {
        llm_fallback_chain ok;
        llm_max_response_size 8k;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(), main::chat()]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Cache: MISS\nX-LLM-Provider: ok", "X-LLM-Cache: HIT\nX-LLM-Provider: ok"]
--- response_body_like eval
["hello from ok", "hello from ok"]



=== TEST 50: an entry of llm_max_response_size, metadata aside, is read
--- init
my $now = int(Time::HiRes::time() * 1000);
LLMRedis::redis_cmd('SET', LLMRedis::cache_key(request => $main::Hi, chain => ['p503']),
    '{"provider":"elsewhere","model":"m","stored":' . $now
    . ',"completion":' . LLMFake::completion('x' x 7900) . '}');
--- config
    location /chat {
        llm_fallback_chain p503;
        llm_max_response_size 8k;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
main::chat()
--- error_code: 200
--- response_headers
X-LLM-Cache: HIT
X-LLM-Provider: elsewhere
--- response_body_like: x{7900}
--- no_error_log
[warn]
