# Hostile client input against the real nginx with the module: JSON bombs,
# huge strings and arrays, invalid UTF-8, NUL, numbers out of range,
# duplicate keys, wrong types at every field, bodies nginx refuses, slow
# and pipelining clients, other HTTP versions and methods. Each gets its
# status from README "Errors" (400/405/413/415 in the OpenAI error shape) or
# nginx's own, and the worker survives: master_on() makes a crash visible
# as "exited on signal" (checked in every block), and most blocks send a
# normal request afterwards, which must still be answered. The blocks
# with the largest inputs allow the client 30 s (an AddressSanitizer build,
# make test-asan, takes seconds over them).

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;
use LLMHostile;
use LLMProviders ();
use LLMRedis ();

master_on();
no_shuffle();
no_long_string();

our $Hi = $LLMHostile::Hi;
our $Ok = "POST /chat\n$Hi";
our $OkRe = $LLMHostile::OkRe;

# 2000 levels of objects in an extra field: under jansson's limit (2048)
our $Deep = '{"messages":[{"role":"user","content":"hi"}],"metadata":'
          . ('{"a":' x 2000) . '1' . ('}' x 2000) . '}';

# 100k keys in an object
our $Wide = '{' . join(',', map { qq("k$_":$_) } 1 .. 100000)
          . ',"messages":[{"role":"user","content":"hi"}]}';

# an 8 MiB string
our $Long = '{"messages":[{"role":"user","content":"' . ('x' x (8 << 20))
          . '"}]}';

# The fields the module validates: a request builder, the wrong values
# it gets, the error message and param expected (regexes)
my $type = "Invalid type for '%s': expected %s\\.";
my $part = "Invalid content part in 'messages\\[0\\]\\.content': expected an "
         . "object with a string 'type'\\.";

sub field {
    my ($name) = @_;
    return sub { LLMHostile::with($name, $_[0]) };
}

sub field_error {
    my ($name, $expected) = @_;
    (my $param = $name) =~ s/([\[\].])/\\$1/g;
    return (sprintf($type, $param, $expected), $param);
}

our @WrongTypes = (
    [field('model'), ['4', '1.5', 'true', 'null', '[]', '{"name":"gpt-4o"}',
                      '["gpt-4o"]'],
     field_error('model', 'a string')],
    [sub { LLMHostile::post(qq({"messages":$_[0]})) },
     ['"hi"', '1', 'true', 'null', '{"role":"user"}'],
     field_error('messages', 'an array')],
    [sub { LLMHostile::post(qq({"messages":[{"role":"user","content":"hi"},$_[0]]})) },
     ['"hi"', '1', 'true', 'null', '[]', '[{"role":"user","content":"hi"}]'],
     field_error('messages[1]', 'an object')],
    [sub { LLMHostile::with_message('role', $_[0]) },
     ['1', 'true', 'null', '[]', '{}', '["user"]'],
     field_error('messages[0].role', 'a string')],
    [sub { LLMHostile::with_message('content', $_[0]) },
     ['1', 'true', '{}', '{"type":"text"}'],
     field_error('messages[0].content',
                 'a string, an array of content parts or null')],
    [sub { LLMHostile::with_message('content', "[$_[0]]") },
     ['"hi"', '1', 'null', '[]', '{}', '{"type":1}', '{"type":null}',
      '{"text":"hi"}'],
     $part, 'messages\\[0\\]\\.content'],
    [field('temperature'), ['"1"', 'true', '[]', '{}'],
     field_error('temperature', 'a number')],
    [field('top_p'), ['"1"', 'false', '[1]', '{}'],
     field_error('top_p', 'a number')],
    [field('max_tokens'), ['"10"', '1.5', 'true', '[]', '{}'],
     field_error('max_tokens', 'an integer')],
    [field('max_completion_tokens'), ['"10"', '2.0', 'false'],
     field_error('max_completion_tokens', 'an integer')],
    [field('stream'), ['"true"', '1', '0', '[]', '{}'],
     field_error('stream', 'a boolean')],
    [field('stream_options'), ['true', '"x"', '1', '[]'],
     field_error('stream_options', 'an object')],
    [sub { LLMHostile::with('stream_options', qq({"include_usage":$_[0]})) },
     ['"true"', '1', 'null', '{}'],
     field_error('stream_options.include_usage', 'a boolean')],
    [field('tools'), ['{}', '"f"', '1', 'true', 'null'],
     field_error('tools', 'an array')],
    [field('stop'), ['1', 'true', '{}'],
     field_error('stop', 'a string, an array of strings or null')],
);

