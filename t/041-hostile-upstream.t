# Hostile provider answers (non-streaming) against the real nginx with the
# module: answers over llm_max_response_size (with and without
# Content-Length, chunked, endless), JSON bombs, huge arrays, bytes that
# are not UTF-8, bodies that are not JSON or are cut, Content-Length lies,
# headers over proxy_buffer_size, a body trickled slower than the attempt
# timeout. Each falls back to the next provider with a clear log line, or
# ends in an OpenAI-shaped 502 when nothing is left; no worker crashes
# (master_on(): a crash is an "exited on signal" line, checked in every
# block).
#
# "bad" is the hostile provider of each block; /chat tries "bad" then
# "ok", /alone only "bad". Byte-level faults come from --- tcp_listen
# (one connection per block, so only /chat), the others from nginx
# servers (answers in --- user_files, limit_rate for slow bodies).

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;
use LLMHostile;

master_on();
no_shuffle();
no_long_string();

# the 502 of a chain whose only provider "bad" failed with $reason
sub exhausted {
    my ($status, $reason) = @_;
    return qr/^\{"error":\{"message":"Every provider of the fallback chain failed\.","type":"llm_providers_exhausted","param":null,"code":null,"attempts":\[\{"provider":"bad","status":$status,"reason":"$reason"\}\]\}\}$/;
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", LLMFake::fake_providers()
        . "    llm_provider ok uri=/_llm/ok;\n"
        . ($block->http_config // '') . <<'END');
    # /_llm/pick answers what the client's "f" argument names
    # ("files/x.json", "slow/x.json", ...)
    map $request_uri $llm_test_pick {
        "~[?&]f=(?<f>[^&]+)"  $f;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_3;
        default_type application/json;

        # the header and a few bytes at once, then 100 bytes a second
        location /slow/ {
            alias html/;
            limit_rate 100;
            limit_rate_after 300;
        }

        # 1 MB a second, for as long as the file lasts: with
        # Content-Length, chunked (ssi drops the length), chunked and
        # unbuffered by the proxy
        location /mb/ {
            alias html/;
            limit_rate 1m;
        }

        location /mbz/ {
            alias html/;
            limit_rate 1m;
            ssi on;
            ssi_types *;
        }

        location /mbzu/ {
            alias html/;
            limit_rate 1m;
            ssi on;
            ssi_types *;
            add_header X-Accel-Buffering no;
        }

        location /files/ { alias html/; }
    }
END

    $block->set_value("config", LLMFake::llm_locations() . <<'END'
    location /chat { llm_fallback_chain bad ok; }
    location /alone { llm_fallback_chain bad; }

    location = /_llm/tcp {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/v1/chat/completions;
    }

    location = /_llm/pick {
        internal;
        proxy_method GET;
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_3/$llm_test_pick;
    }

    location /_llm/get/ {
        internal;
        proxy_method GET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_3/;
    }
END
        . ($block->config // ''));

    if (defined $block->tcp_reply && !defined $block->tcp_listen) {
        $block->set_value("tcp_listen", '$TEST_NGINX_RAND_PORT_2');
    }

    if (!defined $block->request) {
        $block->set_value("request", ["POST /chat\n" . $LLMHostile::Hi,
                                      "POST /alone\n" . $LLMHostile::Hi]);
    }

    if (!defined $block->more_headers) {
        $block->set_value("more_headers", "Content-Type: application/json");
    }

    LLMHostile::survives($block);
});

run_tests();

__DATA__

=== TEST 1: an answer with a Content-Length over llm_max_response_size
--- http_config
    llm_max_response_size 64k;
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
LLMHostile::reply("Content-Length: " . length(LLMHostile::answer('"' . ('y' x 100000) . '"')) . "\r\n",
            LLMHostile::answer('"' . ('y' x 100000) . '"'))
--- request eval
"POST /chat\n$LLMHostile::Hi"
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:invalid_response
--- response_body_like eval
$LLMHostile::OkRe
--- error_log
llm provider "bad" response is larger than llm_max_response_size 65536



=== TEST 2: an answer over llm_max_response_size without Content-Length, ended by closing
--- http_config
    llm_max_response_size 64k;
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
LLMHostile::reply("", LLMHostile::answer('"' . ('y' x 100000) . '"'))
--- request eval
"POST /chat\n$LLMHostile::Hi"
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:invalid_response
--- response_body_like eval
$LLMHostile::OkRe
--- error_log
llm provider "bad" response is larger than llm_max_response_size 65536



=== TEST 3: a chunked answer over llm_max_response_size
--- http_config
    llm_max_response_size 64k;
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
LLMHostile::reply("Transfer-Encoding: chunked\r\n",
    CORE::join('', map { sprintf("%x\r\n%s\r\n", length, $_) }
               LLMHostile::answer('"' . ('y' x 100000) . '"') =~ /(.{1,4000})/gs)
    . "0\r\n\r\n")
--- request eval
"POST /chat\n$LLMHostile::Hi"
--- error_code: 200
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:invalid_response
--- response_body_like eval
$LLMHostile::OkRe
--- error_log
llm provider "bad" response is larger than llm_max_response_size 65536



=== TEST 4: an answer that would go on for seconds is cut at llm_max_response_size, not at the attempt timeout: with Content-Length, chunked, chunked and unbuffered
--- http_config
    llm_max_response_size 64k;
    llm_provider bad uri=/_llm/pick;
--- config
    location = /t {
        llm_attempt_timeout 3s;
        llm_fallback_chain bad ok;
    }
--- user_files eval
">>> big.json\n" . LLMHostile::answer('"' . ('y' x (8 << 20)) . '"')
--- request eval
[map { "POST /t?f=$_/big.json\n$LLMHostile::Hi" } qw(mb mbz mbzu)]
--- timeout: 6
--- error_code eval
[200, 200, 200]
--- response_headers eval
[("X-LLM-Provider: ok\nX-LLM-Fallback: bad:invalid_response") x 3]
--- response_body_like eval
[($LLMHostile::OkRe) x 3]
--- error_log
llm provider "bad" response is larger than llm_max_response_size 65536
--- no_error_log
upstream timed out



=== TEST 5: JSON bombs: 100k levels of "[" and of {"a":, balanced or not
--- http_config
    llm_provider bad uri=/_llm/pick;
--- user_files eval
">>> open.json\n" . ('[' x 100000) . "\n"
. ">>> objects.json\n" . ('{"a":' x 100000) . "\n"
. ">>> balanced.json\n" . LLMHostile::answer('"x"', ',"bomb":' . ('[' x 100000) . (']' x 100000)) . "\n"
--- request eval
[map { "POST /chat?f=files/$_\n$LLMHostile::Hi" } qw(open.json objects.json balanced.json)]
--- error_code eval
[200, 200, 200]
--- response_headers eval
[("X-LLM-Provider: ok\nX-LLM-Fallback: bad:invalid_response") x 3]
--- response_body_like eval
[($LLMHostile::OkRe) x 3]
--- error_log
llm provider "bad" attempt failed: invalid_response, status 200
