# The JSON scanner of the hot path accepts and refuses what jansson does,
# reads keys and values as jansson does, and keeps jansson's error text
# for a body it refuses.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", LLMFake::fake_providers()
                      . "    llm_provider ok uri=/_llm/ok;\n"
                      . "    llm_provider echo uri=/_llm/echo;\n");

    $block->set_value("config", LLMFake::llm_locations()
                      . "    location /chat { llm_fallback_chain ok; }\n"
                      . "    location /echo { llm_fallback_chain echo; }\n"
                      . ($block->config // ''));

    if (!defined $block->more_headers) {
        $block->set_value("more_headers", "Content-Type: application/json");
    }

    if (!defined $block->error_code) {
        $block->set_value("error_code", 400);
    }

    if (!defined $block->no_error_log) {
        $block->set_value("no_error_log", "[error]\n[alert]\n");
    }
});

# a valid request whose "x" holds arrays nested $n deep
sub nested {
    my $n = shift;
    return '{"messages":[{"role":"user","content":"hi"}],"x":'
           . ('[' x $n) . (']' x $n) . '}';
}

run_tests();

__DATA__

=== TEST 1: a duplicate key: the last one counts
--- request
POST /chat
{"messages":"not an array","messages":[{"role":"user","content":"hi"}]}
--- error_code: 200
--- response_body_like: hello from ok



=== TEST 2: a duplicate key: the last one is checked
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}],"messages":"not an array"}
--- response_body_like: "message":"Invalid type for 'messages': expected an array.","type":"invalid_request_error","param":"messages"



=== TEST 3: keys are read unescaped
--- request
POST /chat
{"mess\u0061ges":[{"role":"user","content":"hi"}],"max_tok\u0065ns":0}
--- response_body chomp
{"error":{"message":"Invalid 'max_tokens': integer below minimum value, expected a value >= 1.","type":"invalid_request_error","param":"max_tokens","code":null}}



=== TEST 4: max_completion_tokens below 1
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":-9223372036854775808}
--- response_body chomp
{"error":{"message":"Invalid 'max_completion_tokens': integer below minimum value, expected a value >= 1.","type":"invalid_request_error","param":"max_completion_tokens","code":null}}



=== TEST 5: the client's model, unescaped, names an answer that has none
--- request
POST /echo
{"model":"gpt\u002d4o \ud83d\ude00","messages":[{"role":"user","content":"hi"}]}
--- error_code: 200
--- response_body_like: "model":"gpt-4o \xf0\x9f\x98\x80"



=== TEST 6: nesting up to jansson's limit of 2048 levels
--- request eval
"POST /chat\n" . main::nested(2047)
--- error_code: 200
--- response_body_like: hello from ok



=== TEST 7: one level more is refused with jansson's message
--- request eval
"POST /chat\n" . main::nested(2048)
--- response_body_like: "message":"We could not parse the JSON body of your request: maximum parsing depth reached near '\[' \(line 1, column 2097\)","type":"invalid_request_error","param":null



=== TEST 8: invalid UTF-8
--- request eval
"POST /chat\n" . qq({"messages":[{"role":"user","content":"h\xffi"}]})
--- response_body_like: "message":"We could not parse the JSON body of your request: unable to decode byte 0xff



=== TEST 9: an integer beyond 64 bits
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}],"max_tokens":9223372036854775808}
--- response_body_like: "message":"We could not parse the JSON body of your request: too big integer



=== TEST 10: a real beyond a double
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}],"temperature":1.8e308}
--- response_body_like: "message":"We could not parse the JSON body of your request: real number overflow



=== TEST 11: a tiny real is zero, as in jansson
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}],"temperature":1e-400}
--- error_code: 200
--- response_body_like: hello from ok



=== TEST 12: a lone surrogate
--- request
POST /chat
{"messages":[{"role":"user","content":"\ud800"}]}
--- response_body_like: "message":"We could not parse the JSON body of your request: invalid Unicode '\\\\uD800'



=== TEST 13: \u0000
--- request
POST /chat
{"messages":[{"role":"user","content":"a\u0000b"}]}
--- response_body_like: "message":"We could not parse the JSON body of your request: \\\\u0000 is not allowed



=== TEST 14: jansson skips one NUL byte right after a number
--- request eval
"POST /chat\n" . qq({"messages":[{"role":"user","content":"hi"}],"max_tokens":5\0})
--- error_code: 200
--- response_body_like: hello from ok



=== TEST 15: but not two
--- request eval
"POST /chat\n" . qq({"messages":[{"role":"user","content":"hi"}],"max_tokens":5\0\0})
--- response_body_like: "message":"We could not parse the JSON body of your request: [^"]+ \(line 1, column 60\)"



=== TEST 16: a scalar at the top is not JSON for jansson either
--- request
POST /chat
"hello"
--- response_body_like: "message":"We could not parse the JSON body of your request: '\[' or '\{' expected
