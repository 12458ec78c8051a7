# The gemini format: requests translated to generateContent (the model in
# the URL through $llm_provider_model) and checked by a fake as strict as
# the real API (t/lib/LLMProviders.pm); answers, candidates, safety
# blocks, finish reasons, usage and errors translated back to OpenAI.

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

=== TEST 1: plain chat: model in the URL, key header, body, answer
--- config
    location /chat { llm_fallback_chain gem; }
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r, $http) = @_;
    die "model $http->{model}\n" unless $http->{model} eq 'gemini-2.0-flash';
    LLMProviders::expect('request', $r,
        q({"contents":[{"role":"user","parts":[{"text":"hi"}]}]}));
    LLMProviders::gemini_answer(text => 'Hello! How can I help?');
})
--- error_code: 200
--- response_headers
Content-Type: application/json
X-LLM-Provider: gem
--- response_body_filters eval
\&LLMProviders::canon
--- response_body
{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"Hello! How can I help?","refusal":null,"role":"assistant"}}],"created":0,"id":"mAitaLmkHPPlz7IPvtfUqQ4","model":"gemini-2.0-flash-001","object":"chat.completion","usage":{"completion_tokens":9,"prompt_tokens":21,"total_tokens":30}}
--- no_error_log
[error]
[warn]



=== TEST 2: without model= the client's model is in the URL, escaped
--- http_config eval
"    llm_provider anygem uri=/_llm/gem format=gemini api_key=$LLMProviders::GEMINI_KEY;"
--- config
    location /chat { llm_fallback_chain anygem; }
--- request
POST /chat
{"model":"tuned/my model","messages":[{"role":"user","content":"hi"}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r, $http) = @_;
    die "path $http->{path}\n"
        unless $http->{path} eq '/v1beta/models/tuned%2Fmy%20model:generateContent';
    LLMProviders::gemini_answer(text => 'tuned');
})
--- error_code: 200
--- response_body_like: "content":"tuned"



=== TEST 3: a fixed URL with the model in it, no variable
--- http_config eval
"    llm_provider fixed uri=/_llm/gemfixed format=gemini api_key=$LLMProviders::GEMINI_KEY;"
--- config
    location = /_llm/gemfixed {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/v1beta/models/gemini-2.5-flash:generateContent;
    }
    location /chat { llm_fallback_chain fixed; }
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r, $http) = @_;
    die "model $http->{model}\n" unless $http->{model} eq 'gemini-2.5-flash';
    LLMProviders::gemini_answer(text => 'fixed', model => 'gemini-2.5-flash');
})
--- error_code: 200
--- response_body_like: "model":"gemini-2.5-flash"



=== TEST 4: $llm_provider_model is empty outside an attempt
--- config
    location /chat {
        llm_fallback_chain openai;
        add_header X-PM "[$llm_provider_model]";
    }
--- error_code: 200
--- response_headers
X-PM: []



=== TEST 5: system and developer messages go to systemInstruction
--- config
    location /chat { llm_fallback_chain gem; }
--- request
POST /chat
{"messages":[{"role":"system","content":"You are terse."},{"role":"developer","content":[{"type":"text","text":"Answer in French."}]},{"role":"user","content":"hi"}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('systemInstruction', $r->{systemInstruction},
        q({"parts":[{"text":"You are terse."},{"text":"Answer in French."}]}));
    LLMProviders::expect('contents', $r->{contents},
        q([{"role":"user","parts":[{"text":"hi"}]}]));
    LLMProviders::gemini_answer(text => 'Salut.');
})
--- error_code: 200
--- response_body_like: "content":"Salut\."



=== TEST 6: multi-turn: "model" turns, consecutive turns merged
--- config
    location /chat { llm_fallback_chain gem; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Hi"},{"role":"user","content":"Are you there?"},{"role":"assistant","content":"Yes."},{"role":"assistant","content":[{"type":"text","text":"How can I help?"}]},{"role":"user","content":"A joke."}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('contents', $r->{contents}, q([
        {"role":"user","parts":[{"text":"Hi"},{"text":"Are you there?"}]},
        {"role":"model","parts":[{"text":"Yes."},{"text":"How can I help?"}]},
        {"role":"user","parts":[{"text":"A joke."}]}]));
    LLMProviders::gemini_answer(text => 'Knock knock.');
})
--- error_code: 200
--- response_body_like: "content":"Knock knock\."