# Fields the module passes on without checking their type (the provider
# judges them), each with values of the wrong type. Round k of a table
# sets every field to its k-th value (when it has one), so that a few
# requests cover them all.
my %junk_top = (
    tool_choice => ['5', '"sometimes"', '{"type":"function","function":5}',
                    '{"type":"function"}', '[]'],
    n => ['"two"', '-1', '1e9', '9223372036854775807'],
    response_format => ['"json"', '{"type":"json_schema","json_schema":5}',
                        '{"type":"json_schema","json_schema":{"schema":"x"}}'],
    tools => ['[5,"x",null,[],{}]', '[{"type":"function","function":5},{"type":5}]',
              '[{"type":"function","function":{"name":5,"parameters":"x"}}]',
              '[{"type":"function","function":{"name":"f","parameters":[1]}}]'],
    stop => ['[1,{},null,[]]', '[""," "]'],
    temperature => ['1e308', '-1e308'], top_p => ['-5'],
    max_tokens => ['9223372036854775807'],
    user => ['5'], seed => ['"x"'], logit_bias => ['[]'],
    parallel_tool_calls => ['"no"'], metadata => ['5'], functions => ['5'],
    function_call => ['[]'], presence_penalty => ['"x"'],
    frequency_penalty => ['{}'], logprobs => ['"x"'], top_logprobs => ['[]'],
    modalities => ['5'], reasoning_effort => ['5'], store => ['"yes"'],
);

my %junk_message = (
    name => ['5', '{}'],
    tool_calls => ['"x"', '[5,"x",null,[]]',
                   '[{"id":5,"type":7,"function":"f"}]',
                   '[{"id":"c","type":"function","function":{"name":5,"arguments":{}}}]',
                   '[{"id":"c","type":"function","function":{"name":"f","arguments":"{not json"}}]'],
    tool_call_id => ['[]'], refusal => ['5'], audio => ['"x"'],
    cache_control => ['5'],
);

sub rounds {
    my ($table) = @_;
    my @rounds;

    for my $f (sort keys %$table) {
        my $values = $table->{$f};
        $rounds[$_]{$f} = $values->[$_] for 0 .. $#$values;
    }

    return map { my $r = $_; join ',', map { qq("$_":$r->{$_}) } sort keys %$r }
           @rounds;
}

my @junk_parts = (
    '{"type":"text","text":5}', '{"type":"text"}',
    '{"type":"image_url","image_url":5}',
    '{"type":"image_url","image_url":{"url":5}}',
    '{"type":"image_url","image_url":{"url":"data:image/png;base64"}}',
    '{"type":"image_url","image_url":{"url":"data:;base64,"}}',
    '{"type":"image_url","image_url":{"url":"data:image/png,x"}}',
    '{"type":"image_url","image_url":{"url":""}}',
    '{"type":"file","file":5}', '{"type":"file","file":{"file_data":5}}',
    '{"type":"file","file":{"file_data":"data:application/pdf;base64"}}',
    '{"type":"input_audio","input_audio":{"data":5,"format":[]}}',
    '{"type":"input_audio"}', '{"type":"refusal","refusal":5}',
    '{"type":""}', '{"type":"wizard"}',
);

my @junk_conversations = (
    '[{"role":"system","content":"only a system message"}]',
    '[{"role":"developer","content":null}]',
    '[{"role":"assistant","content":"first"}]',
    '[{"role":"","content":"hi"}]', '[{"role":"wizard","content":"hi"}]',
    '[{"role":"tool","content":"42"}]',
    '[{"role":"tool","tool_call_id":"nope","content":[{"type":"text","text":"42"}]}]',
    '[{"role":"user","content":null},{"role":"user"}]',
    '[{"role":"assistant","content":null,"tool_calls":[]},{"role":"user","content":"hi"}]',
    '[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a:b c","type":"function","function":{"name":"f","arguments":"[]"}}]},{"role":"tool","tool_call_id":"a:b c","content":"1"},{"role":"tool","tool_call_id":"a:b c","content":"2"}]',
    '[{"role":"function","name":"f","content":"1"},{"role":"user","content":""}]',
);

