# The Messages door under what real clients do: a request shaped like
# Claude Code's passes through byte for byte; big events and a client that
# reads slowly; the cache keeps Messages apart from Chat and replays
# Anthropic events; reasoning and stop sequences across formats; a client
# that goes away.  Real Redis for the cache blocks.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket;
use LLMRedis;
use LLMStream;

if (!$LLMRedis::Available) {
    plan(skip_all => 'redis-server is not installed (Debian: redis-server)');
}

plan('no_plan');

sub json_reply {
    my ($body, $status) = @_;
    $status //= 200;
    return "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
         . "Content-Length: " . length($body) . "\r\nConnection: close"
         . "\r\n\r\n$body";
}

sub astream {
    my (@texts) = @_;
    my @ev = (sse_event('{"type":"message_start","message":{"id":"msg_b",'
        . '"type":"message","role":"assistant","model":"claude-fake",'
        . '"content":[],"stop_reason":null,"stop_sequence":null,"usage":'
        . '{"input_tokens":5,"output_tokens":1}}}', 'message_start'),
        sse_event('{"type":"content_block_start","index":0,'
        . '"content_block":{"type":"text","text":""}}',
        'content_block_start'));

    push @ev, sse_event('{"type":"content_block_delta","index":0,"delta":'
                        . qq({"type":"text_delta","text":"$_"}}),
                        'content_block_delta') for @texts;

    push @ev, sse_event('{"type":"content_block_stop","index":0}',
                        'content_block_stop'),
              sse_event('{"type":"message_delta","delta":{"stop_reason":'
                        . '"end_turn","stop_sequence":null},"usage":'
                        . '{"output_tokens":7}}', 'message_delta'),
              sse_event('{"type":"message_stop"}', 'message_stop');

    return @ev;
}

our $Big = join '', astream('a' x 6000, 'b' x 9000);
our $Long = join '', astream(map { "$_ " . 'x' x 900 } 1 .. 300);

our $OReason = '{"id":"chatcmpl-r","object":"chat.completion","created":'
    . '1700000000,"model":"deepseek-fake","choices":[{"index":0,"message":'
    . '{"role":"assistant","content":"42.","reasoning_content":"6 times 7.",'
    . '"refusal":null},"logprobs":null,"finish_reason":"stop",'
    . '"stop_reason":"END"}],"usage":{"prompt_tokens":9,"completion_tokens":'
    . '4,"total_tokens":13}}';

our $AMsg = '{"id":"msg_c","type":"message","role":"assistant","model":'
    . '"claude-fake","content":[{"type":"text","text":"cached?"}],'
    . '"stop_reason":"end_turn","stop_sequence":null,"usage":{'
    . '"input_tokens":3,"output_tokens":2}}';

stream_server(
    cc      => [sse_head(), astream('Reading the file.')],
    big     => [sse_head(), $Big],
    long    => [sse_head(), $Long],
    reason  => [json_reply($OReason)],
    ostream => [sse_head(),
                sse_event(openai_chunk('{"role":"assistant","content":"",'
                    . '"reasoning_content":"Think."}')),
                sse_event(openai_chunk('{"reasoning_content":" More."}')),
                sse_event(openai_chunk('{"content":"Done."}')),
                sse_event(openai_chunk('{}', 'stop')),
                "data: [DONE]\n\n"],
    amsg    => [json_reply($AMsg)],
    hang    => [sse_head(), (astream('first'))[0 .. 2], { hang => 1 }],
);

# a request as Claude Code sends it: system blocks with cache_control,
# tools, metadata.user_id, thinking, a stream
our $CC = '{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user",'
    . '"content":[{"type":"text","text":"<system-reminder>\nAs you answer '
    . 'the user\'s questions, you can use the following context.\n'
    . '</system-reminder>\n"},{"type":"text","text":"read main.c",'
    . '"cache_control":{"type":"ephemeral"}}]}],"temperature":1,"system":'
    . '[{"type":"text","text":"You are Claude Code, Anthropic\'s official '
    . 'CLI for Claude.","cache_control":{"type":"ephemeral"}},{"type":'
    . '"text","text":"You are an interactive CLI tool \u2014 be careful.",'
    . '"cache_control":{"type":"ephemeral"}}],"tools":[{"name":"Read",'
    . '"description":"Reads a file","input_schema":{"type":"object",'
    . '"properties":{"file_path":{"type":"string","description":"The '
    . 'absolute path"}},"required":["file_path"],"additionalProperties":'
    . 'false,"$schema":"http://json-schema.org/draft-07/schema#"}}],'
    . '"metadata":{"user_id":"user_3f2a_account__session_9b1c"},'
    . '"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":'
    . '16000},"stream":true}';

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    LLMRedis::redis_cmd('FLUSHALL');

    $block->set_value("http_config", <<'EOF' . ($block->http_config // ''));
    llm_provider cc uri=/_s/cc format=anthropic api_key=sk-ant-prov;
    llm_provider big uri=/_s/big format=anthropic api_key=sk-ant-prov;
    llm_provider long uri=/_s/long format=anthropic api_key=sk-ant-prov;
    llm_provider amsg uri=/_s/amsg format=anthropic api_key=sk-ant-prov;
    llm_provider hang uri=/_s/hang format=anthropic api_key=sk-ant-prov;
    llm_provider reason uri=/_s/reason api_key=sk-oai;
    llm_provider ostream uri=/_s/ostream api_key=sk-oai;
EOF

    $block->set_value("config", <<'EOF' . ($block->config // ''));
    location ~ ^/_s/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
        proxy_http_version 1.1;
    }

    location ~ ^/seen/(req|head)/(\w+)$ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/$1/$2;
    }
EOF

    $block->set_value("more_headers", "Content-Type: application/json\n"
                      . "anthropic-version: 2023-06-01")
        unless defined $block->more_headers;

    $block->set_value("no_error_log", "[alert]\n[crit]\nexited on signal")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: a request shaped like Claude Code's reaches the provider byte for byte
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain cc; }
--- request eval
["POST /v1/messages?beta=true\n$::CC", "GET /seen/req/cc", "GET /seen/head/cc"]
--- more_headers
Content-Type: application/json
anthropic-version: 2023-06-01
anthropic-beta: claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14
x-api-key: sk-ant-client-key
x-app: cli
User-Agent: claude-cli/2.0.14 (external, cli)
--- error_code eval
[200, 200, 200]
--- response_body_like eval
[qr/\Aevent: message_start\n.*"text":"Reading the file\."\}\}\n\n.*event: message_stop\ndata: \{"type":"message_stop"\}\n\n\z/s,
 qr/\A\Q$::CC\E\z/,
 qr/\A(?=.*^anthropic-beta: claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14\r$)(?=.*^x-api-key: sk-ant-prov\r$)(?!.*sk-ant-client-key)(?!.*x-app)(?!.*claude-cli)/ms]



