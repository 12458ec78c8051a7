# Streaming (README "Streaming") from OpenAI-format providers: events split at
# every byte, the commit point (every failure before the first content
# falls back invisibly), the error event after it, the idle timeout, a
# client that goes away.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;
use LLMStream;
use LLMSchema;

my $err = '{"error":{"message":"overloaded, try later","type":"server_error",'
        . '"param":null,"code":"overloaded"}}';

# events that end exactly at the provider location's 4 KiB reads, and
# one, two, three bytes before or after, inside "\n\n" or "\r\n\r\n":
# the head and the first event fill the first read, then each event is
# 4096 bytes and d more; passed through, each is as large in the output
sub edge_events {
    my ($eol) = @_;
    my $over = length(sse_event(openai_chunk('{"content":""}'))) - 2
               + 2 * length $eol;
    my @texts = (4096 - length(sse_head()) - $over);

    push @texts, map { 4096 + $_ - $over } 1, -1, 2, -2, 3, -3, -1, 1, -2,
                                           2, 0, 0;
    @texts = map { sprintf('%02d', $_) . 'x' x ($texts[$_] - 2) }
             0 .. $#texts;

    my $events = join '', map { "data: " . openai_chunk(qq({"content":"$_"}))
                                . "$eol$eol" } @texts;

    our %edge;
    $edge{$eol} = join '', map { qq([^\n]*"content":"\Q$_\E"[^\n]*\n\n) }
                           @texts;

    return sse_head() . $events . "data: " . openai_chunk('{}', 'stop')
           . "$eol${eol}data: [DONE]$eol$eol";
}