# the bodies, each sent to the three formats
our @Junk = (
    (map { qq({$_,"messages":[{"role":"user","content":"hi"}]}) }
         rounds(\%junk_top)),
    (map { qq({"messages":[{"role":"user","content":"hi",$_}]}) }
         rounds(\%junk_message)),
    (map { qq({"messages":[{"role":"user","content":[$_]}]}) }
         join(',', @junk_parts[0 .. 7]), join(',', @junk_parts[8 .. 15])),
    (map { qq({"messages":$_}) } @junk_conversations),
);

our $ClaudeRe = qr/^\{.*"content":"hello from claude"/;
our $GeminiRe = qr/^\{.*"content":"hello from gemini"/;

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", LLMFake::fake_providers()
        . LLMProviders::statics()
        . "    llm_provider ok uri=/_llm/ok;\n"
        . "    llm_provider echo uri=/_llm/echo;\n"
        . "    llm_provider claude uri=/_llm/s/anthropic/ok format=anthropic"
        . " model=claude-3-5-haiku-latest;\n"
        . "    llm_provider gem uri=/_llm/s/gemini/ok format=gemini"
        . " model=gemini-2.0-flash;\n"
        . ($block->http_config // ''));

    $block->set_value("config", LLMFake::llm_locations() . <<'END'
    location /chat {
        client_max_body_size 32m;
        llm_fallback_chain ok;
    }
    location /echo {
        client_max_body_size 32m;
        llm_fallback_chain echo;
    }
    location /anthropic { llm_fallback_chain claude; }
    location /gemini { llm_fallback_chain gem; }
    location /_llm/s/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_3/;
    }
END
        . ($block->config // ''));

    if (!defined $block->more_headers && !defined $block->raw_request) {
        $block->set_value("more_headers", "Content-Type: application/json");
    }

    LLMHostile::survives($block);
});

run_tests();

__DATA__

=== TEST 1: 100k levels of "[" are refused at the parser's depth limit
--- timeout: 30
--- request eval
[LLMHostile::post('[' x 100000), $::Ok]
--- error_code eval
[400, 200]
--- response_body_like eval
[LLMHostile::unparsable('maximum parsing depth reached'), $::OkRe]



=== TEST 2: 100k levels of {"a": are refused too
--- timeout: 30
--- request eval
[LLMHostile::post('{"a":' x 100000), $::Ok]
--- error_code eval
[400, 200]
--- response_body_like eval
[LLMHostile::unparsable('maximum parsing depth reached'), $::OkRe]



=== TEST 3: 100k balanced levels inside a valid request field
--- timeout: 30
--- request eval
[LLMHostile::post('{"messages":[{"role":"user","content":"hi"}],"metadata":'
               . ('[' x 100000) . (']' x 100000) . '}'), $::Ok]
--- error_code eval
[400, 200]
--- response_body_like eval
[LLMHostile::unparsable('maximum parsing depth reached'), $::OkRe]



=== TEST 4: 2000 levels (under the limit) are accepted and sent as they came
--- timeout: 30
--- request eval
[LLMHostile::post($::Deep, '/echo'), $::Ok]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/len=\[${\ length $::Deep}\] /, $::OkRe]



=== TEST 5: an 8 MiB string is read, validated and sent intact
--- timeout: 30
--- request eval
[LLMHostile::post($::Long, '/echo'), $::Ok]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/len=\[${\ length $::Long}\] /, $::OkRe]



=== TEST 6: a 6 MiB string of \u escapes
--- timeout: 30
--- request eval
[LLMHostile::post('{"messages":[{"role":"user","content":"'
               . ('\u00e9' x (1 << 20)) . '"}]}'), $::Ok]
--- error_code eval
[200, 200]
--- response_body_like eval
[$::OkRe, $::OkRe]



=== TEST 7: a 4 MiB model name and a 4 MiB unknown key
--- timeout: 30
--- request eval
[LLMHostile::with('model', '"' . ('m' x (4 << 20)) . '"'),
 LLMHostile::with('k' x (4 << 20), '1'), $::Ok]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
[$::OkRe, $::OkRe, $::OkRe]



=== TEST 8: 100k messages
--- timeout: 30
--- request eval
[LLMHostile::post('{"messages":['
     . CORE::join(',', ('{"role":"user","content":"hi"}') x 100000) . ']}'),
 $::Ok]
--- error_code eval
[200, 200]
--- response_body_like eval
[$::OkRe, $::OkRe]



=== TEST 9: 100k messages, the last one without a role: every one is checked
--- timeout: 30
--- request eval
[LLMHostile::post('{"messages":['
     . CORE::join(',', ('{"role":"user","content":"hi"}') x 99999)
     . ',{"content":"hi"}]}'), $::Ok]
--- error_code eval
[400, 200]
--- response_body_like eval
[LLMHostile::invalid("Missing required parameter: 'messages\\[99999\\]\\.role'\\.",
                  'messages\[99999\]\.role'), $::OkRe]



=== TEST 10: 100k content parts, 100k stop sequences, 100k tools
--- timeout: 30
--- request eval
[LLMHostile::post('{"messages":[{"role":"user","content":['
     . CORE::join(',', ('{"type":"text","text":"a"}') x 100000) . ']}]}'),
 LLMHostile::with('stop', '[' . CORE::join(',', ('"s"') x 100000) . ']'),
 LLMHostile::with('tools', '[' . CORE::join(',',
     ('{"type":"function","function":{"name":"f"}}') x 100000) . ']'),
 $::Ok]
--- error_code eval
[200, 200, 200, 200]
--- response_body_like eval
[$::OkRe, $::OkRe, $::OkRe, $::OkRe]



=== TEST 11: 100k distinct keys and 100k copies of one key in an object
--- timeout: 30
--- request eval
[LLMHostile::post('{' . CORE::join(',', map { qq("k$_":$_) } 1 .. 100000)
               . ',"messages":[{"role":"user","content":"hi"}]}'),
 LLMHostile::post('{' . CORE::join(',', ('"k":1') x 100000)
               . ',"messages":[{"role":"user","content":"hi"}]}'),
 $::Ok]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
[$::OkRe, $::OkRe, $::OkRe]



=== TEST 12: invalid UTF-8 in a string: a stray byte, an overlong form, an encoded surrogate, a cut sequence
--- request eval
[LLMHostile::with_message('content', qq("caf\xff")),
 LLMHostile::with_message('content', qq("\xc0\xaf")),
 LLMHostile::with_message('content', qq("\xed\xa0\x80")),
 LLMHostile::with_message('content', qq("\xe2\x82")),
 $::Ok]
--- error_code eval
[400, 400, 400, 400, 200]
--- response_body_like eval
[LLMHostile::unparsable('unable to decode byte 0xff'),
 LLMHostile::unparsable('unable to decode byte 0xc0'),
 LLMHostile::unparsable('unable to decode byte 0xed'),
 LLMHostile::unparsable('unable to decode byte 0xe2'),
 $::OkRe]



=== TEST 13: invalid UTF-8 in a key, and outside any string
--- request eval
[LLMHostile::post(qq({"messages\xff":[{"role":"user","content":"hi"}]})),
 LLMHostile::post(qq({"messages":[{"role":"user","content":"hi"}]\xff})),
 $::Ok]
--- error_code eval
[400, 400, 200]
--- response_body_like eval
[LLMHostile::unparsable('unable to decode byte 0xff'),
 LLMHostile::unparsable(''),
 $::OkRe]



=== TEST 14: escaped lone surrogates are refused, a valid pair and raw 4-byte UTF-8 are not
--- request eval
[LLMHostile::with_message('content', '"\ud800"'),
 LLMHostile::with_message('content', '"\udc00x"'),
 LLMHostile::with_message('content', qq("\\ud83d\\ude00 \xf0\x9f\x98\x80")),
 $::Ok]
--- error_code eval
[400, 400, 200, 200]
--- response_body_like eval
[LLMHostile::unparsable('invalid Unicode'),
 LLMHostile::unparsable('invalid Unicode'),
 $::OkRe, $::OkRe]



=== TEST 15: \u0000 in content, in a key, in the model: refused
--- request eval
[LLMHostile::with_message('content', '"a\u0000b"'),
 LLMHostile::with('model', '"gpt\u0000-4o"'),
 LLMHostile::post('{"mess\u0000ages":[{"role":"user","content":"hi"}]}'),
 $::Ok]
--- error_code eval
[400, 400, 400, 200]
--- response_body_like eval
[LLMHostile::unparsable('\\\\u0000 is not allowed'),
 LLMHostile::unparsable('\\\\u0000 is not allowed'),
 LLMHostile::unparsable('NUL byte in object key not supported'),
 $::OkRe]



=== TEST 16: raw NUL and control bytes in and outside strings
--- request eval
[LLMHostile::with_message('content', qq("a\x00b")),
 LLMHostile::with_message('content', qq("a\x01b")),
 LLMHostile::post(qq({"messages":[{"role":"user","content":"hi"}]\x00})),
 LLMHostile::post(qq(\x00{"messages":[{"role":"user","content":"hi"}]})),
 $::Ok]
--- error_code eval
[400, 400, 400, 400, 200]
--- response_body_like eval
[LLMHostile::unparsable('control character 0x0'),
 LLMHostile::unparsable('control character 0x1'),
 LLMHostile::unparsable(''),
 LLMHostile::unparsable(''),
 $::OkRe]



=== TEST 17: a UTF-8 byte order mark, trailing data, two objects
--- request eval
[LLMHostile::post("\xef\xbb\xbf$::Hi"),
 LLMHostile::post("$::Hi x"),
 LLMHostile::post("$::Hi$::Hi"),
 $::Ok]
--- error_code eval
[400, 400, 400, 200]
--- response_body_like eval
[LLMHostile::unparsable(''),
 LLMHostile::unparsable('end of file expected'),
 LLMHostile::unparsable('end of file expected'),
 $::OkRe]



=== TEST 18: numbers out of range: 1e400, -1e400, 2^64 and 2^63 as max_tokens, 10000 digits
--- request eval
[LLMHostile::with('temperature', '1e400'),
 LLMHostile::with('temperature', '-1e400'),
 LLMHostile::with('max_tokens', '18446744073709551616'),
 LLMHostile::with('max_tokens', '9223372036854775808'),
 LLMHostile::with('top_p', '1' x 10000),
 $::Ok]
--- error_code eval
[400, 400, 400, 400, 400, 200]
--- response_body_like eval
[LLMHostile::unparsable('real number overflow'),
 LLMHostile::unparsable('real number overflow'),
 LLMHostile::unparsable('too big integer'),
 LLMHostile::unparsable('too big integer'),
 LLMHostile::unparsable('too big integer'),
 $::OkRe]



=== TEST 19: numbers at the edges: -2^63 and 0 are below max_tokens' minimum, 2^63-1 and 1e-400 are fine, 1e3 is not an integer
--- request eval
[LLMHostile::with('max_tokens', '-9223372036854775808'),
 LLMHostile::with('max_completion_tokens', '0'),
 LLMHostile::with('max_tokens', '9223372036854775807'),
 LLMHostile::with('temperature', '1e-400'),
 LLMHostile::with('max_tokens', '1e3'),
 $::Ok]
--- error_code eval
[400, 400, 200, 200, 400, 200]
--- response_body_like eval
[LLMHostile::invalid("Invalid 'max_tokens': integer below minimum value, expected a value >= 1\\.", 'max_tokens'),
 LLMHostile::invalid("Invalid 'max_completion_tokens': integer below minimum value, expected a value >= 1\\.", 'max_completion_tokens'),
 $::OkRe, $::OkRe,
 LLMHostile::invalid("Invalid type for 'max_tokens': expected an integer\\.", 'max_tokens'),
 $::OkRe]



=== TEST 20: NaN, Infinity and other tokens that are not JSON numbers
--- request eval
[(map { LLMHostile::with('temperature', $_) }
      qw(NaN nan -NaN Infinity -Infinity inf 01 1. .5 +1 - 0x10 1e 1e+)),
 $::Ok]
--- error_code eval
[(400) x 14, 200]
--- response_body_like eval
[(LLMHostile::unparsable('')) x 14,
 $::OkRe]



=== TEST 21: duplicate keys: the last one wins, as in most JSON parsers
--- request eval
[LLMHostile::post('{"messages":"x","messages":[{"role":"user","content":"hi"}]}'),
 LLMHostile::post('{"messages":[{"role":"user","content":"hi"}],"messages":"x"}'),
 LLMHostile::post('{"model":"a","model":4,"messages":[{"role":"user","content":"hi"}]}'),
 LLMHostile::post('{"messages":[{"role":"user","role":7,"content":"hi"}]}'),
 $::Ok]
--- error_code eval
[200, 400, 400, 400, 200]
--- response_body_like eval
[$::OkRe,
 LLMHostile::invalid("Invalid type for 'messages': expected an array\\.", 'messages'),
 LLMHostile::invalid("Invalid type for 'model': expected a string\\.", 'model'),
 LLMHostile::invalid("Invalid type for 'messages\\[0\\]\\.role': expected a string\\.", 'messages\[0\]\.role'),
 $::OkRe]



=== TEST 22: the body is not an object
--- request eval
[(map { LLMHostile::post($_) } ('[]', '[{"messages":[]}]', '"messages"',
                                '42', 'null', 'true')),
 $::Ok]
--- error_code eval
[(400) x 6, 200]
--- response_body_like eval
[(LLMHostile::invalid('The request body must be a JSON object\.')) x 2,
 (LLMHostile::unparsable("'[' or '{' expected")) x 4,
 $::OkRe]



=== TEST 23: wrong types at every field the module validates
--- request eval
[(map { my $t = $_; map { $t->[0]->($_) } @{ $t->[1] } } @::WrongTypes), $::Ok]
--- error_code eval
[(map { (400) x @{ $_->[1] } } @::WrongTypes), 200]
--- response_body_like eval
[(map { my $t = $_; (LLMHostile::invalid($t->[2], $t->[3])) x @{ $t->[1] } }
      @::WrongTypes),
 $::OkRe]



=== TEST 24: fields the module does not validate, with wrong types, through all three formats: no crash, the translators drop what they cannot send
--- request eval
[(map { my $b = $_; map { LLMHostile::post($b, $_) } qw(/chat /anthropic /gemini) }
      @::Junk),
 $::Ok]
--- error_code eval
[(200) x (3 * @::Junk), 200]
--- response_body_like eval
[(map { ($::OkRe, $::ClaudeRe, $::GeminiRe) } @::Junk), $::OkRe]



=== TEST 25: an empty body, with and without Content-Length: 0
--- request eval
["POST /chat", "POST /chat\n", $::Ok]
--- more_headers eval
["Content-Type: application/json",
 "Content-Type: application/json\nContent-Length: 0",
 "Content-Type: application/json"]
--- error_code eval
[400, 400, 200]
--- response_body_like eval
[(LLMHostile::invalid("The request body is empty: expected a JSON object with 'messages'\\.")) x 2,
 $::OkRe]



=== TEST 26: a body of white space only
--- raw_request eval
"POST /chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
. "Content-Length: 4\r\nConnection: close\r\n\r\n \r\n\t"
--- error_code: 400
--- response_body_like eval
LLMHostile::unparsable("'[' or '{' expected near end of file")



=== TEST 27: a body larger than client_max_body_size is a 413 in the OpenAI error shape, not nginx's HTML page
--- config
    location /small {
        client_max_body_size 1k;
        llm_fallback_chain ok;
    }
--- request eval
LLMHostile::post(LLMHostile::content('x' x 2000), '/small')
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body chomp
{"error":{"message":"The request body is larger than this endpoint accepts (client_max_body_size 1024 bytes).","type":"invalid_request_error","param":null,"code":"request_too_large"}}
--- error_log
client intended to send too large body: 2043 bytes



=== TEST 28: a chunked body larger than client_max_body_size is a JSON 413 too
--- config
    location /small {
        client_max_body_size 1k;
        llm_fallback_chain ok;
    }
--- request eval
"POST /small\n" . sprintf("%x\r\n%s\r\n0\r\n\r\n", 2000,
                          LLMHostile::content('x' x 1954))
--- more_headers
Content-Type: application/json
Transfer-Encoding: chunked
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body chomp
{"error":{"message":"The request body is larger than this endpoint accepts (client_max_body_size 1024 bytes).","type":"invalid_request_error","param":null,"code":"request_too_large"}}
--- error_log
client intended to send too large chunked body: 



=== TEST 28a: other locations keep nginx's own 413 page
--- config
    location /plain {
        client_max_body_size 1k;
        return 200 'fine';
    }
--- request eval
LLMHostile::post(LLMHostile::content('x' x 2000), '/plain')
--- error_code: 413
--- response_headers
Content-Type: text/html
--- response_body_like: <title>413 Request Entity Too Large</title>
--- error_log
client intended to send too large body: 2043 bytes



=== TEST 29: Content-Length headers nginx refuses itself
--- request eval
["POST /chat\n$::Hi", "POST /chat\n$::Hi", "POST /chat\n$::Hi", "POST /chat\n$::Hi", $::Ok]
--- more_headers eval
["Content-Type: application/json\nContent-Length: 99999999999999999999",
 "Content-Type: application/json\nContent-Length: -45",
 "Content-Type: application/json\nContent-Length: 45\nTransfer-Encoding: chunked",
 "Content-Type: application/json\nTransfer-Encoding: gzip",
 "Content-Type: application/json"]
--- error_code eval
[400, 400, 400, 501, 200]
--- response_body_like eval
[qr{<title>400 Bad Request</title>}, qr{<title>400 Bad Request</title>},
 qr{<title>400 Bad Request</title>}, qr{<title>501 Not Implemented</title>},
 $::OkRe]
--- no_error_log
[warn]



=== TEST 30: a chunked body is read whole
--- request eval
["POST /echo\n" . CORE::join('', map { sprintf("%x\r\n%s\r\n", length, $_) }
                             ($::Hi =~ /(.{1,7})/gs)) . "0\r\n\r\n",
 $::Ok]
--- more_headers eval
["Content-Type: application/json\nTransfer-Encoding: chunked",
 "Content-Type: application/json"]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/len=\[45\] /, $::OkRe]



