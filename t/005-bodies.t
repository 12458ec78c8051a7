# Large bodies: a request spooled to a temporary file, a 2 MiB answer
# (no subrequest_output_buffer_size limit), and llm_max_response_size.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;

no_shuffle();
add_block_preprocessor(\&LLMFake::fault_blocks);

our $BigAnswer = '{"id":"chatcmpl-big","object":"chat.completion",'
    . '"created":1700000000,"model":"big-model","choices":[{"index":0,'
    . '"message":{"role":"assistant","content":"' . ('y' x (2 * 1024 * 1024))
    . '","refusal":null},"logprobs":null,"finish_reason":"stop"}]}';

our $BigQuestion = '{"messages":[{"role":"user","content":"'
    . ('x' x (2 * 1024 * 1024)) . '"}]}';

no_long_string();
run_tests();

__DATA__

=== TEST 1: a 2 MiB request spooled to a temporary file reaches the provider
--- http_config
    llm_provider echo uri=/_llm/echo model=m-echo;
--- config
    location /chat {
        client_max_body_size 10m;
        client_body_buffer_size 16k;
        llm_fallback_chain p503 echo;
    }
--- request eval
"POST /chat\n$::BigQuestion"
--- error_code: 200
--- response_body_like eval
"len=\\[" . (length($::BigQuestion) + length(',"model":"m-echo"')) . "\\] "
--- error_log
a client request body is buffered to a temporary file



=== TEST 2: the body from the temporary file is sent intact
--- http_config
    llm_provider tcp uri=/_llm/tcp;
--- config
    location = /_llm/tcp {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/v1/chat/completions;
    }
    location /chat {
        client_body_buffer_size 1k;
        llm_fallback_chain tcp;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
\&LLMFake::echo_reply
--- request eval
"POST /chat\n" . '{"messages":[{"role":"user","content":"' . ('z' x 3000) . 'END"}]}'
--- error_code: 200
--- response_body_like eval
qr/Content-Length: 3046\\r\\n.*\\r\\n\\r\\n\{\\"messages\\":\[\{\\"role\\":\\"user\\",\\"content\\":\\"z{3000}END\\"\}\]\}"/
--- error_log
a client request body is buffered to a temporary file



=== TEST 3: a 2 MiB answer is captured whole
--- user_files eval
">>> big.json\n$::BigAnswer"
--- http_config
    llm_provider big uri=/_llm/big;
--- config
    location = /_llm/big {
        internal;
        proxy_method GET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/files/big.json;
    }
    location /chat { llm_fallback_chain big; }
--- error_code: 200
--- response_headers
X-LLM-Provider: big
Content-Length: 2097363
--- response_body eval
$::BigAnswer
--- no_error_log
[error]



=== TEST 4: an answer over llm_max_response_size falls back, with a clear log
--- user_files eval
">>> big.json\n$::BigAnswer"
--- http_config
    llm_provider big uri=/_llm/big;
--- config
    location = /_llm/big {
        internal;
        proxy_method GET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/files/big.json;
    }
    location /chat {
        llm_max_response_size 1m;
        llm_fallback_chain big ok;
    }
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: big:invalid_response
--- error_log
llm provider "big" response is larger than llm_max_response_size 1048576



=== TEST 5: the size limit also holds without a Content-Length
--- user_files eval
">>> big.json\n$::BigAnswer"
--- http_config
    llm_provider big uri=/_llm/big;
--- config
    location = /_llm/big {
        internal;
        proxy_method GET;
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/chunked/big.json;
    }
    location /chat {
        llm_max_response_size 64k;
        llm_fallback_chain big ok;
    }
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: big:invalid_response
--- error_log
llm provider "big" response is larger than llm_max_response_size 65536
