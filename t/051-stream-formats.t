# Streaming from Anthropic (Messages API events) and Gemini
# (streamGenerateContent?alt=sse) providers, translated to OpenAI
# chat.completion.chunk events: text, tool calls, finish reasons, usage,
# in-band errors before and after the commit point.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMStream;
use LLMSchema;

my $a_overloaded = sse_event('{"type":"error","error":{"type":'
                             . '"overloaded_error","message":"Overloaded"}}',
                             'error');

my $a_tool = [
    sse_event('{"type":"message_start","message":{"id":"msg_2","type":'
        . '"message","role":"assistant","model":"claude-fake","content":[],'
        . '"stop_reason":null,"usage":{"input_tokens":20,"output_tokens":1}}}',
        'message_start'),
    sse_event('{"type":"content_block_start","index":0,"content_block":'
        . '{"type":"text","text":""}}', 'content_block_start'),
    sse_event('{"type":"content_block_delta","index":0,"delta":{"type":'
        . '"text_delta","text":"Let me look."}}', 'content_block_delta'),
    sse_event('{"type":"content_block_stop","index":0}',
        'content_block_stop'),
    sse_event('{"type":"content_block_start","index":1,"content_block":'
        . '{"type":"tool_use","id":"toolu_01","name":"get_weather",'
        . '"input":{}}}', 'content_block_start'),
    sse_event('{"type":"content_block_delta","index":1,"delta":{"type":'
        . '"input_json_delta","partial_json":"{\"city\": "}}',
        'content_block_delta'),
    sse_event('{"type":"content_block_delta","index":1,"delta":{"type":'
        . '"input_json_delta","partial_json":"\"Paris\"}"}}',
        'content_block_delta'),
    sse_event('{"type":"content_block_stop","index":1}',
        'content_block_stop'),
    sse_event('{"type":"message_delta","delta":{"stop_reason":"tool_use",'
        . '"stop_sequence":null},"usage":{"output_tokens":30}}',
        'message_delta'),
    sse_event('{"type":"message_stop"}', 'message_stop'),
];

my $g_call = "data: {\"candidates\":[{\"content\":{\"parts\":[{"
    . "\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":"
    . "\"Paris\"}}}],\"role\":\"model\"},\"finishReason\":\"STOP\","
    . "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":12,"
    . "\"candidatesTokenCount\":5,\"totalTokenCount\":17}}\r\n\r\n";

my $g_error = "data: {\"error\":{\"code\":503,\"message\":\"The model is "
    . "overloaded.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n";