=== TEST 31: a broken chunked body is nginx's 400
--- request eval
"POST /chat\nzz\r\n$::Hi\r\n0\r\n\r\n"
--- more_headers
Content-Type: application/json
Transfer-Encoding: chunked
--- error_code: 400
--- response_body_like: <title>400 Bad Request</title>
--- error_log
client sent invalid chunked body



=== TEST 32: a client that trickles its headers and body byte by byte
--- raw_request eval
[split //, "POST /chat HTTP/1.1\r\nHost: localhost\r\n"
           . "Content-Type: application/json\r\nContent-Length: 45\r\n"
           . "Connection: close\r\n\r\n$::Hi"]
--- raw_request_middle_delay: 0.002
--- error_code: 200
--- response_body_like eval
$::OkRe



=== TEST 33: a body trickled in small packets with pauses, then a normal request
--- request eval
[[ "POST /chat\n", (map { { value => $_, delay_before => 0.05 } }
                        $::Hi =~ /(.{1,5})/gs) ],
 $::Ok]
--- error_code eval
[200, 200]
--- response_body_like eval
[$::OkRe, $::OkRe]



=== TEST 34: a body slower than client_body_timeout: nginx closes the connection (408 in the access log), the worker goes on
--- config
    location /slow {
        client_body_timeout 300ms;
        llm_fallback_chain ok;
    }
