# The fallback chain's happy paths: answers, headers, variables, streaming
# replay, a chain taken from a variable.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;
use LLMSchema;

no_shuffle();

# every body the module answers with: OpenAI's schemas (t/schema/)
LLMSchema::check_bodies();

run_tests();

__DATA__

=== TEST 1: a single healthy provider answers
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider ok uri=/_llm/ok;
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat { llm_fallback_chain ok; }
}
--- request
POST /chat
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_headers
Content-Type: application/json
X-LLM-Provider: ok
X-LLM-Attempts: 1
!X-LLM-Fallback
--- response_body_like: ^\{"id":"chatcmpl-fake","object":"chat.completion",.*"content":"hello from ok".*\}$
--- no_error_log
[error]
[warn]



=== TEST 2: a 503 falls back to the next provider
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider bad uri=/_llm/503;
    llm_provider ok uri=/_llm/ok;
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat { llm_fallback_chain bad ok; }
}
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Attempts: 2
X-LLM-Fallback: bad:http_503
--- response_body_like: "content":"hello from ok"
--- error_log
llm provider "bad" attempt failed: http_503
--- no_error_log
[error]



=== TEST 3: variables in add_header (and so in log_format)
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider bad uri=/_llm/500;
    llm_provider ok uri=/_llm/ok;
    log_format llm '$llm_provider $llm_model $llm_attempts '
                   '$llm_fallback_reasons $llm_prompt_tokens '
                   '$llm_completion_tokens $llm_ttft';
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat {
        llm_fallback_chain bad ok;
        access_log logs/llm.log llm;
        add_header X-Vars "$llm_provider|$llm_model|$llm_attempts|$llm_fallback_reasons|$llm_prompt_tokens|$llm_completion_tokens";
        add_header X-TTFT "$llm_ttft";
    }
}
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_headers
X-Vars: ok|fake-model|2|bad:http_500|5|7
--- response_headers_like
X-TTFT: ^\d+$
--- no_error_log
[error]



=== TEST 4: the provider's model= replaces the client's model
--- http_config
    llm_provider echo uri=/_llm/tcp model=m-provider;
--- config eval
qq{
    location = /_llm/tcp {
        internal;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_RAND_PORT_2/v1/chat/completions;
    }
    location /chat { llm_fallback_chain echo; }
}
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
\&LLMFake::echo_reply
--- request
POST /chat
{"model":"client-model","messages":[{"role":"user","content":"hi"}],"temperature":0.2}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body_like: POST /v1/chat/completions HTTP/1\.0.*\{\\"model\\":\\"m-provider\\",\\"messages\\":\[\{\\"role\\":\\"user\\",\\"content\\":\\"hi\\"\}\],\\"temperature\\":0\.2\}
--- no_error_log
[error]



=== TEST 5: without model= the client's body is sent as it came
--- http_config
    llm_provider echo uri=/_llm/tcp;
--- config
    location = /_llm/tcp {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/v1/chat/completions;
    }
    location /chat { llm_fallback_chain echo; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
\&LLMFake::echo_reply
--- request
POST /chat
{ "model" : "client-model", "messages":[{"role":"user","content":"hi"}] }
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body_like: \\r\\n\\r\\n\{ \\"model\\" : \\"client-model\\", \\"messages
--- response_headers
X-LLM-Provider: echo
--- no_error_log
[error]



=== TEST 6: "stream": true gets the answer as chat.completion.chunk events
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider bad uri=/_llm/502;
    llm_provider ok uri=/_llm/ok;
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat { llm_fallback_chain bad ok; }
}
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
X-LLM-Fallback: bad:http_502
--- response_body_like: ^data: \{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,"model":"fake-model","choices":\[\{"index":0,"delta":\{"role":"assistant","content":"hello from ok","refusal":null\},"finish_reason":null\}\]\}\n\ndata: \{[^\n]*"choices":\[\{"index":0,"delta":\{\},"finish_reason":"stop"\}\]\}\n\ndata: \{[^\n]*"choices":\[\],"usage":\{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12\}\}\n\ndata: \[DONE\]\n\n$
--- no_error_log
[error]



=== TEST 7: the chain from a variable
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider bad uri=/_llm/503;
    llm_provider ok uri=/_llm/ok;
    llm_provider ok2 uri=/_llm/ok2;
    map $http_x_tier $llm_chain {
        default "bad ok";
        premium "ok2 ok";
    }
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat { llm_fallback_chain $llm_chain; }
}
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
X-Tier: premium
--- error_code: 200
--- response_headers
X-LLM-Provider: ok2
X-LLM-Attempts: 1
--- response_body_like: hello from ok2
--- no_error_log
[error]



