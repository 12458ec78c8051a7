# The anthropic format: requests translated to the Messages API and checked
# by a fake that is as strict as the real one (t/lib/LLMProviders.pm),
# answers, finish reasons, usage and errors translated back to OpenAI.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMProviders;
use LLMSchema;

no_shuffle();

# every body the module answers with: OpenAI's schemas (t/schema/)
LLMSchema::check_bodies();

add_block_preprocessor(\&LLMProviders::blocks);

run_tests();

__DATA__

=== TEST 1: plain chat: headers, model, default max_tokens, answer
--- config
    location /chat { llm_fallback_chain claude; }
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('request', $r, q({"model":"claude-3-5-haiku-latest",
        "messages":[{"role":"user","content":"hi"}],"max_tokens":4096}));
    LLMProviders::anthropic_message(content => 'Hello! How can I help you today?');
})
--- error_code: 200
--- response_headers
Content-Type: application/json
X-LLM-Provider: claude
X-LLM-Attempts: 1
--- response_body_filters eval
\&LLMProviders::canon
--- response_body
{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"Hello! How can I help you today?","refusal":null,"role":"assistant"}}],"created":0,"id":"msg_01XFDUDYJgAACzvnptvVoYEL","model":"claude-3-5-haiku-20241022","object":"chat.completion","usage":{"completion_tokens":12,"prompt_tokens":25,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":37}}
--- no_error_log
[error]
[warn]



=== TEST 2: system and developer messages go to "system"
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"system","content":"You are terse."},{"role":"developer","content":[{"type":"text","text":"Answer in French."}]},{"role":"user","content":"hi"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('system', $r->{system}, q([{"type":"text","text":"You are terse."},
        {"type":"text","text":"Answer in French."}]));
    LLMProviders::expect('messages', $r->{messages}, q([{"role":"user","content":"hi"}]));
    LLMProviders::anthropic_message(content => 'Salut.');
})
--- error_code: 200
--- response_body_like: "content":"Salut\."
--- no_error_log
[error]



=== TEST 3: one system message is sent as a string
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('system', $r->{system}, '"Be brief."');
    LLMProviders::anthropic_message(content => 'ok');
})
--- error_code: 200
--- response_body_like: "content":"ok"



=== TEST 4: multi-turn: consecutive turns of one role are merged
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Hi"},{"role":"user","content":[{"type":"text","text":"Are you there?"}]},{"role":"assistant","content":"Yes."},{"role":"assistant","content":[{"type":"text","text":"How can I help?"}]},{"role":"user","content":"Tell me a joke."}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('messages', $r->{messages}, q([
        {"role":"user","content":[{"type":"text","text":"Hi"},
                                  {"type":"text","text":"Are you there?"}]},
        {"role":"assistant","content":[{"type":"text","text":"Yes."},
                                  {"type":"text","text":"How can I help?"}]},
        {"role":"user","content":"Tell me a joke."}]));
    LLMProviders::anthropic_message(content => 'Why did the chicken cross the road?');
})
--- error_code: 200
--- response_body_like: "content":"Why did the chicken cross the road\?"
--- no_error_log
[error]



=== TEST 5: a conversation that starts with the assistant gets a user turn
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"system","content":"Be nice."},{"role":"assistant","content":"Welcome! How can I help?"},{"role":"user","content":"A joke, please."}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('messages', $r->{messages}, q([
        {"role":"user","content":"."},
        {"role":"assistant","content":"Welcome! How can I help?"},
        {"role":"user","content":"A joke, please."}]));
    LLMProviders::anthropic_message(content => 'Knock knock.');
})
--- error_code: 200
--- response_body_like: "content":"Knock knock\."