=== TEST 7: tools, a forced function, and a function call answer
--- config
    location /chat { llm_fallback_chain gem; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false},"strict":true}}],"tool_choice":{"type":"function","function":{"name":"get_weather"}}}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('tools', $r->{tools}, q([{"functionDeclarations":[
        {"name":"get_weather","description":"Current weather",
         "parametersJsonSchema":{"type":"object",
            "properties":{"city":{"type":"string"}},"required":["city"],
            "additionalProperties":false}}]}]));
    LLMProviders::expect('toolConfig', $r->{toolConfig}, q({
        "functionCallingConfig":{"mode":"ANY",
                                 "allowedFunctionNames":["get_weather"]}}));
    LLMProviders::gemini_answer(parts => [
        { functionCall => { name => 'get_weather', args => { city => 'Paris' } },
          thoughtSignature => 'c2lnbmF0dXJlLTE=' }]);
})
--- error_code: 200
--- response_body_like: ^\{"id":"mAitaLmkHPPlz7IPvtfUqQ4","object":"chat.completion","created":\d+,"model":"gemini-2.0-flash-001","choices":\[\{"index":0,"message":\{"role":"assistant","content":null,"refusal":null,"tool_calls":\[\{"id":"call_[0-9a-f]{24}_0","type":"function","function":\{"name":"get_weather","arguments":"\{\\"city\\":\\"Paris\\"\}"\},"extra_content":\{"google":\{"thought_signature":"c2lnbmF0dXJlLTE="\}\}\}\]\},"logprobs":null,"finish_reason":"tool_calls"\}\]
--- error_log
not sent: tools.function.strict



=== TEST 8: tool_choice "none", "auto" and "required"
--- config
    location /chat { llm_fallback_chain gem; }
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('toolConfig', $r->{toolConfig},
        q({"functionCallingConfig":{"mode":"NONE"}}));
    LLMProviders::expect('tools', $r->{tools},
        q([{"functionDeclarations":[{"name":"f"}]}]));
    LLMProviders::gemini_answer(text => 'no tools');
})
--- error_code: 200
--- response_body_like: "content":"no tools"



=== TEST 9: function results round trip: signatures kept, names found
--- config
    location /chat { llm_fallback_chain gem; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Weather and time in Paris?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"},"extra_content":{"google":{"thought_signature":"c2lnbmF0dXJlLTE="}}},{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"{\"temp\":21}"},{"role":"tool","tool_call_id":"call_2","content":"12:00"}],"tools":[{"type":"function","function":{"name":"get_weather"}},{"type":"function","function":{"name":"get_time"}}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('contents', $r->{contents}, q([
        {"role":"user","parts":[{"text":"Weather and time in Paris?"}]},
        {"role":"model","parts":[
            {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},
             "thoughtSignature":"c2lnbmF0dXJlLTE="},
            {"functionCall":{"name":"get_time","args":{}}}]},
        {"role":"user","parts":[
            {"functionResponse":{"name":"get_weather","response":{"temp":21}}},
            {"functionResponse":{"name":"get_time",
                                 "response":{"output":"12:00"}}}]}]));
    LLMProviders::gemini_answer(text => '21 degrees at noon.');
})
--- error_code: 200
--- response_body_like: "content":"21 degrees at noon\.".*"finish_reason":"stop"
--- no_error_log
[error]



=== TEST 10: calls made by another model: Gemini's "no signature" value
--- config
    location /chat { llm_fallback_chain gem; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":"Let me see.","tool_calls":[{"id":"toolu_01","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"toolu_01","content":"sunny"}],"tools":[{"type":"function","function":{"name":"get_weather"}}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('model turn', $r->{contents}[1], q({"role":"model",
        "parts":[{"text":"Let me see."},
                 {"functionCall":{"name":"get_weather","args":{}},
                  "thoughtSignature":"skip_thought_signature_validator"}]}));
    LLMProviders::gemini_answer(text => 'Sunny.');
})
--- error_code: 200
--- response_body_like: "content":"Sunny\."



=== TEST 11: image parts: inlineData and fileData
--- config
    location /chat { llm_fallback_chain gem; }