=== TEST 8: an unknown provider in the chain variable is a 500
--- no_schema_check
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider ok uri=/_llm/ok;
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat {
        set $chain "ok nosuch";
        llm_fallback_chain $chain;
    }
}
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- error_code: 500
--- error_log
unknown llm provider "nosuch" in "llm_fallback_chain" value "ok nosuch"



=== TEST 9: llm_response_headers off
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider bad uri=/_llm/503;
    llm_provider ok uri=/_llm/ok;
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat {
        llm_fallback_chain bad ok;
        llm_response_headers off;
    }
}
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_headers
!X-LLM-Provider
!X-LLM-Attempts
!X-LLM-Fallback
--- response_body_like: hello from ok



=== TEST 10: other locations are untouched by the module's filters
--- no_schema_check
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider ok uri=/_llm/ok;
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat { llm_fallback_chain ok; }
    location = /plain { return 200 "plain\n"; }
}
--- request
GET /plain
--- error_code: 200
--- response_body
plain



=== TEST 11: a response that lacks id, object and created is completed
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider echo uri=/_llm/echo model=m-echo;
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat { llm_fallback_chain echo; }
}
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body_like: ^\{"choices":\[.*\],"model":"m-echo","id":"chatcmpl-[0-9a-f]{24}","object":"chat.completion","created":\d+\}$



=== TEST 12: providers may be declared after the locations that use them
--- config eval
LLMFake::llm_locations() . q{
    location /chat { llm_fallback_chain late; }
}
--- http_config eval
LLMFake::fake_providers() . q{
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_3;
        location /x { llm_fallback_chain late; }
    }
    llm_provider late uri=/_llm/ok;
}
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_headers
X-LLM-Provider: late



=== TEST 13: an answer of OpenAI's full shape is passed on byte for byte
--- http_config
    llm_provider full uri=/_llm/full;
--- config
    location = /_llm/full {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/;
    }
    location /chat { llm_fallback_chain full; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
my $body = qq({ "id" : "chatcmpl-full", "object":"chat.completion",\n)
         . qq(  "created":1700000000, "model":"gpt-4o-2024-08-06",\n)
         . qq(  "choices":[ {"index":0, "message":{"role":"assistant",)
         . qq("content":"as sent","refusal":null,"annotations":[]},)
         . qq("logprobs":null,"finish_reason":"stop"} ],\n)
         . qq(  "usage":{"prompt_tokens":3,"completion_tokens":2,)
         . qq("total_tokens":5}, "service_tier":"default",)
         . qq("system_fingerprint":"fp_1" }\n);
"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
. length($body) . "\r\nConnection: close\r\n\r\n$body"
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body eval
qq({ "id" : "chatcmpl-full", "object":"chat.completion",\n)
. qq(  "created":1700000000, "model":"gpt-4o-2024-08-06",\n)
. qq(  "choices":[ {"index":0, "message":{"role":"assistant",)
. qq("content":"as sent","refusal":null,"annotations":[]},)
. qq("logprobs":null,"finish_reason":"stop"} ],\n)
. qq(  "usage":{"prompt_tokens":3,"completion_tokens":2,)
. qq("total_tokens":5}, "service_tier":"default",)
. qq("system_fingerprint":"fp_1" }\n)
--- no_error_log
[error]



=== TEST 14: a compatible server's answer without "refusal" and "logprobs" gets both, null, in every choice
--- http_config
    llm_provider compat uri=/_llm/compat;
--- config
    location = /_llm/compat {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/;
    }
    location /chat { llm_fallback_chain compat; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
my $body = '{"id":"cmpl-1","object":"chat.completion","created":1700000000,'
         . '"model":"llama","choices":[{"index":0,"message":{"role":'
         . '"assistant","content":"one"},"finish_reason":"stop"},'
         . '{"index":1,"message":{"role":"assistant","content":"two",'
         . '"refusal":null},"logprobs":null,"finish_reason":"stop"},'
         . '{"index":2,"message":{"role":"assistant","content":null,'
         . '"tool_calls":[{"id":"c1","type":"function","function":'
         . '{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}';
"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
. length($body) . "\r\nConnection: close\r\n\r\n$body"
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}],"n":3}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body chomp
{"id":"cmpl-1","object":"chat.completion","created":1700000000,"model":"llama","choices":[{"index":0,"message":{"role":"assistant","content":"one","refusal":null},"finish_reason":"stop","logprobs":null},{"index":1,"message":{"role":"assistant","content":"two","refusal":null},"logprobs":null,"finish_reason":"stop"},{"index":2,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}],"refusal":null},"finish_reason":"tool_calls","logprobs":null}]}
--- no_error_log
[error]
