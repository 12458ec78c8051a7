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
# (one connection per block, so only /chat), the others from an nginx
# server (answers in --- user_files, limit_rate for slow bodies) through
# /_llm/pick, which fetches what the client's "f" argument names.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;
use LLMHostile;

master_on();
no_shuffle();
no_long_string();

our $Answer = LLMHostile::answer('"fine"');

# about 100 KB
our $Big = LLMHostile::answer('"' . ('y' x 100000) . '"');

# valid completions: 2000 levels deep in an extra field; 100k choices and
# a 100k array
our $Deep = LLMHostile::answer('"deep"', ',"x":' . ('[' x 2000) . (']' x 2000))
          . "\n";
our $Wide = LLMHostile::answer('"wide"', ',"x":[' . join(',', (1) x 100000) . ']')
            =~ s/("choices":\[)(.*?)(\])/$1 . join(',', ($2) x 100000) . $3/er
          . "\n";

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

        location = /status/204 { return 204; }
        location = /status/302 { return 302 /elsewhere; }
        location = /status/304 { return 304; }
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

    # by default one request to /chat, answered by "ok"
    if (!defined $block->request) {
        $block->set_value("request", "POST /chat\n" . $LLMHostile::Hi);

        if (!defined $block->error_code) {
            $block->set_value("error_code", 200);
        }

        if (!defined $block->response_body_like) {
            $block->set_value("response_body_like", $LLMHostile::OkRe);
        }
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
LLMHostile::reply("Content-Length: " . length($::Big) . "\r\n", $::Big)
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:invalid_response
--- error_log
llm provider "bad" response is larger than llm_max_response_size 65536



=== TEST 2: an answer over llm_max_response_size without Content-Length, ended by closing
--- http_config
    llm_max_response_size 64k;
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
LLMHostile::reply("", $::Big)
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:invalid_response
--- error_log
llm provider "bad" response is larger than llm_max_response_size 65536



=== TEST 3: a chunked answer over llm_max_response_size
--- http_config
    llm_max_response_size 64k;
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
LLMHostile::reply("Transfer-Encoding: chunked\r\n",
    CORE::join('', map { sprintf("%x\r\n%s\r\n", length, $_) }
               $::Big =~ /(.{1,4000})/gs)
    . "0\r\n\r\n")
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:invalid_response
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
--- timeout: 30
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



=== TEST 6: a completion with 2000 levels in an extra field and one with 100k choices are served as they came
--- timeout: 30
--- http_config
    llm_max_response_size 16m;
    llm_provider bad uri=/_llm/pick;
--- user_files eval
">>> deep.json\n$::Deep>>> wide.json\n$::Wide"
--- request eval
[map { "POST /chat?f=files/$_\n$LLMHostile::Hi" } qw(deep.json wide.json)]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Provider: bad\nContent-Length: " . length($::Deep),
 "X-LLM-Provider: bad\nContent-Length: " . length($::Wide)]
--- response_body eval
[$::Deep, $::Wide]



=== TEST 7: an Anthropic answer of 100k text blocks, a Gemini answer of 100k parts
--- timeout: 30
--- http_config
    llm_provider bad uri=/_llm/pick format=anthropic model=claude-x;
    llm_provider gbad uri=/_llm/pick format=gemini model=gemini-x;
--- config
    location /gem { llm_fallback_chain gbad; }
--- user_files eval
">>> claude.json\n" . '{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":['
    . CORE::join(',', ('{"type":"text","text":"ab"}') x 100000)
    . '],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}' . "\n"
. ">>> gemini.json\n" . '{"candidates":[{"content":{"role":"model","parts":['
    . CORE::join(',', ('{"text":"cd"}') x 100000)
    . ']},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2}}' . "\n"
