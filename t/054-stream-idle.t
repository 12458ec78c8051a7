# llm_stream_idle_timeout counts from a committed stream's last event, not
# from its commit point: a stream that goes on longer than the timeout,
# never silent for that long, is not cut; one that falls silent after
# several events ends with the idle error event after all of them.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMStream;
use LLMSchema;

stream_server(
    # a first content at once, then eight more 0.3 s apart: 2.4 s in all
    steady => [sse_head(), map({ (sse_event(openai_chunk(qq({"content":"$_ "}))),
                                  0.3) } 1 .. 8),
               sse_event(openai_chunk('{}', 'stop')), "data: [DONE]\n\n"],
    # four events 0.3 s apart, then silence
    quiet  => [sse_head(), map({ (sse_event(openai_chunk(qq({"content":"$_ "}))),
                                  0.3) } 1 .. 4),
               { hang => 1 }],
);

no_shuffle();

LLMSchema::check_bodies();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config",
        "    llm_provider steady uri=/_s/steady;\n"
        . "    llm_provider quiet uri=/_s/quiet;\n");

    $block->set_value("config", <<'EOF' . ($block->config // ''));
    location ~ ^/_s/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
        proxy_http_version 1.1;
        proxy_read_timeout 10s;
    }
EOF

    $block->set_value("request", "POST /chat\n"
        . '{"model":"m","stream":true,'
        . '"messages":[{"role":"user","content":"hi"}]}');
    $block->set_value("more_headers", "Content-Type: application/json");
    $block->set_value("timeout", 10);
});

run_tests();

__DATA__

=== TEST 1: a stream longer than the idle timeout, never idle that long
--- config
    location /chat {
        llm_stream_idle_timeout 800ms;
        llm_fallback_chain steady;
    }
--- error_code: 200
--- response_body_like eval
qr/\A(?!.*"error")(?:data: [^\n]*"content":"\d "[^\n]*\n\n){8}data: [^\n]*"finish_reason":"stop"[^\n]*\n\ndata: \[DONE\]\n\n\z/
--- no_error_log
[error]
stream failed



=== TEST 2: silent after four events: the idle error after all four
--- config
    location /chat {
        llm_stream_idle_timeout 800ms;
        llm_fallback_chain quiet;
    }
--- error_code: 200
--- response_body_like eval
qr/\A(?:data: [^\n]*"content":"\d "[^\n]*\n\n){4}data: \{"error":\{[^\n]*"code":"llm_stream_idle_timeout"\}\}\n\ndata: \[DONE\]\n\n\z/
--- error_log
stream failed after its first content: no event within llm_stream_idle_timeout
