# Each fallback trigger against real TCP fake providers, and the failures
# that must not fall back.

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

=== TEST 1: connection refused falls back (error)
--- config
    location /chat { llm_fallback_chain prefused ok; }
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: prefused:error
--- response_body_like: hello from ok
--- error_log
connect() failed (111: Connection refused)
llm provider "prefused" attempt failed: error, status 502



=== TEST 2: a reset before the response headers falls back (error)
--- config
    location /chat { llm_fallback_chain preset ok; }
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: preset:error
--- response_body_like: hello from ok
--- error_log
llm provider "preset" attempt failed: error



=== TEST 3: a provider that hangs is cut at llm_attempt_timeout (timeout)
--- config
    location /chat {
        llm_attempt_timeout 300ms;
        llm_fallback_chain phang ok;
    }
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: phang:timeout
--- response_body_like: hello from ok
--- error_log
llm provider "phang" attempt failed: timeout, status 504
--- no_error_log
upstream timed out



=== TEST 4: the provider's timeout= overrides llm_attempt_timeout
--- http_config
    llm_provider slow uri=/_llm/hang timeout=200ms;
--- config
    location /chat {
        llm_attempt_timeout 60s;
        llm_fallback_chain slow ok;
    }
--- timeout: 5
--- error_code: 200
--- response_headers
X-LLM-Fallback: slow:timeout



=== TEST 5: 500 falls back
--- config
    location /chat { llm_fallback_chain p500 ok; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: p500:http_500
--- no_error_log
[error]



=== TEST 6: 502 falls back
--- config
    location /chat { llm_fallback_chain p502 ok; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: p502:http_502
--- no_error_log
[error]



=== TEST 7: 503 falls back
--- config
    location /chat { llm_fallback_chain p503 ok; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: p503:http_503



=== TEST 8: 504 falls back
--- config
    location /chat { llm_fallback_chain p504 ok; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: p504:http_504
--- no_error_log
[error]



=== TEST 9: 429 without Retry-After falls back
--- config
    location /chat { llm_fallback_chain p429 ok; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: p429:http_429



=== TEST 10: 429 with Retry-After falls back
--- config
    location /chat { llm_fallback_chain p429ra ok; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: p429ra:http_429
X-LLM-Attempts: 2



=== TEST 11: 200 with a body that is not JSON (invalid_response)
--- config
    location /chat { llm_fallback_chain pgarbage ok; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: pgarbage:invalid_response
--- response_body_like: hello from ok
--- error_log
llm provider "pgarbage" attempt failed: invalid_response, status 200



=== TEST 12: 200 with empty choices (invalid_response)
--- config
    location /chat { llm_fallback_chain pempty ok; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: pempty:invalid_response



=== TEST 13: 200 with a choice without a message (invalid_response)
--- config
    location /chat { llm_fallback_chain pnomessage ok; }
--- error_code: 200
--- response_headers
X-LLM-Fallback: pnomessage:invalid_response



=== TEST 14: 400 is not a fallback condition: the provider's error is returned
--- config
    location /chat { llm_fallback_chain p400 ok; }
--- error_code: 400
--- response_headers
X-LLM-Attempts: 1
!X-LLM-Provider
Content-Type: application/json
--- response_body chomp
{"error":{"message":"bad prompt","type":"invalid_request_error","param":"messages","code":"bad_prompt"}}
--- no_error_log
[error]



=== TEST 15: a provider error without a JSON body becomes provider_error
--- config
    location /chat { llm_fallback_chain p401html ok; }
--- error_code: 401
--- response_body chomp
{"error":{"message":"Provider \"p401html\" returned HTTP 401.","type":"provider_error","param":null,"code":null}}



=== TEST 16: http_401 in llm_fallback_on makes 401 fall back
--- config
    location /chat {
        llm_fallback_on error timeout http_401 http_5xx;
        llm_fallback_chain p401html ok;
    }
--- error_code: 200
--- response_headers
X-LLM-Fallback: p401html:http_401



=== TEST 17: without http_5xx a 503 ends the chain with the provider's error
--- config
    location /chat {
        llm_fallback_on error timeout;
        llm_fallback_chain p503 ok;
    }
--- error_code: 503
--- response_body_like: "message":"overloaded","type":"server_error"



=== TEST 18: llm_fallback_on off: the first failure is final
--- config
    location /chat {
        llm_fallback_on off;
        llm_fallback_chain p500 ok;
    }
--- error_code: 500
--- response_headers
X-LLM-Attempts: 1



=== TEST 19: without timeout, a timed out attempt ends the chain with 504
--- config
    location /chat {
        llm_fallback_on error http_5xx;
        llm_attempt_timeout 200ms;
        llm_fallback_chain phang ok;
    }
--- error_code: 504
--- response_headers
x-should-retry: false
--- response_body_like: "type":"llm_providers_exhausted",.*"attempts":\[\{"provider":"phang","status":504,"reason":"timeout"\}\]



=== TEST 20: invalid_response can be left out too
--- config
    location /chat {
        llm_fallback_on error timeout http_5xx;
        llm_fallback_chain pgarbage ok;
    }
--- error_code: 502
--- response_body_like: "attempts":\[\{"provider":"pgarbage","status":200,"reason":"invalid_response"\}\]



=== TEST 21: a long chain of failures ends on the healthy provider
--- config
    location /chat {
        llm_attempt_timeout 300ms;
        llm_fallback_chain prefused preset phang p500 p502 p503 p504 p429
                           pgarbage pempty ok;
    }
--- timeout: 5
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Attempts: 11
X-LLM-Fallback: prefused:error,preset:error,phang:timeout,p500:http_500,p502:http_502,p503:http_503,p504:http_504,p429:http_429,pgarbage:invalid_response,pempty:invalid_response
--- response_body_like: hello from ok



=== TEST 22: a compatible server's error with a numeric code and no param is returned in OpenAI's shape
--- http_config
    llm_provider compat uri=/_llm/compat;
--- config
    location = /_llm/compat {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/;
    }
    location /chat { llm_fallback_chain compat ok; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
. "Connection: close\r\n\r\n"
. '{"error":{"message":"bad prompt","type":"BadRequestError","code":400}}'
--- error_code: 400
--- response_headers
X-LLM-Attempts: 1
Content-Type: application/json
--- response_body chomp
{"error":{"message":"bad prompt","type":"BadRequestError","code":"400","param":null}}
--- no_error_log
[error]