stream_server(
    atext     => [sse_head(), { tiny => join('', anthropic_stream('Hel', 'lo')),
                                seg => 2 }],
    atool     => [sse_head(), @$a_tool],
    aerr      => [sse_head(), (anthropic_stream())[0], $a_overloaded],
    aerrlate  => [sse_head(), (anthropic_stream('part'))[0 .. 3], 0.2,
                  $a_overloaded],
    aping     => [sse_head(), (anthropic_stream())[0 .. 2], { hang => 1 }],
    acut      => [sse_head(), (anthropic_stream('part', 'ial'))[0 .. 4],
                  { cut => 1 }],
    amax      => [sse_head(), (anthropic_stream('long'))[0 .. 4],
                  sse_event('{"type":"content_block_stop","index":0}',
                            'content_block_stop'),
                  sse_event('{"type":"message_delta","delta":{"stop_reason":'
                            . '"max_tokens"},"usage":{"output_tokens":4}}',
                            'message_delta'),
                  sse_event('{"type":"message_stop"}', 'message_stop')],

    gtext_streamGenerateContent  =>
                 [sse_head(), { tiny => join('', gemini_stream('Hi', ' there')),
                                seg => 5 }],
    gcall_streamGenerateContent  => [sse_head(), $g_call],
    gerr_streamGenerateContent   => [sse_head(), $g_error],
    gblock_streamGenerateContent => [sse_head(),
                 "data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}\r\n\r\n"],
    gsafety_streamGenerateContent => [sse_head(),
                 (gemini_stream('I will', 'x'))[0],
                 "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":"
                 . "\" not\"}],\"role\":\"model\"},\"finishReason\":"
                 . "\"SAFETY\",\"index\":0}]}\r\n\r\n"],
    gcut_streamGenerateContent   => [sse_head(),
                 (gemini_stream('one', 'two'))[0], { cut => 1 }],
    good       => [sse_head(), openai_stream('from openai')],

    # events larger than the output buffers, after the commit point
    abig       => [sse_head(), anthropic_stream('a' x 6000, 'b' x 9000)],
    abigtool   => [sse_head(), $a_tool->[0],
                   sse_event('{"type":"content_block_start","index":0,'
                       . '"content_block":{"type":"tool_use","id":"toolu_9",'
                       . '"name":"save","input":{}}}', 'content_block_start'),
                   map({ sse_event('{"type":"content_block_delta","index":0,'
                             . '"delta":{"type":"input_json_delta",'
                             . '"partial_json":"' . $_ . '"}}',
                             'content_block_delta') }
                       '{\\"text\\": \\"' . 'p' x 6000, 'q' x 9000 . '\\"}'),
                   sse_event('{"type":"content_block_stop","index":0}',
                       'content_block_stop'),
                   sse_event('{"type":"message_delta","delta":{"stop_reason":'
                       . '"tool_use"},"usage":{"output_tokens":9}}',
                       'message_delta'),
                   sse_event('{"type":"message_stop"}', 'message_stop')],
    abigtiny   => [sse_head(), { tiny => join('', anthropic_stream('g' x 9000,
                                                                 'h' x 5000)),
                                 seg => 97 }],
    # chunks of 4060 to 4120 bytes: around what a 4 KiB buffer holds
    asweep     => [sse_head(), anthropic_stream(map { sprintf('%04d', $_)
                                                      . 'z' x ($_ - 4) }
                                                3900 .. 3960)],
    # in-band errors after the first content that quote the key
    aerrkey    => [sse_head(), (anthropic_stream('part'))[0 .. 3], 0.2,
                   sse_event('{"type":"error","error":{"type":'
                       . '"authentication_error","message":"invalid x-api-'
                       . 'key: sk-ant-stream-9c3e1a7f"}}', 'error')],
    gerrkey_streamGenerateContent => [sse_head(),
                   (gemini_stream('one', 'two'))[0], 0.2,
                   "data: {\"error\":{\"code\":400,\"message\":\"API key "
                   . "not valid: AIza-stream-5d7f3b1e\",\"status\":"
                   . "\"INVALID_ARGUMENT\"}}\r\n\r\n"],
    gbig_streamGenerateContent => [sse_head(),
                   gemini_stream('c' x 6000, 'd' x 9000)],
);

no_shuffle();

# every body the module answers with: OpenAI's schemas (t/schema/)
LLMSchema::check_bodies();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'EOF' . ($block->http_config // ''));
    llm_provider atext uri=/_a/atext format=anthropic api_key=ak;
    llm_provider atool uri=/_a/atool format=anthropic api_key=ak;
    llm_provider aerr uri=/_a/aerr format=anthropic api_key=ak;
    llm_provider aerrlate uri=/_a/aerrlate format=anthropic api_key=ak;
    llm_provider aping uri=/_a/aping format=anthropic api_key=ak;
    llm_provider acut uri=/_a/acut format=anthropic api_key=ak;
    llm_provider amax uri=/_a/amax format=anthropic api_key=ak;
    llm_provider gtext uri=/_g/gtext format=gemini model=gemini-fake;
    llm_provider gcall uri=/_g/gcall format=gemini model=gemini-fake;
    llm_provider gerr uri=/_g/gerr format=gemini model=gemini-fake;
    llm_provider gblock uri=/_g/gblock format=gemini model=gemini-fake;
    llm_provider gsafety uri=/_g/gsafety format=gemini model=gemini-fake;
    llm_provider gcut uri=/_g/gcut format=gemini model=gemini-fake;
    llm_provider good uri=/_o/good;
    llm_provider abig uri=/_a/abig format=anthropic api_key=ak;
    llm_provider abigtool uri=/_a/abigtool format=anthropic api_key=ak;
    llm_provider abigtiny uri=/_a/abigtiny format=anthropic api_key=ak;
    llm_provider asweep uri=/_a/asweep format=anthropic api_key=ak;
    llm_provider aerrkey uri=/_a/aerrkey format=anthropic
                 api_key=sk-ant-stream-9c3e1a7f;
    llm_provider gerrkey uri=/_g/gerrkey format=gemini model=gemini-fake
                 api_key=AIza-stream-5d7f3b1e;
    llm_provider gbig uri=/_g/gbig format=gemini model=gemini-fake;
EOF

    $block->set_value("config", <<'EOF' . ($block->config // ''));
    location ~ ^/_a/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
        proxy_http_version 1.1;
    }

    location ~ ^/_g/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1_$llm_gemini_method;
        proxy_http_version 1.1;
    }

    location ~ ^/_o/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
        proxy_http_version 1.1;
    }
