# What reaches a provider: a fresh header list with the configured
# credential, never the client's Authorization, cookies or other headers.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
BEGIN { $ENV{LLM_TEST_ENV_KEY} = "sk-from-env" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;

no_shuffle();
add_block_preprocessor(\&LLMFake::fault_blocks);
run_tests();

__DATA__

=== TEST 1: the configured key is sent, client headers are not
--- http_config
    llm_provider echo uri=/_llm/echo api_key=sk-configured;
--- config
    location /chat { llm_fallback_chain echo; }
--- more_headers
Content-Type: application/json
Authorization: Bearer client-secret
Cookie: session=abc
X-Client: yes
Accept-Encoding: gzip
--- error_code: 200
--- response_body_like: auth=\[Bearer sk-configured\] key=\[\] apikey=\[\] cookie=\[\] ct=\[application/json\] accept=\[application/json\] len=\[\d+\] x=\[\] ae=\[\] method=\[POST\]
--- no_error_log
[error]



=== TEST 2: the exact request a provider receives
--- http_config
    llm_provider tcp uri=/_llm/tcp api_key=sk-exact;
--- config
    location = /_llm/tcp {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/v1/chat/completions;
    }
    location /chat { llm_fallback_chain tcp; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
\&LLMFake::echo_reply
--- more_headers
Content-Type: application/json
Authorization: Bearer client-secret
Cookie: session=abc
User-Agent: OpenAI/JS 7.0
X-Stainless-Lang: js
--- error_code: 200
--- response_body_like: "content":"POST /v1/chat/completions HTTP/1\.0\\r\\nHost: 127\.0\.0\.1:\d+\\r\\nConnection: close\\r\\nContent-Length: 45\\r\\nContent-Type: application/json\\r\\nAccept: application/json\\r\\nAuthorization: Bearer sk-exact\\r\\n\\r\\n\{\\"messages\\"



=== TEST 3: api_key_file
--- user_files
>>> openai.key
sk-from-file
--- http_config
    llm_provider echo uri=/_llm/echo api_key_file=../html/openai.key;
--- config
    location /chat { llm_fallback_chain echo; }
--- error_code: 200
--- response_body_like: auth=\[Bearer sk-from-file\] key



=== TEST 4: api_key_env
--- http_config
    llm_provider echo uri=/_llm/echo api_key_env=LLM_TEST_ENV_KEY;
--- config
    location /chat { llm_fallback_chain echo; }
--- error_code: 200
--- response_body_like: auth=\[Bearer sk-from-env\] key



=== TEST 5: auth_header=api-key (Azure OpenAI) sends the bare key
--- http_config
    llm_provider azure uri=/_llm/echo api_key=azure-key auth_header=api-key;
--- config
    location /chat { llm_fallback_chain azure; }
--- error_code: 200
--- response_body_like: auth=\[\] key=\[\] apikey=\[azure-key\]



=== TEST 6: a key taken from variables, per tenant
--- http_config
    map $http_x_tenant $tenant_key {
        default  sk-default;
        acme     sk-acme;
    }
    llm_provider echo uri=/_llm/echo api_key=$tenant_key;
--- config
    location /chat { llm_fallback_chain echo; }
--- more_headers
Content-Type: application/json
X-Tenant: acme
--- error_code: 200
--- response_body_like: auth=\[Bearer sk-acme\]



=== TEST 7: a provider without a key gets no Authorization (Ollama)
--- http_config
    llm_provider local uri=/_llm/echo;
--- config
    location /chat { llm_fallback_chain local; }
--- more_headers
Content-Type: application/json
Authorization: Bearer client-secret
--- error_code: 200
--- response_body_like: auth=\[\] key=\[\]



=== TEST 8: each provider of a chain gets its own key
--- http_config
    llm_provider first uri=/_llm/503 api_key=sk-first;
    llm_provider second uri=/_llm/echo api_key=sk-second;
--- config
    location /chat { llm_fallback_chain first second; }
--- error_code: 200
--- response_body_like: auth=\[Bearer sk-second\]



=== TEST 9: a world-readable api_key_file is warned about
--- user_files
>>> open.key
sk-open
--- http_config
    llm_provider echo uri=/_llm/echo api_key_file=../html/open.key;
--- config
    location /chat { llm_fallback_chain echo; }
--- error_code: 200
--- error_log
is readable by any user (mode 0644), restrict it with "chmod 600