=== TEST 6: tool definitions and a tool call answer
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},{"type":"function","function":{"name":"get_time"}}],"tool_choice":"required","parallel_tool_calls":false}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('tools', $r->{tools}, q([
        {"name":"get_weather","description":"Current weather",
         "input_schema":{"type":"object","properties":{"city":{"type":"string"}},
                         "required":["city"]}},
        {"name":"get_time","input_schema":{"type":"object","properties":{}}}]));
    LLMProviders::expect('tool_choice', $r->{tool_choice},
        q({"type":"any","disable_parallel_tool_use":true}));
    LLMProviders::anthropic_message(stop_reason => 'tool_use', content => [
        { type => 'text', text => 'Let me check.' },
        { type => 'tool_use', id => 'toolu_01A09q90qw90lq917835lq9',
          name => 'get_weather', input => { city => 'Paris' } }]);
})
--- error_code: 200
--- response_body_filters eval
\&LLMProviders::canon
--- response_body
{"choices":[{"finish_reason":"tool_calls","index":0,"logprobs":null,"message":{"content":"Let me check.","refusal":null,"role":"assistant","tool_calls":[{"function":{"arguments":"{\"city\":\"Paris\"}","name":"get_weather"},"id":"toolu_01A09q90qw90lq917835lq9","type":"function"}]}}],"created":0,"id":"msg_01XFDUDYJgAACzvnptvVoYEL","model":"claude-3-5-haiku-20241022","object":"chat.completion","usage":{"completion_tokens":12,"prompt_tokens":25,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":37}}



=== TEST 7: tool_choice for one function, "auto" and "none"
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{}}}}],"tool_choice":{"type":"function","function":{"name":"get_weather"}}}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('tool_choice', $r->{tool_choice},
        q({"type":"tool","name":"get_weather"}));
    LLMProviders::anthropic_message(stop_reason => 'tool_use', content => [
        { type => 'tool_use', id => 'toolu_1', name => 'get_weather',
          input => {} }]);
})
--- error_code: 200
--- response_body_like: "message":\{"role":"assistant","content":null,"refusal":null,"tool_calls":\[\{"id":"toolu_1","type":"function","function":\{"name":"get_weather","arguments":"\{\}"\}\}\]\},"logprobs":null,"finish_reason":"tool_calls"



=== TEST 8: tool results round trip as one user turn of tool_result blocks
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Weather and time in Paris?"},{"role":"assistant","content":"Checking.","tool_calls":[{"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"functions.get_time:1","type":"function","function":{"name":"get_time","arguments":""}}]},{"role":"tool","tool_call_id":"call_abc","content":"{\"temp\":21}"},{"role":"tool","tool_call_id":"functions.get_time:1","content":[{"type":"text","text":"12:00"}]},{"role":"user","content":"Thanks!"}],"tools":[{"type":"function","function":{"name":"get_weather"}},{"type":"function","function":{"name":"get_time"}}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('messages', $r->{messages}, q([
        {"role":"user","content":"Weather and time in Paris?"},
        {"role":"assistant","content":[
            {"type":"text","text":"Checking."},
            {"type":"tool_use","id":"call_abc","name":"get_weather",
             "input":{"city":"Paris"}},
            {"type":"tool_use","id":"functions_get_time_1","name":"get_time",
             "input":{}}]},
        {"role":"user","content":[
            {"type":"tool_result","tool_use_id":"call_abc",
             "content":"{\"temp\":21}"},
            {"type":"tool_result","tool_use_id":"functions_get_time_1",
             "content":[{"type":"text","text":"12:00"}]},
            {"type":"text","text":"Thanks!"}]}]));
    LLMProviders::anthropic_message(content => 'It is 21 degrees at noon.');
})
--- error_code: 200
--- response_body_like: "content":"It is 21 degrees at noon\.".*"finish_reason":"stop"
--- no_error_log
[error]



=== TEST 9: image parts: data URL as base64, http URL as url source
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":[{"type":"text","text":"Compare"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==","detail":"high"}},{"type":"image_url","image_url":{"url":"https://upload.example.com/cat.jpg"}},{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}},{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0xLjQK"}}]}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('content', $r->{messages}[0]{content}, q([
        {"type":"text","text":"Compare"},
        {"type":"image","source":{"type":"base64","media_type":"image/png",
         "data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}},
        {"type":"image","source":{"type":"url",
         "url":"https://upload.example.com/cat.jpg"}},
        {"type":"document","source":{"type":"base64",
         "media_type":"application/pdf","data":"JVBERi0xLjQK"}}]));
    LLMProviders::anthropic_message(content => 'A pixel and a cat.');
})
--- error_code: 200
--- response_body_like: "content":"A pixel and a cat\."
--- error_log
"claude" format anthropic: not sent: image_url.detail
"claude" format anthropic: not sent: images other than jpeg, png, gif, webp
--- no_error_log
[error]