stream_server(
    good    => [sse_head(), openai_stream('Hello', ' world')],
    edgelf  => [edge_events("\n")],
    edgecrlf => [edge_events("\r\n")],
    tiny    => [sse_head(), { tiny => join('', openai_stream('Hel', 'lo')) }],
    crlf    => [sse_head(), { tiny => join('', map { s/\n/\r\n/gr }
                                                  openai_stream('crlf')),
                              seg => 3 }],
    cr      => [sse_head(), join('', map { s/\n/\r/gr }
                                     openai_stream('bare cr'))],
    multi   => [sse_head(), ": a comment\n\nevent: message\nid: 7\n"
                            . "data: {\"id\":\"c\",\"object\":\"chat.completion"
                            . ".chunk\",\"created\":1,\"model\":\"m\",\n"
                            . "data: \"choices\":[{\"index\":0,\"delta\":"
                            . "{\"content\":\"two lines\"},\"finish_reason\":"
                            . "\"stop\"}]}\n\ndata: [DONE]\n\n"],
    chunked => [sse_head_chunked(), map({ chunked($_) }
                                        openai_stream('chunked')),
                chunked('')],
    norole  => [sse_head(), sse_event(openai_chunk('{"content":"bare"}')),
                sse_event('{"choices":[{"index":0,"delta":{},'
                          . '"finish_reason":"stop"}]}'),
                "data: [DONE]\n\n"],
    tools   => [sse_head(),
                sse_event(openai_chunk('{"role":"assistant","content":null,'
                    . '"tool_calls":[{"index":0,"id":"call_1","type":'
                    . '"function","function":{"name":"get_weather",'
                    . '"arguments":""}}]}')),
                sse_event(openai_chunk('{"tool_calls":[{"index":0,'
                    . '"function":{"arguments":"{\"city\":\"Paris\"}"}}]}')),
                sse_event(openai_chunk('{}', 'tool_calls')),
                "data: [DONE]\n\n"],

    # failures before the first content
    inband  => [sse_head(), sse_event(openai_chunk(
                    '{"role":"assistant","content":""}')),
                sse_event($err), { hang => 1 }],
    empty   => [sse_head(), sse_event(openai_chunk(
                    '{"role":"assistant","content":""}')),
                sse_event(openai_chunk('{}', 'stop')), "data: [DONE]\n\n"],
    nothing => [sse_head()],
    slow    => [sse_head(), sse_event(openai_chunk(
                    '{"role":"assistant","content":""}')),
                ": keep-alive\n\n", 0.2, ": keep-alive\n\n", 0.2,
                ": keep-alive\n\n", { hang => 1 }],
    garbage => [sse_head(), "data: {\"choices\":[{\"delta\":\n\n",
                { hang => 1 }],
    huge    => [sse_head(), "data: {\"x\":\"", "a" x 8192, "\"}\n\n"],
    rolespam => [sse_head(), { repeat => 2000, step => sse_event(openai_chunk(
                                  '{"role":"assistant","content":""}')) },
                 { hang => 1 }],
    badutf8 => [sse_head(), sse_event(openai_chunk(
                    qq({"content":"\xff\xfe bad"}))), { hang => 1 }],
    sameread => [sse_head(), sse_event(openai_chunk('{"content":"lost"}'))
                 . "data: {oops\n\n", { hang => 1 }],
    s503    => ["HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                . "application/json\r\nContent-Length: " . length($err)
                . "\r\nConnection: close\r\n\r\n$err"],
    s400    => ["HTTP/1.1 400 Bad Request\r\nContent-Type: application/json"
                . "\r\nConnection: close\r\n\r\n"
                . '{"error":{"message":"bad prompt here","type":'
                . '"invalid_request_error","param":null,"code":null}}'],
    json    => ["HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                . "Connection: close\r\n\r\n"
                . LLMFake::completion('not streamed')],

    # failures after it
    cut     => [sse_head(), (openai_stream('one'))[0],
                sse_event(openai_chunk('{"content":"partial"}')),
                { cut => 1 }],
    cutchk  => [sse_head_chunked(),
                chunked(sse_event(openai_chunk('{"content":"partial"}'))),
                { cut => 1 }],
    badlate => [sse_head(), sse_event(openai_chunk('{"content":"fine"}')), 0.2,
                "data: {oops\n\n", { hang => 1 }],
    errlate => [sse_head(), sse_event(openai_chunk('{"content":"fine"}')), 0.2,
                sse_event($err)],
    idle    => [sse_head(), sse_event(openai_chunk('{"content":"then"}')),
                { hang => 1 }],
    # 400 events of 1 KiB in one write, for a client that reads slowly
    long    => [sse_head(), sse_event(openai_chunk(
                    '{"role":"assistant","content":""}'))
                . join('', map { sse_event(openai_chunk(
                                     qq({"content":"$_ @{['x' x 900]}"})))
                               } 1 .. 400)
                . join('', (openai_stream())[1 .. 3])],
    # chunks without an id are rewritten: larger than an output buffer
    obig    => [sse_head(), map({ sse_event('{"choices":[{"index":0,'
                                      . qq("delta":{"content":"$_"},)
                                      . '"finish_reason":null}]}') }
                                'e' x 6000, 'f' x 9000),
                sse_event('{"choices":[{"index":0,"delta":{},'
                          . '"finish_reason":"stop"}]}'),
                "data: [DONE]\n\n"],
    errkey  => [sse_head(), sse_event(openai_chunk('{"content":"fine"}')), 0.2,
                sse_event('{"error":{"message":"Incorrect API key provided: '
                          . 'Bearer sk-stream-secret-4b8d2f. Key sk-stream-'
                          . 'secret-4b8d2f is revoked.","type":'
                          . '"invalid_request_error","param":null,'
                          . '"code":"sk-stream-secret-4b8d2f"}}')],
    # a first content at once, then 3.2 s more of the answer
    longrun => [sse_head(), map({ (sse_event(openai_chunk(qq({"content":"$_ "}))),
                                   0.4) } 1 .. 8),
                sse_event(openai_chunk('{}', 'stop')), "data: [DONE]\n\n"],
    # a compatible server: no finish_reason until the end, and an error
    # with a numeric code and no param
    nofinish => [sse_head(),
                 sse_event('{"id":"c","object":"chat.completion.chunk",'
                           . '"created":1,"model":"m","choices":[{"index":0,'
                           . '"delta":{"role":"assistant","content":"unfinished'
                           . '"}}]}'),
                 sse_event('{"id":"c","object":"chat.completion.chunk",'
                           . '"created":1,"model":"m","choices":[{"index":0,'
                           . '"delta":{},"finish_reason":"stop"}]}'),
                 "data: [DONE]\n\n"],
    errcode => [sse_head(), sse_event(openai_chunk('{"content":"fine"}')), 0.2,
                sse_event('{"error":{"message":"engine overloaded",'
                          . '"type":"server_error","code":503}}')],
    endless => [sse_head(), sse_event(openai_chunk('{"content":"first"}')),
                1.5, { forever => sse_event(openai_chunk(
                                      '{"content":"more "}')),
                       every => 0.05 }],
);