--- raw_request eval
"POST /slow HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
. "Content-Length: 45\r\nConnection: close\r\n\r\n{\"messages\":"
--- timeout: 3
--- ignore_response
--- access_log
"POST /slow HTTP/1.1" 408



=== TEST 35: headers slower than client_header_timeout
--- config
    client_header_timeout 300ms;
--- raw_request eval
"POST /chat HTTP/1.1\r\nHost: local"
--- timeout: 3
--- ignore_response
--- error_log
client timed out (110: Connection timed out) while reading client request headers



=== TEST 36: pipelined requests on one connection: errors in between do not break the ones after
--- pipelined_requests eval
[$::Ok, "POST /chat\n{\"messages\":[", "GET /chat\n$::Hi",
 LLMHostile::with('max_tokens', '0'), "PUT /chat\n$::Hi", $::Ok]
--- error_code eval
[200, 400, 405, 400, 405, 200]
--- response_body_like eval
[$::OkRe, LLMHostile::unparsable(''),
 LLMHostile::invalid('Only POST is allowed on this endpoint\.'),
 LLMHostile::invalid("Invalid 'max_tokens': [^\"]+", 'max_tokens'),
 LLMHostile::invalid('Only POST is allowed on this endpoint\.'),
 $::OkRe]



=== TEST 37: twenty pipelined requests in one write
--- pipelined_requests eval
[($::Ok) x 20]
--- error_code eval
[(200) x 20]
--- response_body_like eval
[($::OkRe) x 20]



