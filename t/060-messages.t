# The Anthropic Messages front door (llm_api messages, README "Front
# doors"): to an anthropic provider the client's bytes go as they are but
# for "model", with its anthropic-version and anthropic-beta and never its
# credential, and the answer and events come back as they came; to openai
# and gemini providers the request is translated and the answer and the
# stream come back as an Anthropic message and Anthropic's events.
# Errors in Anthropic's shape; count_tokens.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMStream;

sub json_reply {
    my ($body, $status) = @_;
    $status //= 200;
    return "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
         . "Content-Length: " . length($body) . "\r\nConnection: close"
         . "\r\n\r\n$body";
}

our $AMsg = '{"id":"msg_01Abc","type":"message","role":"assistant",'
    . '"model":"claude-sonnet-4-5-20250929","content":[{"type":"thinking",'
    . '"thinking":"The user greets.","signature":"EqQBCgIYAhIMsig=="},'
    . '{"type":"text","text":"Hi there!"}],"stop_reason":"end_turn",'
    . '"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":6,'
    . '"cache_creation_input_tokens":0,"cache_read_input_tokens":10}}';

our $AToolMsg = '{"id":"msg_02","type":"message","role":"assistant",'
    . '"model":"claude-fake","content":[{"type":"tool_use","id":"toolu_01",'
    . '"name":"get_weather","input":{"city":"Paris"}}],"stop_reason":'
    . '"tool_use","stop_sequence":null,"usage":{"input_tokens":30,'
    . '"output_tokens":9}}';

our $OMsg = '{"id":"chatcmpl-o1","object":"chat.completion","created":'
    . '1700000000,"model":"gpt-fake","choices":[{"index":0,"message":'
    . '{"role":"assistant","content":"Hello from openai.","refusal":null},'
    . '"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":'
    . '20,"completion_tokens":5,"total_tokens":25,"prompt_tokens_details":'
    . '{"cached_tokens":8}}}';

our $OTool = '{"id":"chatcmpl-o2","object":"chat.completion","created":'
    . '1700000000,"model":"gpt-fake","choices":[{"index":0,"message":'
    . '{"role":"assistant","content":null,"refusal":null,"tool_calls":[{'
    . '"id":"call_1","type":"function","function":{"name":"get_weather",'
    . '"arguments":"{\"city\":\"Paris\"}"}}]},"logprobs":null,'
    . '"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":20,'
    . '"completion_tokens":5,"total_tokens":25}}';

our $AOverloaded = '{"type":"error","error":{"type":"overloaded_error",'
    . '"message":"Overloaded"},"request_id":"req_011"}';

my @astream = (
    sse_event('{"type":"message_start","message":{"id":"msg_s1","type":'
        . '"message","role":"assistant","model":"claude-fake","content":[],'
        . '"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":'
        . '11,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,'
        . '"output_tokens":1}}}', 'message_start'),
    sse_event('{"type":"content_block_start","index":0,"content_block":'
        . '{"type":"thinking","thinking":"","signature":""}}',
        'content_block_start'),
    sse_event('{"type": "ping"}', 'ping'),
    sse_event('{"type":"content_block_delta","index":0,"delta":{"type":'
        . '"thinking_delta","thinking":"Hmm."}}', 'content_block_delta'),
    sse_event('{"type":"content_block_delta","index":0,"delta":{"type":'
        . '"signature_delta","signature":"EqQBsig=="}}',
        'content_block_delta'),
    sse_event('{"type":"content_block_stop","index":0}',
        'content_block_stop'),
    sse_event('{"type":"content_block_start","index":1,"content_block":'
        . '{"type":"text","text":""}}', 'content_block_start'),
    sse_event('{"type":"content_block_delta","index":1,"delta":{"type":'
        . '"text_delta","text":"Hello"}}', 'content_block_delta'),
    sse_event('{"type":"content_block_delta","index":1,"delta":{"type":'
        . '"text_delta","text":" world"}}', 'content_block_delta'),
    sse_event('{"type":"content_block_stop","index":1}',
        'content_block_stop'),
    sse_event('{"type":"message_delta","delta":{"stop_reason":"end_turn",'
        . '"stop_sequence":null},"usage":{"output_tokens":6}}',
        'message_delta'),
    sse_event('{"type":"message_stop"}', 'message_stop'),
);

our $AStream = join '', @astream;

my $a_error = sse_event('{"type":"error","error":{"type":'
                        . '"overloaded_error","message":"Overloaded"}}',
                        'error');