--- request eval
["POST /chat?f=files/claude.json\n$LLMHostile::Hi",
 "POST /gem?f=files/gemini.json\n$LLMHostile::Hi"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Provider: bad", "X-LLM-Provider: gbad"]
--- response_body_like eval
[qr/"content":"${\ ('ab' x 100000)}"/, qr/"content":"${\ ('cd' x 100000)}"/]



=== TEST 8: answers that are not a usable completion: bytes that are not UTF-8 (a stray byte, an overlong form, an encoded surrogate, a cut sequence), HTML, empty, binary, a JSON array, a string, cut JSON, \u0000 in the content, no choices
--- http_config
    llm_provider bad uri=/_llm/pick;
--- user_files eval
CORE::join('', map { ">>> u$_->[0].json\n" . LLMHostile::answer(qq("caf$_->[1]")) . "\n" }
    ([1, "\xe9"], [2, "\xc0\xaf"], [3, "\xed\xa0\x80"], [4, "\xe2\x82"]))
. ">>> html.json\n<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon</body></html>\n"
. ">>> empty.json\n"
. ">>> binary.json\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\x00\x01\x02\n"
. ">>> array.json\n[" . LLMHostile::answer('"x"') . "]\n"
. ">>> string.json\n\"" . ('x' x 1000) . "\"\n"
. ">>> cut.json\n" . substr(LLMHostile::answer('"x"'), 0, 100) . "\n"
. ">>> nul.json\n" . LLMHostile::answer('"a\u0000b"') . "\n"
. ">>> nochoices.json\n" . LLMHostile::answer('"x"') =~ s/"choices"/"chioces"/r . "\n"
--- request eval
[map { ("POST /chat?f=files/$_.json\n$LLMHostile::Hi",
        "POST /alone?f=files/$_.json\n$LLMHostile::Hi") }
     qw(u1 u2 u3 u4 html empty binary array string cut nul nochoices)]
--- error_code eval
[(200, 502) x 12]
--- response_headers eval
[("X-LLM-Provider: ok\nX-LLM-Fallback: bad:invalid_response",
  "x-should-retry: false\nContent-Type: application/json") x 12]
--- response_body_like eval
[($LLMHostile::OkRe, LLMHostile::exhausted(200, 'invalid_response')) x 12]
--- error_log
llm provider "bad" attempt failed: invalid_response, status 200



=== TEST 9: statuses that are not a completion: 204, 302, 304
--- http_config
    llm_provider bad uri=/_llm/pick;
--- request eval
[map { ("POST /chat?f=status/$_\n$LLMHostile::Hi",
        "POST /alone?f=status/$_\n$LLMHostile::Hi") } qw(204 302 304)]
--- error_code eval
[200, 502, 200, 502, 200, 502]
--- response_headers eval
[map { ("X-LLM-Provider: ok\nX-LLM-Fallback: bad:invalid_response",
        "x-should-retry: false") } 1 .. 3]
--- response_body_like eval
[$LLMHostile::OkRe, LLMHostile::exhausted(204, 'invalid_response'),
 $LLMHostile::OkRe, LLMHostile::exhausted(302, 'invalid_response'),
 $LLMHostile::OkRe, LLMHostile::exhausted(304, 'invalid_response')]
--- error_log
llm provider "bad" attempt failed: invalid_response, status



=== TEST 10: a Content-Length shorter than the body: the answer is cut there (invalid_response)
--- http_config
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
LLMHostile::reply("Content-Length: 60\r\n", $::Answer)
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:invalid_response
--- error_log
upstream sent more data than specified in "Content-Length" header
llm provider "bad" attempt failed: invalid_response, status 200



=== TEST 11: a Content-Length longer than the body, then the connection closes (error)
--- http_config
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
LLMHostile::reply("Content-Length: " . (length($::Answer) + 100) . "\r\n", $::Answer)
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:error
--- error_log
upstream prematurely closed connection while reading upstream
llm provider "bad" attempt failed: error, status 200



=== TEST 12: a Content-Length longer than the body on a connection kept open (timeout)
--- http_config
    llm_provider bad uri=/_llm/tcp;
--- config
    location = /t {
        llm_attempt_timeout 500ms;
        llm_fallback_chain bad ok;
    }
--- tcp_reply eval
LLMHostile::reply("Content-Length: " . (length($::Answer) + 100) . "\r\n", $::Answer)
--- tcp_no_close
--- request eval
"POST /t\n$LLMHostile::Hi"
--- error_code: 200
--- response_body_like eval
$LLMHostile::OkRe
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:timeout
--- error_log
llm provider "bad" attempt failed: timeout, status 504
--- no_error_log
upstream timed out



=== TEST 13: broken chunked encoding (error)
--- http_config
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
LLMHostile::reply("Transfer-Encoding: chunked\r\n", "zz\r\n$::Answer\r\n0\r\n\r\n")
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:error
--- error_log
upstream sent invalid chunked response
llm provider "bad" attempt failed: error



=== TEST 14: a response header larger than proxy_buffer_size (error)
--- http_config
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
LLMHostile::reply("X-Padding: " . ('p' x 16384) . "\r\nContent-Length: " . length($::Answer) . "\r\n", $::Answer)
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:error
--- error_log
upstream sent too big header while reading response header from upstream
llm provider "bad" attempt failed: error, status 502



=== TEST 15: a header line with a control byte (error)
--- http_config
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
LLMHostile::reply("X-Bad\x01: y\r\nContent-Length: " . length($::Answer) . "\r\n", $::Answer)
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:error
--- error_log
upstream sent invalid header
llm provider "bad" attempt failed: error, status 502



=== TEST 16: an answer without a status line (nginx takes it for HTTP/0.9, status 0) that is not a completion
--- http_config
    llm_provider bad uri=/_llm/tcp;
--- tcp_reply eval
"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
--- response_headers
X-LLM-Provider: ok
X-LLM-Fallback: bad:invalid_response
--- error_log
upstream sent no valid HTTP/1.0 header
llm provider "bad" attempt failed: invalid_response, status 0



=== TEST 17: a body trickled slower than llm_attempt_timeout (timeout)
--- http_config
    llm_provider bad uri=/_llm/pick;
--- config
    location = /t {
        llm_attempt_timeout 700ms;
        llm_fallback_chain bad ok;
    }
    location = /t-alone {
        llm_attempt_timeout 700ms;
        llm_fallback_chain bad;
    }
--- user_files eval
">>> slow.json\n" . LLMHostile::answer('"' . ('s' x 2000) . '"')
--- request eval
["POST /t?f=slow/slow.json\n$LLMHostile::Hi",
 "POST /t-alone?f=slow/slow.json\n$LLMHostile::Hi"]
--- error_code eval
[200, 502]
--- response_headers eval
["X-LLM-Provider: ok\nX-LLM-Fallback: bad:timeout", "x-should-retry: false"]
--- response_body_like eval
[$LLMHostile::OkRe, LLMHostile::exhausted(504, 'timeout')]
--- error_log
llm provider "bad" attempt failed: timeout, status 504
--- no_error_log
upstream timed out



=== TEST 18: a chain of hostile providers ends on the healthy one; without it, a 502 that lists every attempt
--- http_config
    llm_max_response_size 64k;
    llm_provider bad uri=/_llm/pick;
    llm_provider h1 uri=/_llm/get/files/bomb.json;
    llm_provider h2 uri=/_llm/get/files/latin1.json;
    llm_provider h3 uri=/_llm/get/mb/big.json;
    llm_provider h4 uri=/_llm/get/status/204;
    llm_provider h5 uri=/_llm/get/slow/slow.json;
--- config
    location = /all {
        llm_attempt_timeout 700ms;
        llm_fallback_chain h1 h2 h3 h4 h5 ok;
    }
    location = /none {
        llm_attempt_timeout 700ms;
        llm_fallback_chain h1 h2 h3 h4 h5;
    }
--- user_files eval
">>> bomb.json\n" . ('[' x 100000) . "\n"
. ">>> latin1.json\n" . LLMHostile::answer(qq("caf\xe9")) . "\n"
. ">>> big.json\n" . LLMHostile::answer('"' . ('y' x (1 << 20)) . '"') . "\n"
. ">>> slow.json\n" . LLMHostile::answer('"' . ('s' x 2000) . '"') . "\n"
--- request eval
["POST /all\n$LLMHostile::Hi", "POST /none\n$LLMHostile::Hi"]
--- timeout: 5
--- error_code eval
[200, 502]
--- response_headers eval
["X-LLM-Provider: ok\nX-LLM-Attempts: 6\nX-LLM-Fallback: h1:invalid_response,h2:invalid_response,h3:invalid_response,h4:invalid_response,h5:timeout",
 "X-LLM-Attempts: 5\nx-should-retry: false"]
--- response_body_like eval
[$LLMHostile::OkRe,
 qr/^\{"error":\{"message":"Every provider of the fallback chain failed\.","type":"llm_providers_exhausted","param":null,"code":null,"attempts":\[\{"provider":"h1","status":200,"reason":"invalid_response"\},\{"provider":"h2","status":200,"reason":"invalid_response"\},\{"provider":"h3","status":200,"reason":"invalid_response"\},\{"provider":"h4","status":204,"reason":"invalid_response"\},\{"provider":"h5","status":504,"reason":"timeout"\}\]\}\}$/]
--- error_log
llm provider "h3" response is larger than llm_max_response_size 65536
llm provider "h5" attempt failed: timeout, status 504



=== TEST 19: provider errors relayed to the client are completed to the OpenAI shape: a missing type, param or code, a type that is not a string, a numeric code (its string)
--- http_config
    llm_provider bad uri=/_llm/e400;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_4;
        default_type application/json;

        location = /bare { return 400 '{"error":{"message":"only a message"}}'; }
        location = /odd {
            return 400 '{"error":{"message":"odd types","type":5,"param":"messages","code":"x","extra":[1]}}';
        }
        location = /null {
            return 400 '{"error":{"message":"","type":null,"code":42}}';
        }
    }
--- config
    location = /t {
        llm_fallback_on off;
        llm_fallback_chain bad;
    }
    location = /_llm/e400 {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_4/$llm_test_pick;
    }
--- request eval
[map { "POST /t?f=$_\n$LLMHostile::Hi" } qw(bare odd null)]
--- error_code eval
[400, 400, 400]
--- response_body eval
['{"error":{"message":"only a message","type":"provider_error","param":null,"code":null}}',
 '{"error":{"message":"odd types","type":"provider_error","param":"messages","code":"x","extra":[1]}}',
 '{"error":{"message":"","type":"provider_error","code":"42","param":null}}']
--- error_log
llm provider "bad" attempt failed: http_400