=== TEST 38: HTTP/1.0
--- request eval
["POST /chat HTTP/1.0\n$::Hi", "GET /chat HTTP/1.0", $::Ok]
--- error_code eval
[200, 405, 200]
--- response_body_like eval
[$::OkRe, LLMHostile::invalid('Only POST is allowed on this endpoint\.'),
 $::OkRe]



=== TEST 39: HTTP/1.0 without Content-Length: no body for nginx, so an empty request
--- raw_request eval
"POST /chat HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n\r\n$::Hi"
--- error_code: 400
--- response_body_like eval
LLMHostile::invalid("The request body is empty: expected a JSON object with 'messages'\\.")



=== TEST 40: HEAD, GET and other methods are 405 with Allow: POST
--- request eval
["HEAD /chat", "GET /chat", "GET /chat\n$::Hi", "PUT /chat\n$::Hi",
 "DELETE /chat", "PATCH /chat\n$::Hi", "OPTIONS /chat", "PROPFIND /chat",
 $::Ok]
--- error_code eval
[(405) x 8, 200]
--- response_headers eval
[("Allow: POST\nContent-Type: application/json") x 8,
 "Content-Type: application/json\n!Allow"]
--- response_body_like eval
[qr/^$/, (LLMHostile::invalid('Only POST is allowed on this endpoint\.')) x 7,
 $::OkRe]