stream_server(
    amsg      => [json_reply($AMsg)],
    atool     => [json_reply($AToolMsg)],
    a529      => [json_reply($AOverloaded, 529)],
    a400      => [json_reply('{"type":"error","error":{"type":'
                             . '"invalid_request_error","message":'
                             . '"prompt is too long: 210000 tokens > '
                             . '200000 maximum"}}', 400)],
    a429      => [json_reply('{"type":"error","error":{"type":'
                             . '"rate_limit_error","message":"Number of '
                             . 'request tokens has exceeded your per-minute '
                             . 'rate limit"}}', 429)],
    a401      => [json_reply('{"type":"error","error":{"type":'
                             . '"authentication_error","message":"invalid '
                             . 'x-api-key"}}', 401)],
    o403      => [json_reply('{"error":{"message":"Project does not have '
                             . 'access to model","type":"invalid_request_'
                             . 'error","param":null,"code":'
                             . '"model_not_found"}}', 403)],
    athink    => [json_reply('{"id":"msg_t","type":"message","role":'
                             . '"assistant","model":"claude-fake","content":'
                             . '[{"type":"thinking","thinking":"Hmm",'
                             . '"signature":"c2ln"}],"stop_reason":'
                             . '"max_tokens","stop_sequence":null,"usage":'
                             . '{"input_tokens":3,"output_tokens":9}}')],
    anotmsg   => [json_reply('{"type":"error","error":{"type":"api_error",'
                             . '"message":"in a 200"}}')],
    omsg      => [json_reply($OMsg)],
    otool     => [json_reply($OTool)],
    o503      => [json_reply('{"error":{"message":"overloaded","type":'
                             . '"server_error","param":null,"code":null}}',
                             503)],
    astream   => [sse_head(), $AStream],
    aerr      => [sse_head(), @astream[0 .. 2], $a_error],
    alate     => [sse_head(), @astream[0 .. 7], 0.2, $a_error],
    ostream   => [sse_head(), openai_stream('Hello', ' world')],
    otoolstr  => [sse_head(),
                  sse_event(openai_chunk('{"role":"assistant","content":null,'
                      . '"tool_calls":[{"index":0,"id":"call_9","type":'
                      . '"function","function":{"name":"get_weather",'
                      . '"arguments":""}}]}')),
                  sse_event(openai_chunk('{"tool_calls":[{"index":0,'
                      . '"function":{"arguments":"{\"city\":"}}]}')),
                  sse_event(openai_chunk('{"tool_calls":[{"index":0,'
                      . '"function":{"arguments":"\"Paris\"}"}}]}')),
                  sse_event(openai_chunk('{}', 'tool_calls')),
                  "data: [DONE]\n\n"],
    gstream_streamGenerateContent => [sse_head(), gemini_stream('Hi', ' there')],
    ctok_count => [json_reply('{"input_tokens":42}')],
);

our $Req = '{"model":"claude-sonnet-4-5","max_tokens":1024,'
    . '"messages":[{"role":"user","content":"Hello"}]}';