no_shuffle();

# every body the module answers with: OpenAI's schemas (t/schema/)
LLMSchema::check_bodies();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config",
        "    llm_provider errkey uri=/_s/errkey"
        . " api_key=sk-stream-secret-4b8d2f;\n"
        . join('', map { "    llm_provider $_ uri=/_s/$_;\n" }
             qw(good tiny crlf cr multi chunked norole tools inband empty
                rolespam badutf8 sameread
                nothing slow garbage huge s503 s400 json cut cutchk badlate
                errlate idle endless long obig edgelf edgecrlf longrun nofinish errcode))
        . ($block->http_config // ''));

    $block->set_value("config", <<'EOF' . ($block->config // ''));
    location ~ ^/_s/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
        proxy_http_version 1.1;
        proxy_read_timeout 10s;
    }
EOF

    if (!defined $block->request) {
        $block->set_value("request", "POST /chat\n"
            . '{"model":"m","stream":true,'
            . '"messages":[{"role":"user","content":"hi"}]}');
    }

    $block->set_value("more_headers", "Content-Type: application/json")
        unless defined $block->more_headers;

    $block->set_value("no_error_log", "[alert]\n[crit]\nexited on signal")
        unless defined $block->no_error_log;

    LLMFake::fault_blocks($block);
});

run_tests();

__DATA__