=== TEST 10: stop sequences; a stop_sequence answer is "stop"
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Count"}],"stop":["5","\n\n"]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('stop_sequences', $r->{stop_sequences}, '["5"]');
    LLMProviders::anthropic_message(content => '1 2 3 4 ',
                                    stop_reason => 'stop_sequence',
                                    stop_sequence => '5');
})
--- error_code: 200
--- response_body_like: "content":"1 2 3 4 ","refusal":null\},"logprobs":null,"finish_reason":"stop"
--- error_log
not sent: stop sequences that are empty or white space



=== TEST 11: a stop string is a one-element list
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Count"}],"stop":"END"}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('stop_sequences', $r->{stop_sequences}, '["END"]');
    LLMProviders::anthropic_message(content => '1 2 3');
})
--- error_code: 200
--- response_body_like: "finish_reason":"stop"



=== TEST 12: max_completion_tokens wins over max_tokens; max_tokens is "length"
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"A long story"}],"max_tokens":100,"max_completion_tokens":50}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    die "max_tokens $r->{max_tokens}\n" unless $r->{max_tokens} == 50;
    LLMProviders::anthropic_message(content => 'Once upon a time',
                                    stop_reason => 'max_tokens');
})
--- error_code: 200
--- response_body_like: "content":"Once upon a time","refusal":null\},"logprobs":null,"finish_reason":"length"



=== TEST 13: the provider's max_tokens= is the default
--- http_config eval
"    llm_provider short uri=/_llm/claude format=anthropic model=claude-3-5-haiku-latest api_key=$LLMProviders::ANTHROPIC_KEY max_tokens=777;"
--- config
    location /chat { llm_fallback_chain short; }
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    die "max_tokens $r->{max_tokens}\n" unless $r->{max_tokens} == 777;
    LLMProviders::anthropic_message(content => 'short');
})
--- error_code: 200
--- response_body_like: "content":"short"



=== TEST 14: temperature is clamped to 1, top_p kept, the rest dropped
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}],"temperature":1.7,"top_p":0.5,"presence_penalty":0.3,"frequency_penalty":0.1,"seed":7,"logprobs":true,"n":1,"user":"user-42","response_format":{"type":"json_object"}}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    die "temperature $r->{temperature}\n" unless $r->{temperature} == 1;
    die "top_p $r->{top_p}\n" unless $r->{top_p} == 0.5;
    LLMProviders::expect('metadata', $r->{metadata}, '{"user_id":"user-42"}');
    LLMProviders::anthropic_message(content => 'hello');
})
--- error_code: 200
--- response_body_like: "content":"hello"
--- error_log
not sent: temperature outside [0, 1]
not sent: presence_penalty
not sent: frequency_penalty
not sent: seed
not sent: logprobs
not sent: response_format
--- no_error_log
[error]



=== TEST 15: without model= the client's model is asked for
--- http_config eval
"    llm_provider anyclaude uri=/_llm/claude format=anthropic api_key=$LLMProviders::ANTHROPIC_KEY;"
--- config
    location /chat { llm_fallback_chain anyclaude; }