our $StreamReq = '{"model":"claude-sonnet-4-5","max_tokens":1024,'
    . '"stream":true,"messages":[{"role":"user","content":"Hello"}]}';

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'EOF' . ($block->http_config // ''));
    llm_provider amsg uri=/_a/amsg format=anthropic api_key=sk-ant-prov;
    llm_provider amodel uri=/_a/amsg format=anthropic api_key=sk-ant-prov
                 model=claude-opus-4-1;
    llm_provider atool uri=/_a/atool format=anthropic api_key=sk-ant-prov;
    llm_provider a529 uri=/_a/a529 format=anthropic api_key=sk-ant-prov;
    llm_provider a400 uri=/_a/a400 format=anthropic api_key=sk-ant-prov;
    llm_provider a429 uri=/_a/a429 format=anthropic api_key=sk-ant-prov;
    llm_provider athink uri=/_a/athink format=anthropic api_key=sk-ant-prov;
    llm_provider anotmsg uri=/_a/anotmsg format=anthropic api_key=sk-ant-p;
    llm_provider a401 uri=/_a/a401 format=anthropic api_key=sk-ant-prov;
    llm_provider o403 uri=/_o/o403 api_key=sk-oai;
    llm_provider astream uri=/_a/astream format=anthropic api_key=sk-ant-p;
    llm_provider aerr uri=/_a/aerr format=anthropic api_key=sk-ant-p;
    llm_provider alate uri=/_a/alate format=anthropic api_key=sk-ant-p;
    llm_provider ctok uri=/_a/ctok format=anthropic api_key=sk-ant-p;
    llm_provider omsg uri=/_o/omsg model=gpt-fake api_key=sk-oai;
    llm_provider otool uri=/_o/otool model=gpt-fake api_key=sk-oai;
    llm_provider o503 uri=/_o/o503 api_key=sk-oai;
    llm_provider ostream uri=/_o/ostream api_key=sk-oai;
    llm_provider otoolstr uri=/_o/otoolstr api_key=sk-oai;
    llm_provider gstream uri=/_g/gstream format=gemini model=gemini-fake
                 api_key=AIza-g;
EOF

    $block->set_value("config", <<'EOF' . ($block->config // ''));
    location ~ ^/_a/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
        proxy_http_version 1.1;
    }

    location ~ ^/_a/(\w+)/count_tokens$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1_count;
        proxy_http_version 1.1;
    }

    location ~ ^/_o/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
        proxy_http_version 1.1;
    }

    location ~ ^/_g/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1_$llm_gemini_method;
        proxy_http_version 1.1;
    }

    location ~ ^/seen/(req|head)/(\w+)$ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/$1/$2;
    }
EOF

    if (!defined $block->request) {
        $block->set_value("request", "POST /v1/messages\n$::Req");
    }

    $block->set_value("more_headers", "Content-Type: application/json\n"
                      . "x-api-key: sk-ant-client-secret\n"
                      . "Authorization: Bearer sk-client\n"
                      . "anthropic-version: 2023-06-01")
        unless defined $block->more_headers;

    $block->set_value("no_error_log", "[alert]\n[crit]\nexited on signal")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: same format: the client's bytes go, the provider's come back
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain amsg; }
--- request eval
["POST /v1/messages\n$::Req", "GET /seen/req/amsg"]
--- error_code eval
[200, 200]
--- response_headers eval
["Content-Type: application/json\nX-LLM-Provider: amsg\nX-LLM-Attempts: 1",
 ""]
--- response_body eval
[$::AMsg, $::Req]



=== TEST 2: the provider's model= is the only change to the body
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain amodel; }
--- request eval
["POST /v1/messages\n" . '{"model":"claude-sonnet-4-5", "max_tokens" : 1024, "top_k":5,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"Hello \u00e9"}]}',
 "GET /seen/req/amsg"]
--- error_code eval
[200, 200]
--- response_body eval
[$::AMsg, '{"model":"claude-opus-4-1", "max_tokens" : 1024, "top_k":5,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"Hello \u00e9"}]}']



=== TEST 3: anthropic-version and anthropic-beta go, the client's credentials never
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain amsg; }
--- request eval
["POST /v1/messages\n$::Req", "GET /seen/head/amsg"]
--- more_headers
Content-Type: application/json
x-api-key: sk-ant-client-secret
Authorization: Bearer sk-client
Cookie: session=1
anthropic-version: 2024-10-22
anthropic-beta: interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14
anthropic-beta: context-1m-2025-08-07
--- error_code eval
[200, 200]
--- response_body_like eval
["", qr/\A(?=.*^x-api-key: sk-ant-prov\r$)(?=.*^anthropic-version: 2024-10-22\r$)(?=.*^anthropic-beta: interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14\r$)(?=.*^anthropic-beta: context-1m-2025-08-07\r$)(?!.*sk-ant-client-secret)(?!.*sk-client)(?!.*session=1)(?!.*anthropic-version: 2023)/ms]



=== TEST 4: without the client's anthropic-version the provider gets 2023-06-01
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain amsg; }
--- request eval
["POST /v1/messages\n$::Req", "GET /seen/head/amsg"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200]
--- response_body_like eval
["", qr/\A(?=.*^anthropic-version: 2023-06-01\r$)(?!.*anthropic-beta)/ms]



=== TEST 5: across formats: an openai provider, answered as an Anthropic message
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain omsg; }
--- request eval
["POST /v1/messages\n" . '{"model":"claude-sonnet-4-5","max_tokens":100,"system":"Be brief.","stop_sequences":["END"],"temperature":0.5,"metadata":{"user_id":"u-42"},"messages":[{"role":"user","content":"Hello"}]}',
 "GET /seen/req/omsg"]
