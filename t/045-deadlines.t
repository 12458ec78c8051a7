# The attempt and request deadlines hold whatever nginx's upstream does
# (connects that never complete, upstreams with several servers), and an
# attempt the module ends is not a failure of the upstream's servers.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    LLMFake::fault_blocks($block);

    $block->set_value("http_config", $block->http_config . <<'END');
    upstream blackholes {
        server 127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT;
        server 127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT2;
        server 127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT;
    }

    upstream hangs {
        server 127.0.0.1:$TEST_NGINX_HANG_PORT max_fails=1 fail_timeout=60s;
        server 127.0.0.1:$TEST_NGINX_HANG_PORT max_fails=1 fail_timeout=60s;
    }

    llm_provider pbh uri=/_llm/blackholes;
    llm_provider phangs uri=/_llm/hangs;
END

    $block->set_value("config", <<'END' . $block->config);
        location = /_llm/blackholes {
            internal;
            proxy_pass http://blackholes/;
            proxy_connect_timeout 30s;
        }

        location = /_llm/hangs {
            internal;
            proxy_pass http://hangs/;
            proxy_read_timeout 30s;
        }
END
});

run_tests();

__DATA__

=== TEST 1: llm_attempt_timeout ends an attempt stuck in connect to an upstream of several servers
--- config
    location /chat {
        llm_attempt_timeout 1s;
        llm_fallback_timeout 10s;
        llm_fallback_chain pbh ok;
    }
--- timeout: 6
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: pbh:timeout
--- response_body_like: hello from ok
--- error_log
llm provider "pbh" attempt failed: timeout, status 504
--- no_error_log
upstream timed out
[alert]



=== TEST 2: llm_fallback_timeout holds while nginx would move to the upstream's next server
--- config
    location /chat {
        llm_attempt_timeout 60s;
        llm_fallback_timeout 1500ms;
        llm_fallback_chain pbh ok;
    }
--- timeout: 6
--- error_code: 504
--- response_headers
x-should-retry: false
--- response_body_like: "type":"llm_timeout"
--- error_log
llm provider "pbh" attempt failed: timeout, status 504
--- no_error_log
[alert]



=== TEST 3: both deadlines: the healthy next provider is tried within the request's deadline
--- config
    location /chat {
        llm_attempt_timeout 1s;
        llm_fallback_timeout 2s;
        llm_fallback_chain pbh pbh ok;
    }
--- timeout: 6
--- error_code: 504
--- response_body_like: "type":"llm_timeout"
--- grep_error_log eval: qr/llm provider "\w+" attempt failed: \w+/
--- grep_error_log_out
llm provider "pbh" attempt failed: timeout
llm provider "pbh" attempt failed: timeout



=== TEST 4: a cancelled attempt does not count towards max_fails of the provider's upstream
--- config
    location /chat {
        llm_attempt_timeout 300ms;
        llm_fallback_chain phangs ok;
    }
--- request eval
["POST /chat\n{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "POST /chat\n{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "POST /chat\n{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"]
--- timeout: 6
--- error_code eval
[200, 200, 200]
--- response_headers eval
[("X-LLM-Provider: ok\nX-LLM-Fallback: phangs:timeout") x 3]
--- no_error_log
no live upstreams
upstream timed out
[alert]
