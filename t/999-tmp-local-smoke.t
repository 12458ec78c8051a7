use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: fallback
--- http_config
    llm_provider bad uri=/_llm/bad model=m-bad api_key=sk-bad;
    llm_provider good uri=/_llm/good model=m-good api_key=sk-good;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        default_type application/json;
        location = /bad { return 503 '{"error":{"message":"x","type":"server_error"}}'; }
        location = /good { return 200 '{"id":"x","object":"chat.completion","created":1,"model":"g","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}'; }
    }
--- config
    location /chat { llm_fallback_chain bad good; }
    location = /_llm/bad { internal; proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/bad; }
    location = /_llm/good { internal; proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/good; }
--- request
POST /chat
{"model":"x","messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_headers
X-LLM-Provider: good
X-LLM-Fallback: bad:http_503
--- response_body_like: "content":"hi"
--- no_error_log
[error]

=== TEST 2: unknown provider dies
--- http_config
    llm_provider a uri=/x;
--- config
    location /chat { llm_fallback_chain a nope; }
--- must_die
--- error_log
unknown llm provider "nope"
