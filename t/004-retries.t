# Retries with backoff and Retry-After, llm_fallback_tries, the
# llm_fallback_timeout deadline, and the error when every attempt failed.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;
use LLMSchema;

no_shuffle();
# every body the module answers with: OpenAI's schemas (t/schema/)
LLMSchema::check_bodies();

add_block_preprocessor(\&LLMFake::fault_blocks);
run_tests();

__DATA__

=== TEST 1: retries of the same provider before moving on
--- config
    location /chat {
        llm_retries 2 backoff=10ms;
        llm_fallback_chain p503 ok;
    }
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Attempts: 4
X-LLM-Fallback: p503:http_503,p503:http_503,p503:http_503
--- response_body_like: hello from ok



=== TEST 2: a Retry-After within max_backoff is waited for, then retried
--- config
    location /chat {
        llm_retries 1 backoff=10ms max_backoff=2s;
        llm_fallback_chain p429ra ok;
    }
--- error_code: 200
--- response_headers
X-LLM-Attempts: 3
X-LLM-Fallback: p429ra:http_429,p429ra:http_429



=== TEST 3: a Retry-After beyond max_backoff moves on at once
--- config
    location /chat {
        llm_retries 3 backoff=10ms max_backoff=2s;
        llm_fallback_chain p429ra-long ok;
    }
--- error_code: 200
--- response_headers
X-LLM-Attempts: 2
X-LLM-Fallback: p429ra-long:http_429



=== TEST 4: failures that are not fallback conditions are not retried
--- config
    location /chat {
        llm_retries 3 backoff=10ms;
        llm_fallback_chain p400 ok;
    }
--- error_code: 400
--- response_headers
X-LLM-Attempts: 1



=== TEST 5: llm_fallback_tries caps the attempts across providers
--- config
    location /chat {
        llm_fallback_tries 2;
        llm_fallback_chain p500 p502 ok;
    }
--- error_code: 502
--- response_headers
X-LLM-Attempts: 2
x-should-retry: false
--- response_body_like: "attempts":\[\{"provider":"p500","status":500,"reason":"http_500"\},\{"provider":"p502","status":502,"reason":"http_502"\}\]\}\}$



=== TEST 6: llm_fallback_tries counts retries too
--- config
    location /chat {
        llm_retries 5 backoff=1ms;
        llm_fallback_tries 3;
        llm_fallback_chain p500 ok;
    }
--- error_code: 502
--- response_headers
X-LLM-Attempts: 3
X-LLM-Fallback: p500:http_500,p500:http_500,p500:http_500



=== TEST 7: llm_fallback_timeout ends a hanging attempt with 504
--- config
    location /chat {
        llm_fallback_timeout 400ms;
        llm_attempt_timeout 10s;
        llm_fallback_chain phang ok;
    }
--- error_code: 504
--- response_headers
x-should-retry: false
X-LLM-Attempts: 1
--- response_body_like: ^\{"error":\{"message":"The llm_fallback_timeout deadline passed before any provider answered.","type":"llm_timeout","param":null,"code":null,"attempts":\[\{"provider":"phang","status":504,"reason":"timeout"\}\]\}\}$



=== TEST 8: llm_fallback_timeout also bounds the backoff sleep
--- config
    location /chat {
        llm_fallback_timeout 300ms;
        llm_retries 3 backoff=5s max_backoff=10s;
        llm_fallback_chain p503 ok;
    }
--- error_code: 504
--- response_body_like: "type":"llm_timeout"



=== TEST 9: the deadline leaves earlier providers' time to later ones
--- config
    location /chat {
        llm_fallback_timeout 5s;
        llm_attempt_timeout 300ms;
        llm_fallback_chain phang ok;
    }
--- error_code: 200
--- response_headers
X-LLM-Fallback: phang:timeout



=== TEST 10: every provider failing: 502 listing each attempt
--- config
    location /chat { llm_fallback_chain p500 p503 prefused pgarbage; }
--- error_code: 502
--- response_headers
x-should-retry: false
Content-Type: application/json
X-LLM-Attempts: 4
!X-LLM-Provider
--- response_body chomp
{"error":{"message":"Every provider of the fallback chain failed.","type":"llm_providers_exhausted","param":null,"code":null,"attempts":[{"provider":"p500","status":500,"reason":"http_500"},{"provider":"p503","status":503,"reason":"http_503"},{"provider":"prefused","status":502,"reason":"error"},{"provider":"pgarbage","status":200,"reason":"invalid_response"}]}}
--- error_log
llm fallback: every attempt failed: p500:http_500,p503:http_503,prefused:error,pgarbage:invalid_response



=== TEST 11: every attempt a 429: the client gets 429
--- config
    location /chat { llm_fallback_chain p429 p429ra; }
--- error_code: 429
--- response_headers
!x-should-retry
--- response_body_like: "type":"llm_providers_exhausted"



=== TEST 12: the loop goes on after a retry succeeds
--- config
    location /chat {
        llm_retries 1 backoff=1ms;
        llm_fallback_chain p503 ok2 ok;
    }
--- error_code: 200
--- response_headers
X-LLM-Provider: ok2
X-LLM-Attempts: 3



=== TEST 13: a huge Retry-After (2^64 ms in seconds) moves on at once: it does not wrap to a short one
--- http_config
    llm_provider phuge uri=/_huge/429;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        default_type application/json;

        location = /429 {
            add_header Retry-After 18446744073709552 always;
            return 429 '{"error":{"message":"later","type":"rate_limit_error"}}';
        }
    }
--- config
    location /_huge/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/;
    }

    location /chat {
        llm_retries 3 backoff=10ms max_backoff=2s;
        llm_fallback_chain phuge ok;
    }
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Attempts: 2
X-LLM-Fallback: phuge:http_429



=== TEST 14: a Retry-After beyond any time value is as long as can be: no retry, the breaker opens for max_cooldown
--- http_config
    llm_circuit_breaker zone=cb:64k cooldown=10s max_cooldown=5m;
    llm_provider phuge uri=/_huge/429;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        default_type application/json;

        location = /429 {
            add_header Retry-After 999999999999999999999999999999 always;
            return 429 '{"error":{"message":"later","type":"rate_limit_error"}}';
        }
    }
--- config
    location /_huge/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/;
    }

    location /chat {
        llm_retries 3 backoff=10ms max_backoff=2s;
        llm_fallback_chain phuge ok;
    }

    location = /error.log { root logs; }
--- no_schema_check: 2
--- request eval
["POST /chat\n" . '{"messages":[{"role":"user","content":"hi"}]}',
 "POST /chat\n" . '{"messages":[{"role":"user","content":"hi"}]}',
 "GET /error.log"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Attempts: 2\nX-LLM-Fallback: phuge:http_429",
 "X-LLM-Attempts: 1\nX-LLM-Fallback: phuge:open", ""]
--- response_body_like eval
["hello from ok", "hello from ok",
 qr/\Qllm provider "phuge" circuit breaker opened for 300000ms by Retry-After\E/]