=== TEST 2: events larger than the output buffers, as they came
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain big; }
--- request eval
"POST /v1/messages\n$::CC"
--- error_code: 200
--- response_body eval
$::Big



=== TEST 3: a client that reads slowly gets the whole native stream
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2 sndbuf=4k;

        location /v1/messages { llm_api messages; llm_fallback_chain long; }

        location ~ ^/_s/(\w+)$ {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
            proxy_http_version 1.1;
        }
    }
--- config
    location /slow {
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/client/$TEST_NGINX_RAND_PORT_2/v1/messages?stall=1&read=2048&every=0.01;
        proxy_read_timeout 60s;
    }
--- request eval
"POST /slow\n$::CC"
--- timeout: 30
--- error_code: 200
--- response_body eval
$::Long



=== TEST 4: the cache keeps Messages apart from Chat, and a stream HIT replays Anthropic events
--- config
    location = /v1/messages {
        llm_api messages;
        llm_fallback_chain amsg;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
    location = /v1/chat/completions {
        llm_fallback_chain amsg;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
["POST /v1/messages\n" . '{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/messages\n" . '{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/messages\n" . '{"model":"m","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/messages\n" . '{"model":"m","max_tokens":100,"top_k":3,"messages":[{"role":"user","content":"hi"}]}']
--- error_code eval
[200, 200, 200, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: MISS", "X-LLM-Cache: HIT\nContent-Type: application/json",
 "X-LLM-Cache: HIT\nContent-Type: text/event-stream", "X-LLM-Cache: MISS"]
--- response_body_like eval
[qr/\A\Q$::AMsg\E\z/,
 qr/"object":"chat\.completion"/,
 qr/\A\{"id":"msg_c","type":"message","role":"assistant","model":"claude-fake","content":\[\{"type":"text","text":"cached\?"\}\],"stop_reason":"end_turn"/,
 qr/\Aevent: message_start\ndata: \{"type":"message_start",.*event: content_block_delta\ndata: \{"type":"content_block_delta","index":0,"delta":\{"type":"text_delta","text":"cached\?"\}\}\n\n.*"stop_reason":"end_turn".*event: message_stop\ndata: \{"type":"message_stop"\}\n\n\z/s,
 qr/"type":"message"/]



=== TEST 5: reasoning_content and a named stop sequence from an OpenAI-compatible server
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain reason; }
--- request eval
"POST /v1/messages\n" . '{"model":"m","max_tokens":100,"stop_sequences":["END","STOP"],"messages":[{"role":"user","content":"6*7?"}]}'
--- error_code: 200
--- response_body_like eval
qr/\A\{"id":"msg_[^"]+","type":"message","role":"assistant","model":"deepseek-fake","content":\[\{"type":"thinking","thinking":"6 times 7\.","signature":""\},\{"type":"text","text":"42\."\}\],"stop_reason":"stop_sequence","stop_sequence":"END",/



=== TEST 6: reasoning deltas become a thinking block in the stream
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain ostream; }
--- request eval
"POST /v1/messages\n" . '{"model":"m","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
--- error_code: 200
--- response_body_like eval
qr/\Aevent: message_start\n.*"content_block":\{"type":"thinking","thinking":""[^}]*\}\}\n\n.*"delta":\{"type":"thinking_delta","thinking":"Think\."\}\}\n\n.*"thinking":" More\."\}\}\n\nevent: content_block_stop\ndata: \{"type":"content_block_stop","index":0\}\n\nevent: content_block_start\ndata: \{"type":"content_block_start","index":1,"content_block":\{"type":"text","text":""\}\}\n\n.*"text":"Done\."\}\}\n\n.*event: message_stop\n/s



=== TEST 7: a client that goes away mid-stream ...
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain hang; }
--- request eval
"POST /v1/messages\n$::CC"
--- timeout: 0.5
--- abort
--- ignore_response
--- wait: 1
--- error_log
client prematurely closed connection



=== TEST 8: ... and the provider saw nginx close its connection
--- config
    location = /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/closed/hang;
    }
--- request
GET /t
--- error_code: 200
--- response_body: peer