--- error_code eval
[200, 200]
--- response_headers eval
["Content-Type: application/json\nX-LLM-Provider: omsg", ""]
--- response_body_like eval
[qr/\A\{"id":"msg_[^"]+","type":"message","role":"assistant","model":"gpt-fake","content":\[\{"type":"text","text":"Hello from openai\."\}\],"stop_reason":"end_turn","stop_sequence":null,"usage":\{"input_tokens":12,"output_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":8\}\}\z/,
 qr/\A(?=.*"model":"gpt-fake")(?=.*"max_tokens":100)(?=.*"messages":\[\{"role":"system","content":"Be brief\."\},\{"role":"user","content":"Hello"\}\])(?=.*"stop":\["END"\])(?=.*"temperature":0\.5)(?=.*"user":"u-42")(?!.*stop_sequences)(?!.*metadata)/]



=== TEST 6: tools across formats: tool_use and tool_result round trip
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain otool; }
--- request eval
["POST /v1/messages\n" . '{"model":"c","max_tokens":100,"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true},"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":[{"type":"text","text":"Looking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Rome"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"},{"type":"text","text":"And Paris?"}]}]}',
 "GET /seen/req/otool"]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/"content":\[\{"type":"tool_use","id":"call_1","name":"get_weather","input":\{"city":"Paris"\}\}\],"stop_reason":"tool_use"/,
 qr/\A(?=.*"tools":\[\{"type":"function","function":\{"name":"get_weather",(?:"description":"Weather",)?"parameters":\{"type":"object","properties":\{"city":\{"type":"string"\}\}\}(?:,"description":"Weather")?\}\}\])(?=.*"tool_choice":"required")(?=.*"parallel_tool_calls":false)(?=.*\{"role":"assistant","content":"Looking\.","tool_calls":\[\{"id":"toolu_1","type":"function","function":\{"name":"get_weather","arguments":"\{\\"city\\":\\"Rome\\"\}"\}\}\]\})(?=.*\{"role":"tool","tool_call_id":"toolu_1","content":"sunny"\},\{"role":"user","content":)/]



=== TEST 7: images: base64 and url sources become image_url parts
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain omsg; }
--- request eval
["POST /v1/messages\n" . '{"model":"c","max_tokens":100,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},{"type":"text","text":"What is this?"}]}]}',
 "GET /seen/req/omsg"]
--- error_code eval
[200, 200]
--- response_body_like eval
["", qr/"image_url":\{"url":"data:image\/png;base64,iVBORw0KGgo="\}.*"image_url":\{"url":"https:\/\/example\.com\/cat\.jpg"\}.*"text":"What is this\?"/]



=== TEST 8: validation: max_tokens is required
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain amsg; }
--- request
POST /v1/messages
{"model":"c","messages":[{"role":"user","content":"hi"}]}
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body chomp
{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}



=== TEST 9: validation: the first turn is the user's
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain amsg; }
--- request
POST /v1/messages
{"model":"c","max_tokens":10,"messages":[{"role":"assistant","content":"hi"}]}
--- error_code: 400
--- response_body_like: ^\{"type":"error","error":\{"type":"invalid_request_error","message":"messages: first message must use the \\"user\\" role"\}\}$



=== TEST 10: validation: an unknown block type names the field
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain amsg; }
--- request
POST /v1/messages
{"model":"c","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"video","url":"x"}]}]}
--- error_code: 400
--- response_body_like: "type":"invalid_request_error","message":"messages\.0\.content\.1\.type: [^"]*'video'