--- request
POST /chat
{"model":"claude-opus-4-1","messages":[{"role":"user","content":"hi"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    die "model $r->{model}\n" unless $r->{model} eq 'claude-opus-4-1';
    LLMProviders::anthropic_message(content => 'hi', model => 'claude-opus-4-1-20250805');
})
--- error_code: 200
--- response_body_like: "model":"claude-opus-4-1-20250805"



=== TEST 16: a refusal is "content_filter"
--- config
    location /chat { llm_fallback_chain claude; }
--- tcp_reply eval
LLMProviders::anthropic(sub {
    LLMProviders::anthropic_message(content => 'I cannot help with that.',
                                    stop_reason => 'refusal');
})
--- error_code: 200
--- response_body_like: "finish_reason":"content_filter"



=== TEST 17: usage counts cached input in prompt_tokens; token variables
--- config
    location /chat {
        llm_fallback_chain claude;
        add_header X-Tokens "$llm_prompt_tokens/$llm_completion_tokens/$llm_model";
    }
--- tcp_reply eval
LLMProviders::anthropic(sub {
    LLMProviders::anthropic_message(content => 'cached', usage => {
        input_tokens => 10, output_tokens => 5,
        cache_creation_input_tokens => 100, cache_read_input_tokens => 2000 });
})
--- error_code: 200
--- response_headers
X-Tokens: 2110/5/claude-3-5-haiku-20241022
--- response_body_like: "usage":\{"prompt_tokens":2110,"completion_tokens":5,"total_tokens":2115,"prompt_tokens_details":\{"cached_tokens":2000\}\}



=== TEST 18: an invalid request error comes back in the OpenAI shape
--- config
    location /chat { llm_fallback_chain claude openai; }
--- tcp_reply eval
LLMProviders::anthropic(sub {
    LLMProviders::anthropic_error(400, 'invalid_request_error',
        'messages.0.content: prompt is too long: 210000 tokens > 200000 maximum');
})
--- error_code: 400
--- response_body chomp
{"error":{"message":"messages.0.content: prompt is too long: 210000 tokens > 200000 maximum","type":"invalid_request_error","param":null,"code":null}}
--- response_headers
X-LLM-Attempts: 1



=== TEST 19: a wrong key: authentication_error, 401
--- http_config
    llm_provider badkey uri=/_llm/claude format=anthropic model=claude-3-5-haiku-latest api_key=sk-ant-wrong;
--- config
    location /chat { llm_fallback_chain badkey; }
--- tcp_reply eval
LLMProviders::anthropic(sub { die "not reached\n" })
--- error_code: 401
--- response_body chomp
{"error":{"message":"invalid x-api-key","type":"authentication_error","param":null,"code":null}}



=== TEST 20: the model a request must name: Anthropic's own 400
--- http_config eval
"    llm_provider anyclaude uri=/_llm/claude format=anthropic api_key=$LLMProviders::ANTHROPIC_KEY;"
--- config
    location /chat { llm_fallback_chain anyclaude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub { die "not reached\n" })
--- error_code: 400
--- response_body chomp
{"error":{"message":"model: Field required","type":"invalid_request_error","param":null,"code":null}}



=== TEST 21: 529 overloaded_error is http_529 and falls back (http_5xx)
--- http_config
    llm_provider claude529 uri=/_llm/s/anthropic/529 format=anthropic model=claude-3-5-haiku-latest api_key=k;
--- config
    location /chat { llm_fallback_chain claude529 openai; }
--- error_code: 200
--- response_headers
X-LLM-Provider: openai
X-LLM-Fallback: claude529:http_529
--- response_body_like: "content":"hello from ok"
--- error_log
llm provider "claude529" attempt failed: http_529



=== TEST 22: 529 as the last provider: the chain is exhausted
--- http_config
    llm_provider claude529 uri=/_llm/s/anthropic/529 format=anthropic model=claude-3-5-haiku-latest api_key=k;
--- config
    location /chat { llm_fallback_chain claude529; }
--- error_code: 502
--- response_body_like: "attempts":\[\{"provider":"claude529","status":529,"reason":"http_529"\}\]



=== TEST 23: 429 rate_limit_error falls back
--- http_config
    llm_provider claude429 uri=/_llm/s/anthropic/429 format=anthropic model=claude-3-5-haiku-latest api_key=k;
--- config
    location /chat { llm_fallback_chain claude429 openai; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: claude429:http_429



=== TEST 24: 429 not in llm_fallback_on: the error in the OpenAI shape
--- http_config
    llm_provider claude429 uri=/_llm/s/anthropic/429 format=anthropic model=claude-3-5-haiku-latest api_key=k;
--- config
    location /chat {
        llm_fallback_on error timeout;
        llm_fallback_chain claude429 openai;
    }
--- error_code: 429
--- response_body chomp
{"error":{"message":"Number of request tokens has exceeded your per-minute rate limit","type":"rate_limit_error","param":null,"code":null}}



=== TEST 25: a 200 without text or tool call is invalid_response
--- http_config
    llm_provider claudeempty uri=/_llm/s/anthropic/empty format=anthropic model=claude-3-5-haiku-latest api_key=k;
--- config
    location /chat { llm_fallback_chain claudeempty openai; }
--- error_code: 200
--- response_headers
X-LLM-Provider: openai
X-LLM-Fallback: claudeempty:invalid_response
--- error_log
"claudeempty" answer is not usable: no text and no tool call



=== TEST 26: a 200 that is not JSON is invalid_response
--- http_config
    llm_provider claudegarbage uri=/_llm/garbage format=anthropic model=claude-3-5-haiku-latest api_key=k;
--- config
    location /chat { llm_fallback_chain claudegarbage openai; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: claudegarbage:invalid_response



=== TEST 27: fallback across formats: openai 503, then anthropic answers
--- config
    location /chat { llm_fallback_chain openai503 claude; }
--- request
POST /chat
{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"temperature":0.2}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('request', $r, q({"model":"claude-3-5-haiku-latest",
        "system":"Be brief.","messages":[{"role":"user","content":"hi"}],
        "max_tokens":4096,"temperature":0.2}));
    LLMProviders::anthropic_message(content => 'Hi!');
})
--- error_code: 200
--- response_headers
X-LLM-Provider: claude
X-LLM-Attempts: 2
X-LLM-Fallback: openai503:http_503
--- response_body_filters eval
\&LLMProviders::canon
--- response_body
{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"Hi!","refusal":null,"role":"assistant"}}],"created":0,"id":"msg_01XFDUDYJgAACzvnptvVoYEL","model":"claude-3-5-haiku-20241022","object":"chat.completion","usage":{"completion_tokens":12,"prompt_tokens":25,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":37}}



=== TEST 28: a provider that answers a stream request with JSON is replayed as SSE
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Weather?"}],"stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"get_weather"}}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    die "no stream asked for\n" unless $r->{stream};
    LLMProviders::anthropic_message(stop_reason => 'tool_use', content => [
        { type => 'text', text => 'Checking.' },
        { type => 'tool_use', id => 'toolu_9', name => 'get_weather',
          input => { city => 'Paris' } }]);
})
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
--- response_body_filters eval
\&LLMProviders::canon_sse
--- response_body eval
'data: {"choices":[{"delta":{"content":"Checking.","refusal":null,"role":"assistant","tool_calls":[{"function":{"arguments":"{\"city\":\"Paris\"}","name":"get_weather"},"id":"toolu_9","index":0,"type":"function"}]},"finish_reason":null,"index":0}],"created":0,"id":"msg_01XFDUDYJgAACzvnptvVoYEL","model":"claude-3-5-haiku-20241022","object":"chat.completion.chunk"}

