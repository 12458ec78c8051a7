# A completed stream is cached like a completion (README "Response cache", "Streaming"): a later
# request gets it as JSON, or replayed as SSE chunks when it streams.  A
# stream that broke after the commit point is not cached.  Real Redis.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket;
use LLMRedis;
use LLMStream;
use LLMSchema;

if (!$LLMRedis::Available) {
    plan(skip_all => 'redis-server is not installed (Debian: redis-server)');
}

plan('no_plan');

stream_server(
    good  => [sse_head(), openai_stream('Hello', ' world')],
    tool  => [sse_head(),
              sse_event('{"type":"message_start","message":{"id":"msg_3",'
                  . '"type":"message","role":"assistant","model":'
                  . '"claude-fake","content":[],"usage":{"input_tokens":7,'
                  . '"output_tokens":1}}}', 'message_start'),
              sse_event('{"type":"content_block_start","index":0,'
                  . '"content_block":{"type":"tool_use","id":"toolu_7",'
                  . '"name":"lookup","input":{}}}', 'content_block_start'),
              sse_event('{"type":"content_block_delta","index":0,"delta":'
                  . '{"type":"input_json_delta","partial_json":'
                  . '"{\"q\":\"x\"}"}}', 'content_block_delta'),
              sse_event('{"type":"content_block_stop","index":0}',
                  'content_block_stop'),
              sse_event('{"type":"message_delta","delta":{"stop_reason":'
                  . '"tool_use"},"usage":{"output_tokens":9}}',
                  'message_delta'),
              sse_event('{"type":"message_stop"}', 'message_stop')],
    cut   => [sse_head(), sse_event(openai_chunk('{"content":"half"}')),
              { cut => 1 }],

    # 400 events of 1 KiB in one write, for a client that reads slowly
    long  => [sse_head(), sse_event(openai_chunk(
                  '{"role":"assistant","content":""}'))
              . join('', map { sse_event(openai_chunk(
                                   qq({"content":"$_ @{['x' x 900]}"})))
                             } 1 .. 400)
              . join('', (openai_stream())[1 .. 3])],
);

sub chat {
    my ($stream) = @_;
    return "POST /chat\n" . '{"model":"m",'
        . ($stream ? '"stream":true,' : '')
        . '"messages":[{"role":"user","content":"hi"}]}';
}

no_shuffle();

# every body the module answers with: OpenAI's schemas (t/schema/)
LLMSchema::check_bodies();

add_block_preprocessor(sub {
    my $block = shift;

    LLMRedis::redis_cmd('FLUSHALL');

    $block->set_value("http_config", <<'EOF' . ($block->http_config // ''));
    llm_provider good uri=/_s/good;
    llm_provider tool uri=/_s/tool format=anthropic;
    llm_provider cut uri=/_s/cut;
    llm_provider long uri=/_s/long;
EOF

    $block->set_value("config", <<'EOF' . ($block->config // ''));
    location ~ ^/_s/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
        proxy_http_version 1.1;
    }
EOF

    $block->set_value("more_headers", "Content-Type: application/json")
        unless defined $block->more_headers;

    $block->set_value("no_error_log", "[alert]\n[crit]\nexited on signal")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: a completed OpenAI stream is stored as the completion it adds up to
--- config
    location /chat {
        llm_fallback_chain good;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(1), main::chat(0), main::chat(1)]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS\nContent-Type: text/event-stream",
 "X-LLM-Cache: HIT\nX-LLM-Provider: good\nContent-Type: application/json",
 "X-LLM-Cache: HIT\nContent-Type: text/event-stream"]
--- response_body_like eval
[qr/"content":"Hello".*"content":" world".*data: \[DONE\]\n\n\z/s,
 qr/\A\{"id":"chatcmpl-s1","object":"chat.completion","created":1700000000,"model":"fake-stream-model","choices":\[\{"index":0,"message":\{"role":"assistant","content":"Hello world"[^}]*\},[^\]]*"finish_reason":"stop"\}\],"usage":\{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13\}\}\z/,
 qr/\Adata: \{"id":"chatcmpl-s1","object":"chat.completion.chunk",[^\n]*"delta":\{"role":"assistant","content":"Hello world","refusal":null\}[^\n]*\n\ndata: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: \[DONE\]\n\n\z/]



=== TEST 2: an Anthropic tool call stream is stored with its tool call
--- config
    location /chat {
        llm_fallback_chain tool;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(1), main::chat(0)]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: HIT"]
--- response_body_like eval
[qr/"finish_reason":"tool_calls".*data: \[DONE\]\n\n\z/s,
 qr/"model":"claude-fake".*"tool_calls":\[\{"id":"toolu_7","type":"function","function":\{"name":"lookup","arguments":"\{\\"q\\":\\"x\\"\}"\}\}\].*"finish_reason":"tool_calls".*"usage":\{"prompt_tokens":7,"completion_tokens":9,"total_tokens":16/s]



=== TEST 3: a stream that broke after its first content is not cached
--- config
    location /chat {
        llm_fallback_chain cut;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(1), main::chat(1)]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: MISS"]
--- response_body_like eval
[qr/"code":"llm_stream_interrupted".*data: \[DONE\]\n\n\z/s,
 qr/"code":"llm_stream_interrupted".*data: \[DONE\]\n\n\z/s]



=== TEST 4: a stream to a client that reads slowly is cached all the same
The module's server sends through a 4 KiB socket buffer to a client that
stalls a second, then reads 2 KiB every 10 ms (LLMStream's slow client):
when the provider ends, the client is far more than 64 KiB behind.
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2 sndbuf=4k;

        location /chat {
            llm_fallback_chain long;
            llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
        }

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
    location /direct {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/chat;
    }
--- request eval
[main::chat(1) =~ s{^POST /chat}{POST /slow}r,
 main::chat(0) =~ s{^POST /chat}{POST /direct}r]
--- timeout: 30
--- error_code eval
[200, 200]
--- response_headers eval
["", "X-LLM-Cache: HIT\nX-LLM-Provider: long"]
--- response_body_like eval
[qr/\A(?!.*"error")(?=.*"content":"400 x{900}").*"finish_reason":"stop".*\n\ndata: \[DONE\]\n\n\z/s,
 qr/\A\{"id":"chatcmpl-s1","object":"chat.completion",.*"content":"1 x{900}2 x{900}.*400 x{900}".*"finish_reason":"stop".*"usage":\{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13\}\}\z/s]
--- no_error_log
[alert]
[crit]
stream failed