EOF

    if (!defined $block->request) {
        $block->set_value("request", "POST /chat\n"
            . '{"model":"m","stream":true,'
            . '"stream_options":{"include_usage":true},'
            . '"messages":[{"role":"user","content":"hi"}]}');
    }

    $block->set_value("more_headers", "Content-Type: application/json")
        unless defined $block->more_headers;

    $block->set_value("no_error_log", "[alert]\n[crit]\nexited on signal")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: Anthropic text, two bytes at a time
--- config
    location /chat { llm_fallback_chain atext; }
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
X-LLM-Provider: atext
--- response_body_like eval
qr/\Adata: \{"id":"chatcmpl-[0-9a-f]{24}","object":"chat.completion.chunk","created":\d+,"model":"claude-fake","choices":\[\{"index":0,"delta":\{"role":"assistant","content":""\},"finish_reason":null\}\]\}\n\ndata: \{[^\n]*"delta":\{"content":"Hel"\}[^\n]*\n\ndata: \{[^\n]*"delta":\{"content":"lo"\}[^\n]*\n\ndata: \{[^\n]*"delta":\{\},"finish_reason":"stop"[^\n]*\n\ndata: \{[^\n]*"choices":\[\],"usage":\{"prompt_tokens":11,"completion_tokens":6,"total_tokens":17[^\n]*\n\ndata: \[DONE\]\n\n\z/



=== TEST 2: Anthropic tool use with input_json_delta
--- config
    location /chat { llm_fallback_chain atool; }
--- error_code: 200
--- response_body_like eval
qr/"content":"Let me look\.".*"tool_calls":\[\{"index":0,"id":"toolu_01","type":"function","function":\{"name":"get_weather","arguments":""\}\}\].*"tool_calls":\[\{"index":0,"function":\{"arguments":"\{\\"city\\": "\}\}\].*"tool_calls":\[\{"index":0,"function":\{"arguments":"\\"Paris\\"\}"\}\}\].*"finish_reason":"tool_calls".*"usage":\{"prompt_tokens":20,"completion_tokens":30,.*data: \[DONE\]\n\n\z/s



=== TEST 3: max_tokens becomes finish_reason length
--- config
    location /chat { llm_fallback_chain amax; }
--- error_code: 200
--- response_body_like: "finish_reason":"length"



=== TEST 4: an Anthropic error event before content falls back
--- config
    location /chat { llm_fallback_chain aerr good; }
--- error_code: 200
--- response_headers
X-LLM-Provider: good
X-LLM-Fallback: aerr:error
--- response_body_like eval
qr/\A(?!.*Overloaded).*"content":"from openai".*data: \[DONE\]\n\n\z/s



=== TEST 5: pings do not count as content: llm_attempt_timeout falls back
--- config
    location /chat {
        llm_attempt_timeout 400ms;
        llm_fallback_chain aping good;
    }
--- error_code: 200
--- response_headers
X-LLM-Fallback: aping:timeout



=== TEST 6: an Anthropic error event after content is relayed, translated
--- config
    location /chat { llm_fallback_chain aerrlate good; }
--- error_code: 200
--- response_headers
X-LLM-Provider: aerrlate
--- response_body_like eval
qr/"content":"part".*\n\ndata: \{"error":\{[^\n]*"message":"Overloaded"[^\n]*\}\}\n\ndata: \[DONE\]\n\n\z/s
--- error_log
llm provider "aerrlate" stream failed after its first content: an error event



=== TEST 7: an Anthropic stream cut before message_stop
--- config
    location /chat { llm_fallback_chain acut good; }
--- error_code: 200
--- response_body_like eval
qr/"content":"part".*"content":"ial".*\n\ndata: \{"error":\{.*"code":"llm_stream_interrupted"\}\}\n\ndata: \[DONE\]\n\n\z/s



=== TEST 8: Gemini text, CR LF events five bytes at a time, on the stream URL
--- config
    location /chat { llm_fallback_chain gtext; }
--- error_code: 200
--- response_headers
X-LLM-Provider: gtext
--- response_body_like eval
qr/\Adata: \{[^\n]*"delta":\{"role":"assistant","content":"Hi"\}[^\n]*\n\ndata: \{[^\n]*"delta":\{"content":" there"\}[^\n]*\n\n(data: \{[^\n]*"finish_reason":"stop"[^\n]*\n\n)+data: \{[^\n]*"choices":\[\],"usage":\{"prompt_tokens":8,"completion_tokens":5,"total_tokens":13[^\n]*\n\ndata: \[DONE\]\n\n\z/



=== TEST 9: a Gemini function call becomes a tool call delta
--- config
    location /chat { llm_fallback_chain gcall; }
--- error_code: 200
--- response_body_like eval
qr/"tool_calls":\[\{"index":0,"id":"call_[^"]+","type":"function","function":\{"name":"get_weather","arguments":"\{\\"city\\":\\"Paris\\"\}"\}\}\].*"finish_reason":"tool_calls".*"usage":\{"prompt_tokens":12,"completion_tokens":5,.*data: \[DONE\]\n\n\z/s



=== TEST 10: a Gemini error in the stream before content falls back
--- config
    location /chat { llm_fallback_chain gerr good; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: gerr:error



=== TEST 11: a blocked Gemini prompt falls back
--- config
    location /chat { llm_fallback_chain gblock good; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: gblock:invalid_response



=== TEST 12: SAFETY becomes content_filter
--- config
    location /chat { llm_fallback_chain gsafety; }
--- error_code: 200
--- response_body_like eval
qr/"content":"I will".*"content":" not".*"finish_reason":"content_filter".*data: \[DONE\]\n\n\z/s



=== TEST 13: a Gemini stream cut before its finishReason
--- config
    location /chat { llm_fallback_chain gcut good; }
--- error_code: 200
--- response_body_like eval
qr/"content":"one".*\n\ndata: \{"error":\{.*"code":"llm_stream_interrupted"\}\}\n\ndata: \[DONE\]\n\n\z/s



=== TEST 14: without include_usage there is no usage chunk
--- request
POST /chat
{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}
--- config
    location /chat { llm_fallback_chain atext; }
--- error_code: 200
--- response_body_like eval
qr/\A(?!.*"usage").*"finish_reason":"stop".*data: \[DONE\]\n\n\z/s



=== TEST 15: $llm_ttft and the stream's token counts in the access log
--- no_schema_check: 1
--- http_config
    log_format llm '$llm_provider ttft=$llm_ttft '
                   'prompt=$llm_prompt_tokens completion=$llm_completion_tokens';
--- config
    location /chat {
        access_log logs/llm.log llm;
        llm_fallback_chain atool;
    }
    location = /log {
        alias logs/llm.log;
    }
--- request eval
["POST /chat\n" . '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}', "GET /log"]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/data: \[DONE\]/, qr/\Aatool ttft=\d+ prompt=20 completion=30\n\z/]



=== TEST 16: Anthropic text deltas of 6000 and 9000 characters
Each chunk is larger than an output buffer.
--- config
    location /chat { llm_fallback_chain abig; }
--- error_code: 200
--- response_body_like eval
qr/\Adata: [^\n]*"role":"assistant"[^\n]*\n\ndata: [^\n]*"delta":\{"content":"a{6000}"\}[^\n]*\n\ndata: [^\n]*"delta":\{"content":"b{9000}"\}[^\n]*\n\ndata: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: [^\n]*"usage"[^\n]*\n\ndata: \[DONE\]\n\n\z/
--- no_error_log
[alert]
[error]
stream failed



=== TEST 17: an Anthropic tool call whose arguments come in 6000 and 9000 characters
--- config
    location /chat { llm_fallback_chain abigtool; }
--- error_code: 200
--- response_body_like eval
qr/"tool_calls":\[\{"index":0,"id":"toolu_9","type":"function","function":\{"name":"save","arguments":""\}\}\][^\n]*\n\ndata: [^\n]*"arguments":"\{\\"text\\": \\"p{6000}"\}[^\n]*\n\ndata: [^\n]*"arguments":"q{9000}\\"\}"\}[^\n]*\n\ndata: [^\n]*"finish_reason":"tool_calls"[^\n]*\n\n.*data: \[DONE\]\n\n\z/s
--- no_error_log
[alert]
[error]
stream failed



=== TEST 18: Gemini text parts of 6000 and 9000 characters
--- config
    location /chat { llm_fallback_chain gbig; }
--- error_code: 200
--- response_body_like eval
qr/\Adata: [^\n]*"delta":\{"role":"assistant","content":"c{6000}"\}[^\n]*\n\ndata: [^\n]*"delta":\{"content":"d{9000}"\}[^\n]*\n\n(data: [^\n]*"finish_reason":"stop"[^\n]*\n\n)+data: [^\n]*"usage"[^\n]*\n\ndata: \[DONE\]\n\n\z/
--- no_error_log
[alert]
[error]
stream failed



=== TEST 19: translated chunks of 4060 to 4120 bytes, around a buffer's size
--- config
    location /chat { llm_fallback_chain asweep; }
--- error_code: 200
--- response_body_like eval
my $texts = join '', map { sprintf('data: [^\n]*"delta":\{"content":"%04d%s"\}[^\n]*\n\n', $_, 'z' x ($_ - 4)) } 3900 .. 3960;
qr/\Adata: [^\n]*"role":"assistant"[^\n]*\n\n$texts(?:data: [^\n]*\n\n){2}data: \[DONE\]\n\n\z/
--- no_error_log
[alert]
[error]
stream failed



=== TEST 20: an Anthropic error event after content that quotes the key is relayed redacted
--- config
    location /chat { llm_fallback_chain aerrkey; }
--- error_code: 200
--- response_body_like eval
qr/\A(?!.*sk-ant-stream)(?=.*"content":"part").*\n\ndata: \{"error":\{[^\n]*"message":"invalid x-api-key: \[redacted\]"[^\n]*\}\}\n\ndata: \[DONE\]\n\n\z/s
--- no_error_log eval
[qr/\[alert\]/, qr/\[(?!debug)[a-z]+\].*sk-ant-stream/]



=== TEST 21: a Gemini error after content that quotes the key is relayed redacted
--- config
    location /chat { llm_fallback_chain gerrkey; }
--- error_code: 200
--- response_body_like eval
qr/\A(?!.*AIza-stream)(?=.*"content":"one").*\n\ndata: \{"error":\{[^\n]*"message":"API key not valid: \[redacted\]"[^\n]*\}\}\n\ndata: \[DONE\]\n\n\z/s
--- no_error_log eval
[qr/\[alert\]/, qr/\[(?!debug)[a-z]+\].*AIza-stream/]



=== TEST 22: events of 9000 and 5000 characters arriving 97 bytes at a time
--- config
    location /chat { llm_fallback_chain abigtiny; }
--- timeout: 10
--- error_code: 200
--- response_body_like eval
qr/\Adata: [^\n]*"role":"assistant"[^\n]*\n\ndata: [^\n]*"delta":\{"content":"g{9000}"\}[^\n]*\n\ndata: [^\n]*"delta":\{"content":"h{5000}"\}[^\n]*\n\ndata: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: [^\n]*"usage"[^\n]*\n\ndata: \[DONE\]\n\n\z/
--- no_error_log
[alert]
[error]
stream failed