data: {"choices":[{"delta":{},"finish_reason":"tool_calls","index":0}],"created":0,"id":"msg_01XFDUDYJgAACzvnptvVoYEL","model":"claude-3-5-haiku-20241022","object":"chat.completion.chunk"}

data: {"choices":[],"created":0,"id":"msg_01XFDUDYJgAACzvnptvVoYEL","model":"claude-3-5-haiku-20241022","object":"chat.completion.chunk","usage":{"completion_tokens":12,"prompt_tokens":25,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":37}}

data: [DONE]

'



=== TEST 29: messages of unknown roles are dropped
--- config
    location /chat { llm_fallback_chain claude; }
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"},{"role":"function","name":"f","content":"x"},{"role":"user","content":"there"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('messages', $r->{messages}, q([{"role":"user",
        "content":[{"type":"text","text":"hi"},{"type":"text","text":"there"}]}]));
    LLMProviders::anthropic_message(content => 'ok');
})
--- error_code: 200
--- error_log
not sent: messages with an unknown role



=== TEST 30: the anthropic-version header goes to anthropic providers only
--- http_config
    llm_provider echo uri=/_llm/echo;
--- config
    location /chat { llm_fallback_chain echo; }
--- error_code: 200
--- response_body_like: key=\[\] .*method=\[POST\]
--- response_body_unlike: anthropic