--- request
POST /chat
{"messages":[{"role":"user","content":[{"type":"text","text":"Compare"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},{"type":"image_url","image_url":{"url":"https://upload.example.com/cat.JPG?s=1"}},{"type":"image_url","image_url":{"url":"https://example.com/render"}}]}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('parts', $r->{contents}[0]{parts}, q([
        {"text":"Compare"},
        {"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}},
        {"fileData":{"fileUri":"https://upload.example.com/cat.JPG?s=1",
                     "mimeType":"image/jpeg"}},
        {"fileData":{"fileUri":"https://example.com/render"}}]));
    LLMProviders::gemini_answer(text => 'Cats.');
})
--- error_code: 200
--- response_body_like: "content":"Cats\."



=== TEST 12: generation config: max tokens, temperature, top_p, stop, n
--- config
    location /chat { llm_fallback_chain gem; }
--- request
POST /chat
{"messages":[{"role":"user","content":"Two stories"}],"max_completion_tokens":64,"temperature":1.5,"top_p":0.9,"stop":["THE END","\n\n"],"n":2,"seed":7,"presence_penalty":0.5,"frequency_penalty":0.25,"user":"u1","logprobs":true}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('generationConfig', $r->{generationConfig}, q({
        "maxOutputTokens":64,"temperature":1.5,"topP":0.9,
        "stopSequences":["THE END","\n\n"],"candidateCount":2,"seed":7,
        "presencePenalty":0.5,"frequencyPenalty":0.25}));
    my $a = LLMProviders::gemini_answer(text => 'Once');
    push @{ $a->{candidates} }, {
        content => { parts => [{ text => 'Long ago' }], role => 'model' },
        finishReason => 'MAX_TOKENS', index => 1 };
    $a;
})
--- error_code: 200
--- response_body_like: "choices":\[\{"index":0,"message":\{"role":"assistant","content":"Once","refusal":null\},"logprobs":null,"finish_reason":"stop"\},\{"index":1,"message":\{"role":"assistant","content":"Long ago","refusal":null\},"logprobs":null,"finish_reason":"length"\}\]
--- error_log
not sent: user
not sent: logprobs



=== TEST 13: the provider's max_tokens= is the default
--- http_config eval
"    llm_provider gem777 uri=/_llm/gem format=gemini model=gemini-2.0-flash api_key=$LLMProviders::GEMINI_KEY max_tokens=777;"
--- config
    location /chat { llm_fallback_chain gem777; }
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('generationConfig', $r->{generationConfig},
        '{"maxOutputTokens":777}');
    LLMProviders::gemini_answer(text => 'ok');
})
--- error_code: 200



=== TEST 14: response_format json_schema: JSON mode with the schema
--- config
    location /chat { llm_fallback_chain gem; }
--- request
POST /chat
{"messages":[{"role":"user","content":"A city"}],"response_format":{"type":"json_schema","json_schema":{"name":"city","schema":{"type":"object","properties":{"name":{"type":"string"}}}}}}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('generationConfig', $r->{generationConfig}, q({
        "responseMimeType":"application/json",
        "responseJsonSchema":{"type":"object",
                              "properties":{"name":{"type":"string"}}}}));
    LLMProviders::gemini_answer(text => '{"name":"Paris"}');
})
--- error_code: 200
--- response_body_like: "content":"\{\\"name\\":\\"Paris\\"\}"



=== TEST 15: a safety stop with text is "content_filter"
--- config
    location /chat { llm_fallback_chain gem; }
--- tcp_reply eval
LLMProviders::gemini(sub {
    LLMProviders::gemini_answer(text => 'Partial answer', finish => 'SAFETY');
})
--- error_code: 200
--- response_body_like: "content":"Partial answer","refusal":null\},"logprobs":null,"finish_reason":"content_filter"



=== TEST 16: RECITATION is "content_filter", MAX_TOKENS "length"
--- config
    location /chat { llm_fallback_chain gem; }
