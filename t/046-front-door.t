# llm_api: the front door a location's clients speak. "chat" (OpenAI
# Chat Completions) is the default and the one door today; the directive
# names it, a location inside another inherits it, and a name that is not
# a door fails "nginx -t".

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;
use LLMSchema;

no_shuffle();

LLMSchema::check_bodies();

run_tests();

__DATA__

=== TEST 1: llm_api chat answers as the default does
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider ok uri=/_llm/ok;
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat { llm_api chat; llm_fallback_chain ok; }
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
--- response_body_like: ^\{"id":"chatcmpl-fake","object":"chat.completion",.*"content":"hello from ok".*\}$
--- no_error_log
[error]
[warn]



=== TEST 2: a nested location inherits the door; its errors keep its shape
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider ok uri=/_llm/ok;
}
--- config eval
LLMFake::llm_locations() . q{
    location /v1/ {
        llm_api chat;

        location = /v1/chat/completions { llm_fallback_chain ok; }
    }
}
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"error":\{"message":"[^"]*messages[^"]*","type":"invalid_request_error","param":"messages","code":null\}\}$
--- no_error_log
[error]



=== TEST 3: the stream events of the chat door: chunks, then [DONE]
--- http_config eval
LLMFake::fake_providers() . q{
    llm_provider ok uri=/_llm/ok;
}
--- config eval
LLMFake::llm_locations() . q{
    location /chat { llm_api chat; llm_fallback_chain ok; }
}
--- request
POST /chat
{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
Cache-Control: no-cache
--- response_body_like: ^data: \{"id":"chatcmpl-fake","object":"chat.completion.chunk",.*"content":"hello from ok".*\n\ndata: \[DONE\]\n\n$
--- no_error_log
[error]



=== TEST 4: a name that is not a front door
--- http_config
    llm_provider a uri=/_llm/a;
--- config
    location /chat { llm_api chatcompletions; llm_fallback_chain a; }
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?unknown llm_api "chatcompletions" in \S+nginx\.conf:\d+/



=== TEST 5: llm_api twice in a location
--- http_config
    llm_provider a uri=/_llm/a;
--- config
    location /chat { llm_api chat; llm_api chat; llm_fallback_chain a; }
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_api" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 6: llm_api is a location's
--- http_config
    llm_provider a uri=/_llm/a;
    llm_api chat;
--- config
    location /chat { llm_fallback_chain a; }
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_api" directive is not allowed here in \S+nginx\.conf:\d+/