=== TEST 11: validation: a tool_result must answer a tool_use of the turn before
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain amsg; }
--- request
POST /v1/messages
{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_x","content":"r"}]}]}
--- error_code: 400
--- response_body_like: "message":"messages\.2\.content\.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x



=== TEST 12: validation: not JSON, and an empty body
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain amsg; }
--- request eval
["POST /v1/messages\n{\"model\":", "POST /v1/messages\n"]
--- error_code eval
[400, 400]
--- response_body_like eval
[qr/^\{"type":"error","error":\{"type":"invalid_request_error","message":"There was an error parsing the body/,
 qr/^\{"type":"error","error":\{"type":"invalid_request_error","message":"The request body is empty/]



=== TEST 13: fallback: anthropic 529, then openai, answered as an Anthropic message
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain a529 omsg; }
--- error_code: 200
--- response_headers
X-LLM-Provider: omsg
X-LLM-Fallback: a529:http_529
--- response_body_like: ^\{"id":"msg_[^"]+","type":"message","role":"assistant","model":"gpt-fake","content":\[\{"type":"text","text":"Hello from openai\."\}\]



=== TEST 14: the chain exhausted: 502 api_error, x-should-retry: false
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain a529 o503; }
--- error_code: 502
--- response_headers
x-should-retry: false
Content-Type: application/json
--- response_body_like: ^\{"type":"error","error":\{"type":"api_error","message":"Every provider of the fallback chain failed\."\}\}$
--- error_log
every attempt failed



=== TEST 15: every circuit open: 529 overloaded_error with Retry-After
--- http_config
    llm_circuit_breaker zone=cb:64k failures=1 cooldown=60s;
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain a529; }
--- request eval
["POST /v1/messages\n$::Req", "POST /v1/messages\n$::Req"]
--- error_code eval
[502, 529]
--- response_headers eval
["", "Retry-After: 60"]
--- response_body_like eval
[qr/"api_error"/, qr/^\{"type":"error","error":\{"type":"overloaded_error","message":"[^"]+"\}\}$/]



=== TEST 16: a provider error not in llm_fallback_on is relayed with Anthropic's type
--- config
    location = /v1/messages {
        llm_api messages;
        llm_fallback_chain a400 omsg;
        llm_fallback_on error timeout http_5xx;
    }
--- error_code: 400
--- response_body chomp
{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}



=== TEST 17: a stream, same format: the provider's events as they came
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain astream; }
--- request eval
"POST /v1/messages\n$::StreamReq"
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
X-LLM-Provider: astream
--- response_body eval
$::AStream



=== TEST 18: an error event before the first delta falls back, across formats
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain aerr ostream; }
--- request eval
"POST /v1/messages\n$::StreamReq"
--- error_code: 200
--- response_headers
X-LLM-Provider: ostream
X-LLM-Fallback: aerr:error
--- response_body_like eval
qr/\Aevent: message_start\ndata: \{"type":"message_start","message":\{"id":"msg_[^"]+","type":"message","role":"assistant","model":"[^"]+","content":\[\],"stop_reason":null,"stop_sequence":null,"usage":\{[^}]*\}\}\}\n\nevent: content_block_start\ndata: \{"type":"content_block_start","index":0,"content_block":\{"type":"text","text":""\}\}\n\nevent: content_block_delta\ndata: \{"type":"content_block_delta","index":0,"delta":\{"type":"text_delta","text":"Hello"\}\}\n\nevent: content_block_delta\ndata: \{"type":"content_block_delta","index":0,"delta":\{"type":"text_delta","text":" world"\}\}\n\nevent: content_block_stop\ndata: \{"type":"content_block_stop","index":0\}\n\nevent: message_delta\ndata: \{"type":"message_delta","delta":\{"stop_reason":"end_turn","stop_sequence":null\},"usage":\{[^}]*"output_tokens":4[^}]*\}\}\n\nevent: message_stop\ndata: \{"type":"message_stop"\}\n\n\z/



=== TEST 19: a failure after the first delta ends the stream with event: error
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain alate ostream; }
--- request eval
"POST /v1/messages\n$::StreamReq"
--- error_code: 200
--- response_headers
X-LLM-Provider: alate
--- response_body_like eval
qr/\Aevent: message_start\n.*"text":"Hello"\}\}\n\nevent: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"[^"]*Overloaded[^"]*"\}\}\n\n\z/s



=== TEST 20: a tool call stream from openai as tool_use with input_json_delta
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain otoolstr; }
--- request eval
"POST /v1/messages\n$::StreamReq"
--- error_code: 200
--- response_body_like eval
qr/"content_block":\{"type":"tool_use","id":"call_9","name":"get_weather","input":\{\}\}\}\n\n.*"delta":\{"type":"input_json_delta","partial_json":"\{\\"city\\":"\}\}\n\n.*"partial_json":"\\"Paris\\"\}"\}\}\n\n.*"stop_reason":"tool_use".*event: message_stop\n/s



=== TEST 21: a gemini stream as Anthropic events
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain gstream; }
--- request eval
"POST /v1/messages\n$::StreamReq"
--- error_code: 200
--- response_body_like eval
qr/\Aevent: message_start\n.*"text":"Hi"\}\}\n\n.*"text":" there"\}\}\n\n.*"stop_reason":"end_turn".*"output_tokens":5.*event: message_stop\ndata: \{"type":"message_stop"\}\n\n\z/s