--- tcp_reply eval
LLMProviders::gemini(sub {
    my $a = LLMProviders::gemini_answer(text => 'To be', finish => 'RECITATION');
    push @{ $a->{candidates} }, {
        content => { parts => [{ text => 'or not' }], role => 'model' },
        finishReason => 'MAX_TOKENS', index => 1 };
    $a;
})
--- error_code: 200
--- response_body_like: "finish_reason":"content_filter"\},\{"index":1,.*"finish_reason":"length"



=== TEST 17: a candidate blocked for safety without text is invalid_response
--- http_config
    llm_provider gemblocked uri=/_llm/s/gemini/blocked format=gemini model=gemini-2.0-flash api_key=k;
--- config
    location /chat { llm_fallback_chain gemblocked openai; }
--- error_code: 200
--- response_headers
X-LLM-Provider: openai
X-LLM-Fallback: gemblocked:invalid_response
--- error_log
"gemblocked" answer is not usable: no candidate with text or a function call



=== TEST 18: a blocked prompt is invalid_response
--- config
    location /chat { llm_fallback_chain gem openai; }
--- tcp_reply eval
LLMProviders::gemini(sub {
    { promptFeedback => { blockReason => 'SAFETY', safetyRatings => [] },
      usageMetadata => { promptTokenCount => 8, totalTokenCount => 8 },
      modelVersion => 'gemini-2.0-flash-001' };
})
--- error_code: 200
--- response_headers
X-LLM-Provider: openai
X-LLM-Fallback: gem:invalid_response
--- error_log
"gem" answer is not usable: the prompt was blocked



=== TEST 19: usage: thoughts count as completion (reasoning) tokens
--- config
    location /chat {
        llm_fallback_chain gem;
        add_header X-Tokens "$llm_prompt_tokens/$llm_completion_tokens";
    }
--- tcp_reply eval
LLMProviders::gemini(sub {
    LLMProviders::gemini_answer(text => 'Thought about it.', usage => {
        promptTokenCount => 100, candidatesTokenCount => 20,
        thoughtsTokenCount => 300, cachedContentTokenCount => 64,
        totalTokenCount => 420 });
})
--- error_code: 200
--- response_headers
X-Tokens: 100/320
--- response_body_like: "usage":\{"prompt_tokens":100,"completion_tokens":320,"total_tokens":420,"prompt_tokens_details":\{"cached_tokens":64\},"completion_tokens_details":\{"reasoning_tokens":300\}\}



=== TEST 20: thought parts are not part of the content: reasoning_content
--- config
    location /chat { llm_fallback_chain gem; }
--- tcp_reply eval
LLMProviders::gemini(sub {
    LLMProviders::gemini_answer(parts => [
        { text => 'Let me think...', thought => JSON::PP::true },
        { text => 'Forty-two.' }]);
})
--- error_code: 200
--- response_body_like: "content":"Forty-two\.","refusal":null,"reasoning_content":"Let me think\.\.\."\}



=== TEST 21: an INVALID_ARGUMENT error: 400 with the status as type
--- config
    location /chat { llm_fallback_chain gem openai; }
--- tcp_reply eval
LLMProviders::gemini(sub {
    LLMProviders::gemini_error(400, 'INVALID_ARGUMENT',
        'The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).');
})
--- error_code: 400
--- response_body chomp
{"error":{"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","type":"INVALID_ARGUMENT","param":null,"code":null}}



=== TEST 22: no key: PERMISSION_DENIED, 403
--- http_config
    llm_provider nokey uri=/_llm/gem format=gemini model=gemini-2.0-flash;
--- config
    location /chat { llm_fallback_chain nokey; }
--- tcp_reply eval
LLMProviders::gemini(sub { die "not reached\n" })
--- error_code: 403
--- response_body_like: ^\{"error":\{"message":"Method doesn't allow unregistered callers.*","type":"PERMISSION_DENIED","param":null,"code":null\}\}$



=== TEST 23: RESOURCE_EXHAUSTED (429) falls back
--- config
    location /chat { llm_fallback_chain gem openai; }
--- tcp_reply eval
LLMProviders::gemini(sub {
    LLMProviders::gemini_error(429, 'RESOURCE_EXHAUSTED',
        'Resource has been exhausted (e.g. check quota).');
})
--- error_code: 200
--- response_headers
X-LLM-Provider: openai
X-LLM-Fallback: gem:http_429



=== TEST 24: fallback across formats: openai 503, anthropic 529, gemini
--- http_config
    llm_provider claude529 uri=/_llm/s/anthropic/529 format=anthropic model=claude-3-5-haiku-latest api_key=k;
--- config
    location /chat { llm_fallback_chain openai503 claude529 gem; }