=== TEST 41: TRACE and methods nginx cannot parse are nginx's own
--- request eval
["TRACE /chat", "G\x01T /chat", $::Ok]
--- error_code eval
[405, 400, 200]
--- response_body_like eval
[qr{<title>405 Not Allowed</title>}, qr{<title>400 Bad Request</title>},
 $::OkRe]



=== TEST 42: a header line over large_client_header_buffers, a URI too long
--- request eval
["POST /chat\n$::Hi", "POST /chat?" . ('a' x 9000) . "\n$::Hi", $::Ok]
--- more_headers eval
["Content-Type: application/json\nAuthorization: Bearer " . ('k' x 9000),
 "Content-Type: application/json", "Content-Type: application/json"]
--- error_code eval
[400, 414, 200]
--- response_body_like eval
[qr{<title>400 Request Header Or Cookie Too Large</title>},
 qr{<title>414 Request-URI Too Large</title>}, $::OkRe]



=== TEST 43: content types: only JSON ones are accepted
--- request eval
[($::Ok) x 10]
--- more_headers eval
[map { "Content-Type: $_" } ('text/plain', 'application/jsonx',
     'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
     'json', 'application/', 'application/json; charset=latin1',
     'APPLICATION/JSON', 'application/vnd.api+json',
     'application/json, text/plain')]
--- error_code eval
[(415) x 6, 200, 200, 200, 415]
--- response_body_like eval
[(LLMHostile::invalid('Unsupported Content-Type: the request body must be JSON \(application/json\)\.')) x 6,
 $::OkRe, $::OkRe, $::OkRe,
 LLMHostile::invalid('Unsupported Content-Type: the request body must be JSON \(application/json\)\.')]




=== TEST 44: deep, wide and huge requests through the cache: their keys are computed and stored, the second one is a HIT
--- timeout: 30
--- skip_eval: 18: !$LLMRedis::Available
--- config
    location /cached {
        client_max_body_size 32m;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=2s;
        llm_fallback_chain ok;
    }
--- request eval
[map { (LLMHostile::post($_, '/cached'), LLMHostile::post($_, '/cached')) }
     ($::Deep, $::Wide, $::Long)]
--- error_code eval
[(200) x 6]
--- response_headers eval
[("X-LLM-Cache: MISS", "X-LLM-Cache: HIT") x 3]