=== TEST 1: an OpenAI stream is passed through, event by event
--- config
    location /chat { llm_fallback_chain good; }
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
Cache-Control: no-cache
X-LLM-Provider: good
X-LLM-Attempts: 1
Content-Length:
--- response_body_like eval
qr/\Adata: \{"id":"chatcmpl-s1","object":"chat.completion.chunk",.*"delta":\{"role":"assistant","content":""\}.*\n\ndata: .*"content":"Hello".*\n\ndata: .*"content":" world".*\n\ndata: .*"finish_reason":"stop".*\n\ndata: .*"usage":\{"prompt_tokens":9,.*\n\ndata: \[DONE\]\n\n\z/s



=== TEST 2: the provider was asked for a stream, with the client's bytes
--- no_schema_check: 1
--- config
    location /chat { llm_fallback_chain good; }
    location = /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/req/good;
    }
--- request eval
["POST /chat\n" . '{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}', "GET /t"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/data: \[DONE\]/, qr/\A\Q{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}\E\z/]
--- no_error_log
[alert]



=== TEST 3: events split into single bytes
--- config
    location /chat { llm_fallback_chain tiny; }
--- error_code: 200
--- response_body_like eval
qr/"content":"Hel".*"content":"lo".*\n\ndata: \[DONE\]\n\n\z/s



=== TEST 4: CR LF line ends, three bytes at a time
--- config
    location /chat { llm_fallback_chain crlf; }
--- error_code: 200
--- response_body_like eval
qr/\Adata: \{[^\r]*"content":"crlf"[^\r]*\n\n.*data: \[DONE\]\n\n\z/s



=== TEST 5: bare CR line ends
--- config
    location /chat { llm_fallback_chain cr; }
--- error_code: 200
--- response_body_like eval
qr/"content":"bare cr".*data: \[DONE\]\n\n\z/s



=== TEST 6: comments, event names, ids and a data field on two lines
--- config
    location /chat { llm_fallback_chain multi; }
--- error_code: 200
--- response_body_like eval
qr/\Adata: \{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":\[\{"index":0,"delta":\{"content":"two lines"\},"finish_reason":"stop"\}\]\}\n\ndata: \[DONE\]\n\n\z/



=== TEST 7: a chunked upstream body
--- config
    location /chat { llm_fallback_chain chunked; }
--- error_code: 200
--- response_body_like eval
qr/"content":"chunked".*data: \[DONE\]\n\n\z/s



=== TEST 8: chunks without id, object, created or model are completed
--- config
    location /chat { llm_fallback_chain norole; }
--- error_code: 200
--- response_body_like eval
qr/\Adata: \{.*"content":"bare".*\n\ndata: \{(?=.*"id":"chatcmpl-)(?=.*"object":"chat.completion.chunk")(?=.*"model":"m")(?=.*"created":\d+).*"finish_reason":"stop".*\n\ndata: \[DONE\]\n\n\z/s



=== TEST 9: a tool call delta is content: the stream commits on it
--- config
    location /chat { llm_fallback_chain tools; }
--- error_code: 200
--- response_body_like eval
qr/"tool_calls":\[\{"index":0,"id":"call_1".*"arguments":"\{\\"city\\":\\"Paris\\"\}".*"finish_reason":"tool_calls".*data: \[DONE\]\n\n\z/s



=== TEST 10: 503 before the stream falls back
--- config
    location /chat { llm_fallback_chain s503 good; }
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
X-LLM-Provider: good
X-LLM-Fallback: s503:http_503
--- response_body_like eval
qr/"content":"Hello".*data: \[DONE\]\n\n\z/s



=== TEST 11: connection refused falls back
--- config
    location /chat { llm_fallback_chain prefused good; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: prefused:error
--- response_body_like eval
qr/"content":"Hello".*data: \[DONE\]\n\n\z/s



=== TEST 12: no first content within llm_attempt_timeout falls back
keep-alive comments do not count as content
--- config
    location /chat {
        llm_attempt_timeout 500ms;
        llm_fallback_chain slow good;
    }
--- error_code: 200
--- response_headers
X-LLM-Fallback: slow:timeout
--- response_body_like eval
qr/\Adata: [^\n]*"role":"assistant"[^\n]*\n\n(?!.*"role").*"content":"Hello".*data: \[DONE\]\n\n\z/s
--- error_log
llm provider "slow" attempt failed: timeout



=== TEST 13: an in-band error before the first content falls back at once
--- config
    location /chat {
        llm_attempt_timeout 5s;
        llm_fallback_chain inband good;
    }
--- error_code: 200
--- response_headers
X-LLM-Fallback: inband:error
--- response_body_like eval
qr/\A(?!.*overloaded).*"content":"Hello".*data: \[DONE\]\n\n\z/s
--- error_log
llm provider "inband" attempt failed: error, status 200



=== TEST 14: a stream that ends without content falls back
--- config
    location /chat { llm_fallback_chain empty good; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: empty:invalid_response
--- response_body_like eval
qr/\A(?!.*"finish_reason":"stop".*"finish_reason":"stop").*"content":"Hello".*data: \[DONE\]\n\n\z/s



=== TEST 15: a stream that ends before any event falls back
--- config
    location /chat { llm_fallback_chain nothing good; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: nothing:invalid_response



=== TEST 16: a malformed event before the first content falls back
--- config
    location /chat { llm_fallback_chain garbage good; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: garbage:invalid_response
--- response_body_like: "content":"Hello"



=== TEST 17: an event larger than llm_max_response_size falls back
--- config
    location /chat {
        llm_max_response_size 4k;
        llm_fallback_chain huge good;
    }
--- error_code: 200
--- response_headers
X-LLM-Fallback: huge:invalid_response



=== TEST 18: every provider fails before the stream: an HTTP error, not SSE
--- config
    location /chat { llm_fallback_chain s503 inband; }
--- error_code: 502
--- response_headers
Content-Type: application/json
x-should-retry: false
--- response_body_like: "type":"llm_providers_exhausted"



=== TEST 19: a 400 is the client's answer, as JSON with its status
--- config
    location /chat { llm_fallback_chain s400 good; }
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body_like: "message":"bad prompt here"



=== TEST 20: a provider that answers JSON to a stream request is replayed
--- config
    location /chat { llm_fallback_chain json; }
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
--- response_body_like eval
qr/"delta":\{"role":"assistant","content":"not streamed","refusal":null\}.*data: \[DONE\]\n\n\z/s



=== TEST 21: cut after the first content: an error event, then [DONE]
--- config
    location /chat { llm_fallback_chain cut good; }
--- error_code: 200
--- response_headers
X-LLM-Provider: cut
--- response_body_like eval
qr/"content":"partial".*\n\ndata: \{"error":\{"message":"The provider's stream failed after it started: the connection was cut before the end of the stream.","type":"provider_error","param":null,"code":"llm_stream_interrupted"\}\}\n\ndata: \[DONE\]\n\n\z/s
--- error_log
llm provider "cut" stream failed after its first content: the connection was cut



=== TEST 22: a chunked body cut after the first content
--- config
    location /chat { llm_fallback_chain cutchk good; }
--- error_code: 200
--- response_body_like eval
qr/"content":"partial".*\n\ndata: \{"error":\{.*"code":"llm_stream_interrupted"\}\}\n\ndata: \[DONE\]\n\n\z/s
--- error_log
upstream prematurely closed connection



=== TEST 23: a malformed event after the first content
--- config
    location /chat { llm_fallback_chain badlate good; }
--- timeout: 5
--- error_code: 200
--- response_body_like eval
qr/"content":"fine".*\n\ndata: \{"error":\{.*"code":"llm_stream_invalid"\}\}\n\ndata: \[DONE\]\n\n\z/s
--- error_log
stream failed after its first content: a malformed event



=== TEST 24: the provider's own error event after the first content
--- config
    location /chat { llm_fallback_chain errlate good; }
--- error_code: 200
--- response_body_like eval
qr/"content":"fine".*\n\ndata: \{"error":\{"message":"overloaded, try later","type":"server_error","param":null,"code":"overloaded"\}\}\n\ndata: \[DONE\]\n\n\z/s



=== TEST 25: llm_stream_idle_timeout after the first content
--- config
    location /chat {
        llm_stream_idle_timeout 300ms;
        llm_fallback_chain idle good;
    }
--- error_code: 200
--- response_body_like eval
qr/"content":"then".*\n\ndata: \{"error":\{.*"code":"llm_stream_idle_timeout"\}\}\n\ndata: \[DONE\]\n\n\z/s
--- error_log
stream failed after its first content: no event within llm_stream_idle_timeout



=== TEST 26: ... and the idle provider's connection was closed
--- no_schema_check
--- config
    location = /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/closed/idle;
    }
--- request
GET /t
--- error_code: 200
--- response_body: peer



=== TEST 27: a failure after the commit point counts against the provider
--- http_config
    llm_circuit_breaker zone=llm:1m failures=1 window=1m cooldown=1m;
--- config
    location /chat { llm_fallback_chain cut good; }
    location /status { llm_status; }
--- request eval
["POST /chat\n" . '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}', "POST /chat\n" . '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}']
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200]
--- raw_response_headers_like eval
[qr/X-LLM-Provider: cut/, qr/X-LLM-Fallback: cut:open/]



=== TEST 28: the client goes away mid-stream: the provider connection closes
--- config
    location /chat { llm_fallback_chain endless; }
--- timeout: 0.5
--- abort
--- ignore_response
--- wait: 1
--- error_log
client prematurely closed connection



=== TEST 29: ... and the provider saw nginx close it
--- no_schema_check
--- config
    location = /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/closed/endless;
    }
--- request
GET /t
--- error_code: 200
--- response_body: peer



=== TEST 30: proxy_buffering off in the provider location works the same
--- config
    location /chat { llm_fallback_chain tiny; }
--- http_config
    proxy_buffering off;
--- error_code: 200
--- response_body_like eval
qr/"content":"Hel".*"content":"lo".*data: \[DONE\]\n\n\z/s



=== TEST 31: a non-stream request to the same provider is not streamed
--- config
    location /chat { llm_fallback_chain json; }
--- request
POST /chat
{"model":"m","messages":[{"role":"user","content":"hi"}]}
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like: "content":"not streamed"



=== TEST 32: llm_status counts streams: tokens from the usage event, failures after commit
--- no_schema_check: 2
--- http_config
    llm_circuit_breaker zone=llm:1m failures=5;
--- config
    location /chat { llm_fallback_chain good; }
    location /cut { llm_fallback_chain cut; }
    location /status { llm_status; }
--- request eval
["POST /chat\n" . '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}', "POST /cut\n" . '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}', "GET /status"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 200]
--- response_body_like eval
[qr/\[DONE\]/, qr/llm_stream_interrupted/, qr/"good":\{[^{}]*"attempts":1,"successes":1,"failures":\{"error":0,[^}]*\},"tokens":\{"prompt":9,"completion":4\}.*"cut":\{[^{}]*"consecutive_failures":1,[^{}]*"successes":0,"failures":\{"error":1,/s]



=== TEST 33: endless chunks without content before the commit point are bounded
--- config
    location /chat {
        llm_max_response_size 16k;
        llm_fallback_chain rolespam good;
    }
--- error_code: 200
--- response_headers
X-LLM-Fallback: rolespam:invalid_response
--- response_body_like eval
qr/\Adata: [^\n]*"role":"assistant"[^\n]*\n\n(?!.*"role").*"content":"Hello".*data: \[DONE\]\n\n\z/s



=== TEST 34: an event that is not UTF-8 before the commit point falls back
--- config
    location /chat { llm_fallback_chain badutf8 good; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: badutf8:invalid_response



=== TEST 35: content and a failure in the same read: nothing was sent, it falls back
--- config
    location /chat { llm_fallback_chain sameread good; }
--- error_code: 200
--- response_headers
X-LLM-Provider: good
X-LLM-Fallback: sameread:invalid_response
--- response_body_like eval
qr/\A(?!.*lost).*"content":"Hello".*data: \[DONE\]\n\n\z/s



=== TEST 36: a client that reads slowly gets the whole stream, and it is a success
The module's server sends through a 4 KiB socket buffer to a client that
stalls a second, then reads 2 KiB every 10 ms: when the provider ends,
the client is far more than 64 KiB behind.
--- http_config
    llm_circuit_breaker zone=llm:1m failures=1 window=1m cooldown=1m;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2 sndbuf=4k;

        location /chat { llm_fallback_chain long; }
        location /status { llm_status; }

        location ~ ^/_s/(\w+)$ {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
            proxy_http_version 1.1;
        }
    }
--- config
    location /slow {
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/client/$TEST_NGINX_RAND_PORT_2/chat?stall=1&read=2048&every=0.01;
        proxy_read_timeout 60s;
    }
    location /status {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/status;
    }
--- no_schema_check: 1
--- request eval
["POST /slow\n" . '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}', "GET /status"]
--- timeout: 30
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/\Adata: [^\n]*"role":"assistant"[^\n]*\n\n(?:data: [^\n]*"content":"\d+ x{900}"[^\n]*\n\n){400}data: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: [^\n]*"usage"[^\n]*\n\ndata: \[DONE\]\n\n\z/,
 qr/"long":\{"state":"closed",[^{}]*"consecutive_failures":0,[^{}]*"attempts":1,"successes":1,"failures":\{"error":0,/]
--- no_error_log
[alert]
[crit]
stream failed



=== TEST 37: rewritten OpenAI chunks of 6000 and 9000 characters
Each chunk is larger than an output buffer.
--- config
    location /chat { llm_fallback_chain obig; }
--- error_code: 200
--- response_body_like eval
qr/\Adata: \{(?=[^\n]*"id":"chatcmpl-)[^\n]*"delta":\{"content":"e{6000}"\}[^\n]*\n\ndata: [^\n]*"content":"f{9000}"[^\n]*\n\ndata: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: \[DONE\]\n\n\z/
--- no_error_log
[alert]
[error]
stream failed



=== TEST 38: events that end at, just before and just after a read's end
--- config
    location /chat { llm_fallback_chain edgelf; }
--- error_code: 200
--- response_body_like eval
qr/\A(?:data: $::edge{"\n"})data: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: \[DONE\]\n\n\z/



=== TEST 39: ... with CR LF line ends, the read ending inside them
--- config
    location /chat { llm_fallback_chain edgecrlf; }
--- error_code: 200
--- response_body_like eval
qr/\A(?:data: $::edge{"\r\n"})data: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: \[DONE\]\n\n\z/



=== TEST 40: the provider's error event after the first content, with its key redacted
--- config
    location /chat { llm_fallback_chain errkey; }
--- error_code: 200
--- response_body_like eval
qr/\A(?!.*secret)(?=.*"content":"fine").*\n\ndata: \{"error":\{"message":"Incorrect API key provided: Bearer \[redacted\]\. Key \[redacted\] is revoked\.","type":"invalid_request_error","param":null,"code":"\[redacted\]"\}\}\n\ndata: \[DONE\]\n\n\z/s
--- no_error_log eval
[qr/\[alert\]/, qr/\[(?!debug)[a-z]+\].*sk-stream-secret/]



=== TEST 41: llm_fallback_timeout bounds the time to the commit point, not a committed stream
The stream commits at once and runs 3.2 s past a 1.5 s deadline.
--- config
    location /chat {
        llm_fallback_timeout 1500ms;
        llm_fallback_chain longrun good;
    }
--- timeout: 10
--- error_code: 200
--- response_headers
X-LLM-Provider: longrun
--- response_body_like eval
qr/\A(?!.*"error")(?:data: [^\n]*"content":"\d "[^\n]*\n\n){8}data: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: \[DONE\]\n\n\z/
--- no_error_log
[alert]
[error]
stream failed



=== TEST 42: ... a chain that has not committed by then gets 504 llm_timeout
keep-alive comments and the role chunk do not commit the stream
--- config
    location /chat {
        llm_attempt_timeout 10s;
        llm_fallback_timeout 1s;
        llm_fallback_chain slow good;
    }
--- timeout: 10
--- error_code: 504
--- response_headers
Content-Type: application/json
x-should-retry: false
--- response_body_like: ^\{"error":\{"message":"The llm_fallback_timeout deadline passed before any provider answered.","type":"llm_timeout","param":null,"code":null,"attempts":\[\{"provider":"slow","status":504,"reason":"timeout"\}\]\}\}$
--- error_log
llm fallback: llm_fallback_timeout passed after: slow:timeout



=== TEST 43: an HTTP/2 client that reads slowly gets the whole stream, and it is a success
A 4 KiB stream window that opens 2 KiB every 10 ms, after a second.
--- skip_eval: 10: !LLMStream::have_node()
--- http_config
    llm_circuit_breaker zone=llm:1m failures=1 window=1m cooldown=1m;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2 http2 sndbuf=4k;
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_3;

        location /chat { llm_fallback_chain long; }
        location /status { llm_status; }

        location ~ ^/_s/(\w+)$ {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
            proxy_http_version 1.1;
        }
    }
--- config
    location /slow {
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/client/$TEST_NGINX_RAND_PORT_2/chat?h2=1&stall=1&read=2048&every=0.01;
        proxy_read_timeout 60s;
    }
    location /status {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_3/status;
    }
--- no_schema_check: 1
--- request eval
["POST /slow\n" . '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}', "GET /status"]
--- timeout: 30
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/\Adata: [^\n]*"role":"assistant"[^\n]*\n\n(?:data: [^\n]*"content":"\d+ x{900}"[^\n]*\n\n){400}data: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: [^\n]*"usage"[^\n]*\n\ndata: \[DONE\]\n\n\z/,
 qr/"long":\{"state":"closed",[^{}]*"consecutive_failures":0,[^{}]*"attempts":1,"successes":1,"failures":\{"error":0,/]
--- no_error_log
[alert]
[crit]
stream failed
=== TEST 44: a chunk without finish_reason gets it, null
--- config
    location /chat { llm_fallback_chain nofinish; }
--- error_code: 200
--- response_body eval
'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
. '"choices":[{"index":0,"delta":{"role":"assistant","content":"unfinished"},'
. '"finish_reason":null}]}' . "\n\n"
. 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
. '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}' . "\n\n"
. "data: [DONE]\n\n"



=== TEST 45: an error event with a numeric code after the first content is relayed in OpenAI's shape
--- config
    location /chat { llm_fallback_chain errcode good; }
--- error_code: 200
--- response_body_like eval
qr/"content":"fine".*\n\ndata: \{"error":\{"message":"engine overloaded","type":"server_error","param":null,"code":"503"\}\}\n\ndata: \[DONE\]\n\n\z/s