=== TEST 22: a non-stream answer to a stream request is replayed as events
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain omsg; }
--- request eval
"POST /v1/messages\n$::StreamReq"
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
--- response_body_like eval
qr/\Aevent: message_start\n.*"text":"Hello from openai\."\}\}\n\n.*event: message_stop\n/s



=== TEST 23: count_tokens: the first anthropic provider counts
--- config
    location = /v1/messages/count_tokens {
        llm_api count_tokens;
        llm_fallback_chain omsg ctok;
    }
--- request eval
["POST /v1/messages/count_tokens\n" . '{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello"}]}',
 "GET /seen/req/ctok_count"]
--- error_code eval
[200, 200]
--- response_body eval
['{"input_tokens":42}', '{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello"}]}']



=== TEST 24: count_tokens without an anthropic provider: 404 not_found_error
--- config
    location = /v1/messages/count_tokens {
        llm_api count_tokens;
        llm_fallback_chain omsg;
    }
--- request
POST /v1/messages/count_tokens
{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello"}]}
--- error_code: 404
--- response_body_like: ^\{"type":"error","error":\{"type":"not_found_error","message":"[^"]+"\}\}$



=== TEST 25: count_tokens checks the request as Anthropic does
--- config
    location = /v1/messages/count_tokens {
        llm_api count_tokens;
        llm_fallback_chain ctok;
    }
--- request
POST /v1/messages/count_tokens
{"model":"claude-sonnet-4-5","messages":[]}
--- error_code: 400
--- response_body_like: "type":"invalid_request_error","message":"messages



=== TEST 26: a request too large for client_max_body_size: 413 in Anthropic's shape
--- config
    location = /v1/messages {
        llm_api messages;
        llm_fallback_chain amsg;
        client_max_body_size 10;
    }
--- error_code: 413
--- response_body_like: ^\{"type":"error","error":\{"type":"request_too_large","message":"[^"]+"\}\}$



=== TEST 27: GET is not allowed, in Anthropic's shape
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain amsg; }
--- request
GET /v1/messages
--- error_code: 405
--- response_headers
Allow: POST
--- response_body_like: ^\{"type":"error","error":\{"type":"invalid_request_error","message":"[^"]+"\}\}$



=== TEST 28: relayed provider errors get Anthropic's type for their status
--- config
    location = /a429 { llm_api messages; llm_fallback_chain a429; llm_fallback_on error timeout; }
    location = /a401 { llm_api messages; llm_fallback_chain a401; llm_fallback_on error timeout; }
    location = /o403 { llm_api messages; llm_fallback_chain o403; llm_fallback_on error timeout; }
--- request eval
["POST /a429\n$::Req", "POST /a401\n$::Req", "POST /o403\n$::Req"]
--- error_code eval
[429, 401, 403]
--- response_body eval
['{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}',
 '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}',
 '{"type":"error","error":{"type":"permission_error","message":"Project does not have access to model"}}']



=== TEST 29: count_tokens when every anthropic circuit is open: 404
--- http_config
    llm_circuit_breaker zone=cb:64k failures=1 cooldown=60s;
--- config
    location = /v1/messages { llm_api messages; llm_fallback_chain a529; }
    location = /v1/messages/count_tokens {
        llm_api count_tokens;
        llm_fallback_chain a529;
    }
--- request eval
["POST /v1/messages\n$::Req", "POST /v1/messages/count_tokens\n" . '{"model":"m","messages":[{"role":"user","content":"Hello"}]}']
--- error_code eval
[502, 404]
--- response_body_like eval
[qr/"api_error"/, qr/^\{"type":"error","error":\{"type":"not_found_error","message":"[^"]+"\}\}$/]



=== TEST 30: an answer without text or tool use, or not a message, falls back; tokens are counted
--- config
    location = /v1/messages {
        llm_api messages;
        llm_fallback_chain athink anotmsg amsg;
        add_header X-Tokens $llm_prompt_tokens/$llm_completion_tokens;
        add_header X-Model $llm_model;
    }
--- error_code: 200
--- response_headers
X-LLM-Provider: amsg
X-LLM-Fallback: athink:invalid_response,anotmsg:invalid_response
X-Tokens: 12/6
X-Model: claude-sonnet-4-5-20250929
--- response_body eval
$::AMsg