--- request
POST /chat
{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"max_tokens":20}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('request', $r, q({
        "contents":[{"role":"user","parts":[{"text":"hi"}]}],
        "systemInstruction":{"parts":[{"text":"Be brief."}]},
        "generationConfig":{"maxOutputTokens":20}}));
    LLMProviders::gemini_answer(text => 'Hi!');
})
--- error_code: 200
--- response_headers
X-LLM-Provider: gem
X-LLM-Attempts: 3
X-LLM-Fallback: openai503:http_503,claude529:http_529
--- response_body_filters eval
\&LLMProviders::canon
--- response_body
{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"Hi!","refusal":null,"role":"assistant"}}],"created":0,"id":"mAitaLmkHPPlz7IPvtfUqQ4","model":"gemini-2.0-flash-001","object":"chat.completion","usage":{"completion_tokens":9,"prompt_tokens":21,"total_tokens":30}}



=== TEST 25: gemini 503 UNAVAILABLE falls back to anthropic
--- http_config
    llm_provider gem503 uri=/_llm/s/gemini/503 format=gemini model=gemini-2.0-flash api_key=k;
    llm_provider claudeok uri=/_llm/s/anthropic/ok format=anthropic model=claude-3-5-haiku-latest api_key=k;
--- config
    location /chat { llm_fallback_chain gem503 claudeok; }
--- error_code: 200
--- response_headers
X-LLM-Provider: claudeok
X-LLM-Fallback: gem503:http_503
--- response_body_like: "content":"hello from claude"



=== TEST 26: a stream client gets the translated answer replayed as SSE
--- config
    location /chat { llm_fallback_chain gem; }
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}],"stream":true}
--- tcp_reply eval
LLMProviders::gemini(sub {
    LLMProviders::gemini_answer(text => 'Hello there!');
})
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
--- response_body_filters eval
\&LLMProviders::canon_sse
--- response_body eval
'data: {"choices":[{"delta":{"content":"Hello there!","refusal":null,"role":"assistant"},"finish_reason":null,"index":0}],"created":0,"id":"mAitaLmkHPPlz7IPvtfUqQ4","model":"gemini-2.0-flash-001","object":"chat.completion.chunk"}

data: {"choices":[{"delta":{},"finish_reason":"stop","index":0}],"created":0,"id":"mAitaLmkHPPlz7IPvtfUqQ4","model":"gemini-2.0-flash-001","object":"chat.completion.chunk"}

data: [DONE]

'



=== TEST 27: the provider location behind an internal redirect
--- config
    location = /_llm/gemredir {
        internal;
        rewrite ^ /_llm/gemreal last;
    }
    location = /_llm/gemreal {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/v1beta/models/$llm_provider_model:generateContent;
    }
    location /chat { llm_fallback_chain gemr; }
--- http_config eval
"    llm_provider gemr uri=/_llm/gemredir format=gemini model=gemini-2.0-flash-lite api_key=$LLMProviders::GEMINI_KEY;"
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r, $http) = @_;
    die "model $http->{model}\n" unless $http->{model} eq 'gemini-2.0-flash-lite';
    LLMProviders::gemini_answer(text => 'redirected');
})
--- error_code: 200
--- response_body_like: "content":"redirected"



=== TEST 28: a variable URL whose host is an upstream block: no resolver
--- config
    location = /_llm/gemup {
        internal;
        proxy_pass http://gemini_api/v1beta/models/$llm_provider_model:generateContent;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
    location /chat { llm_fallback_chain gemup; }
--- http_config eval
"    upstream gemini_api { server 127.0.0.1:\$TEST_NGINX_RAND_PORT_2; keepalive 4; }
    llm_provider gemup uri=/_llm/gemup format=gemini model=gemini-2.0-flash api_key=$LLMProviders::GEMINI_KEY;"
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r, $http) = @_;
    die "model $http->{model}\n" unless $http->{model} eq 'gemini-2.0-flash';
    LLMProviders::gemini_answer(text => 'via upstream');
})
--- error_code: 200
--- response_body_like: "content":"via upstream"
--- no_error_log
[error]



=== TEST 29: a variable URL with a host name and no resolver: error, next
--- http_config eval
"    llm_provider gemdns uri=/_llm/gemdns format=gemini model=gemini-2.0-flash api_key=$LLMProviders::GEMINI_KEY;"
--- config
    location = /_llm/gemdns {
        internal;
        proxy_pass http://generativelanguage.example.invalid/v1beta/models/$llm_provider_model:generateContent;
    }
    location /chat { llm_fallback_chain gemdns openai; }
--- error_code: 200
--- response_headers
X-LLM-Provider: openai
X-LLM-Fallback: gemdns:error
--- error_log
no resolver defined to resolve generativelanguage.example.invalid
