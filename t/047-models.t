# llm_models: GET /v1/models in OpenAI's shape, or Anthropic's for a
# request with anthropic-version; the names given, else the providers'
# model= (distinct, in declaration order); HEAD; 405 in both shapes; an
# empty list; configuration errors.  And $llm_request_model: virtual
# model names routed to chains with map, in add_header and log_format.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use Time::Local ();
use LLMFake;
use LLMSchema;

no_shuffle();

# the chat answers and the OpenAI-shaped errors: OpenAI's schemas
LLMSchema::check_bodies();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config",
                      LLMFake::fake_providers() . ($block->http_config // ''));
    $block->set_value("config",
                      LLMFake::llm_locations() . ($block->config // ''));
});

# "created" (Unix time) and "created_at" (RFC 3339) are the time the
# configuration was loaded: each becomes T when it is within a day of
# now (the configuration of this block was loaded a moment ago)
sub ::canon_time {
    my ($body) = @_;
    my $now = time;

    $body =~ s{"created":(\d+)}{
        abs($1 - $now) < 86400 ? '"created":T' : "\"created\":$1"
    }ge;

    $body =~ s{"created_at":"((\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z)"}{
        my $t = Time::Local::timegm($7, $6, $5, $4, $3 - 1, $2);
        abs($t - $now) < 86400 ? '"created_at":"T"' : "\"created_at\":\"$1\""
    }ge;

    return $body;
}

# the bodies of a list of names given to llm_models, with a 10-digit time
sub ::openai_list {
    my (@ids) = @_;
    return '{"object":"list","data":['
         . join(',', map { qq({"id":"$_","object":"model","created":1700000000,"owned_by":"llm-fallback"}) } @ids)
         . ']}';
}

sub ::anthropic_list {
    my (@ids) = @_;
    return '{"data":['
         . join(',', map { qq({"type":"model","id":"$_","display_name":"$_","created_at":"2023-11-14T22:13:20Z"}) } @ids)
         . qq(],"has_more":false,"first_id":"$ids[0]","last_id":"$ids[-1]"});
}

our $Providers = <<'END';
    llm_provider openai uri=/_llm/ok model=gpt-4o-mini;
    llm_provider local  uri=/_llm/ok;
    llm_provider claude uri=/_llm/ok format=anthropic
                 model=claude-sonnet-4-5 api_key=sk-ant;
    llm_provider backup uri=/_llm/ok2 model=gpt-4o-mini;
    llm_provider odd    uri=/_llm/ok "model=we\"ird";
END

our $Error405 = '{"error":{"message":"Only GET and HEAD are allowed on '
              . 'this endpoint.","type":"invalid_request_error",'
              . '"param":null,"code":"method_not_allowed"}}';

our $Anthropic405 = '{"type":"error","error":{"type":"invalid_request_error",'
                  . '"message":"Only GET and HEAD are allowed on this '
                  . 'endpoint."}}';

our $Routes = <<'END';
    llm_provider fastp  uri=/_llm/ok;
    llm_provider smartp uri=/_llm/ok2;
    llm_provider defp   uri=/_llm/echo;

    map $llm_request_model $llm_chain {
        fast     fastp;
        smart    smartp;
        default  defp;
    }
END

our $Chat = "Content-Type: application/json";

sub ::chat {
    my ($model) = @_;
    my $m = defined $model ? qq("model":"$model",) : '';
    return qq(POST /chat\n{$m"messages":[{"role":"user","content":"hi"}]});
}

run_tests();

__DATA__

=== TEST 1: the providers' models: distinct, in declaration order, owned by the first provider declaring each
--- http_config eval
$::Providers
--- config
    location = /v1/models { llm_models; }
--- request
GET /v1/models
--- error_code: 200
--- response_headers
Content-Type: application/json
!Allow
--- response_body_filters eval
\&::canon_time
--- response_body chomp
{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":T,"owned_by":"openai"},{"id":"claude-sonnet-4-5","object":"model","created":T,"owned_by":"claude"},{"id":"we\"ird","object":"model","created":T,"owned_by":"odd"}]}
--- no_schema_check
--- no_error_log
[error]
[warn]



=== TEST 2: the same in Anthropic's shape for a request with anthropic-version
--- http_config eval
$::Providers
--- config
    location = /v1/models { llm_models; }
--- request
GET /v1/models
--- more_headers
anthropic-version: 2023-06-01
x-api-key: sk-ant-client
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_filters eval
\&::canon_time
--- response_body chomp
{"data":[{"type":"model","id":"gpt-4o-mini","display_name":"gpt-4o-mini","created_at":"T"},{"type":"model","id":"claude-sonnet-4-5","display_name":"claude-sonnet-4-5","created_at":"T"},{"type":"model","id":"we\"ird","display_name":"we\"ird","created_at":"T"}],"has_more":false,"first_id":"gpt-4o-mini","last_id":"we\"ird"}
--- no_schema_check
--- no_error_log
[error]



=== TEST 3: the names given, not the providers', owned by llm-fallback, in both shapes
--- http_config eval
$::Providers
--- config
    location = /v1/models { llm_models fast smart claude-sonnet-4-5; }
--- request eval
["GET /v1/models", "GET /v1/models", "GET /v1/models?x=1"]
--- more_headers eval
["", "anthropic-version: 2023-06-01", "Anthropic-Version: 2023-01-01"]
--- error_code eval
[200, 200, 200]
--- response_body_filters eval
\&::canon_time
--- response_body eval
['{"object":"list","data":[{"id":"fast","object":"model","created":T,"owned_by":"llm-fallback"},{"id":"smart","object":"model","created":T,"owned_by":"llm-fallback"},{"id":"claude-sonnet-4-5","object":"model","created":T,"owned_by":"llm-fallback"}]}',
 ('{"data":[{"type":"model","id":"fast","display_name":"fast","created_at":"T"},{"type":"model","id":"smart","display_name":"smart","created_at":"T"},{"type":"model","id":"claude-sonnet-4-5","display_name":"claude-sonnet-4-5","created_at":"T"}],"has_more":false,"first_id":"fast","last_id":"claude-sonnet-4-5"}') x 2]
--- no_schema_check
--- no_error_log
[error]



=== TEST 4: HEAD: the headers of GET, Content-Length included, no body, in both shapes
--- config
    location = /v1/models { llm_models fast; }
--- request eval
["HEAD /v1/models", "HEAD /v1/models"]
--- more_headers eval
["", "anthropic-version: 2023-06-01"]
--- error_code eval
[200, 200]
--- response_headers eval
["Content-Type: application/json\nContent-Length: " . length(::openai_list('fast')),
 "Content-Type: application/json\nContent-Length: " . length(::anthropic_list('fast'))]
--- response_body eval
["", ""]
--- no_schema_check
--- no_error_log
[error]



=== TEST 5: other methods are 405 with Allow: GET, HEAD and an OpenAI error; a body sent is read and dropped
--- config
    location = /v1/models { llm_models fast; }
--- request eval
["POST /v1/models\n{\"model\":\"fast\"}", "PUT /v1/models\nxyz",
 "DELETE /v1/models", "OPTIONS /v1/models", "PATCH /v1/models\n{}",
 "GET /v1/models"]
--- error_code eval
[(405) x 5, 200]
--- response_headers eval
[("Allow: GET, HEAD\nContent-Type: application/json\nContent-Length: "
  . length($::Error405)) x 5,
 "!Allow\nContent-Type: application/json"]
--- response_body eval
[($::Error405) x 5, ::openai_list('fast') =~ s/1700000000/T/r]
--- response_body_filters eval
\&::canon_time
--- no_schema_check: 5
--- no_error_log
[error]



=== TEST 6: a 405 in Anthropic's shape for a request with anthropic-version
--- config
    location = /v1/models { llm_models fast; }
--- request eval
["POST /v1/models\n{}", "DELETE /v1/models"]
--- more_headers
anthropic-version: 2023-06-01
--- error_code eval
[405, 405]
--- response_headers eval
[("Allow: GET, HEAD\nContent-Type: application/json") x 2]
--- response_body eval
[($::Anthropic405) x 2]
--- no_schema_check
--- no_error_log
[error]



=== TEST 7: no provider has a model=: an empty list, first_id and last_id null
--- http_config
    llm_provider local uri=/_llm/ok;
    llm_provider other uri=/_llm/ok2;
--- config
    location = /v1/models { llm_models; }
    location /chat { llm_fallback_chain local; }
--- request eval
["GET /v1/models", "GET /v1/models", "POST /chat\n{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"]
--- more_headers eval
["", "anthropic-version: 2023-06-01", "Content-Type: application/json"]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['^\{"object":"list","data":\[\]\}$',
 '^\{"data":\[\],"has_more":false,"first_id":null,"last_id":null\}$',
 'hello from ok']
--- no_schema_check: 0 1
--- no_error_log
[error]



=== TEST 8: no provider at all: an empty list
--- config
    location = /v1/models { llm_models; }
--- request
GET /v1/models
--- error_code: 200
--- response_body chomp
{"object":"list","data":[]}
--- no_schema_check
--- no_error_log
[error]



=== TEST 9: a location inside an llm_models location is not one
--- http_config
    llm_provider openai uri=/_llm/ok model=gpt-4o-mini;
--- config
    location /v1/ {
        llm_models;

        location = /v1/other { return 200 "other\n"; }
    }
--- request eval
["GET /v1/models", "GET /v1/other", "GET /v1/anything"]
--- error_code eval
[200, 200, 200]
--- response_body_filters eval
\&::canon_time
--- response_body eval
['{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":T,"owned_by":"openai"}]}',
 "other\n",
 '{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":T,"owned_by":"openai"}]}']
--- no_schema_check
--- no_error_log
[error]



=== TEST 10: llm_models twice in a location
--- config
    location = /v1/models { llm_models; llm_models a; }
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_models" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 11: llm_models and llm_fallback_chain in one location, either order
--- http_config
    llm_provider local uri=/_llm/ok;
--- config
    location = /v1/models { llm_fallback_chain local; llm_models; }
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_models" cannot be used with "llm_fallback_chain" in one location in \S+nginx\.conf:\d+/



=== TEST 12: llm_models before llm_fallback_chain
--- http_config
    llm_provider local uri=/_llm/ok;
--- config
    location = /v1/models { llm_models; llm_fallback_chain local; }
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_models" cannot be used with "llm_fallback_chain" in one location in \S+nginx\.conf:\d+/



=== TEST 13: llm_models and llm_status in one location
--- config
    location = /v1/models { llm_models; llm_status; }
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_models" cannot be used with "llm_status" in one location in \S+nginx\.conf:\d+/



=== TEST 14: a name given twice
--- config
    location = /v1/models { llm_models fast smart fast; }
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?duplicate model name "fast" in \S+nginx\.conf:\d+/



=== TEST 15: an empty name
--- config
    location = /v1/models { llm_models fast ""; }
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?invalid model name "" in \S+nginx\.conf:\d+/



=== TEST 16: a name that is not UTF-8
--- config eval
"    location = /v1/models { llm_models fast bad\xff; }"
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?invalid model name "bad\xff" in \S+nginx\.conf:\d+/



=== TEST 17: llm_models is a location's
--- http_config
    llm_models;
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_models" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 18: $llm_request_model through map picks the chain: virtual names, the default for others and for a body without model
--- http_config eval
$::Routes . <<'END';
    log_format models 'model=$llm_request_model chain=$llm_chain provider=$llm_provider';
END
--- config
    location /chat {
        llm_fallback_chain $llm_chain;
        add_header X-Request-Model $llm_request_model;
        add_header X-Chain $llm_chain;
        access_log logs/models.log models;
    }
    location = /models.log { root logs; default_type text/plain; }
--- request eval
[::chat('fast'), ::chat('smart'), ::chat('gpt-4o'), ::chat(undef),
 ::chat('sm\\u0061rt'), "GET /models.log"]
--- more_headers eval
[($::Chat) x 6]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_headers eval
["X-LLM-Provider: fastp\nX-Request-Model: fast\nX-Chain: fastp",
 "X-LLM-Provider: smartp\nX-Request-Model: smart\nX-Chain: smartp",
 "X-LLM-Provider: defp\nX-Request-Model: gpt-4o\nX-Chain: defp",
 "X-LLM-Provider: defp\n!X-Request-Model\nX-Chain: defp",
 "X-LLM-Provider: smartp\nX-Request-Model: smart\nX-Chain: smartp",
 "Content-Type: text/plain"]
--- response_body_like eval
['"content":"hello from ok"', '"content":"hello from ok2"',
 '"content":"auth=\[\] ', '"content":"auth=\[\] ', '"content":"hello from ok2"',
 "^model=fast chain=fastp provider=fastp\n"
 . "model=smart chain=smartp provider=smartp\n"
 . "model=gpt-4o chain=defp provider=defp\n"
 . "model=- chain=defp provider=defp\n"
 . "model=smart chain=smartp provider=smartp\n\$"]
--- no_schema_check: 5
--- no_error_log
[error]



=== TEST 19: the variable is empty before the body is read; a map read then keeps its first value
The chain's map is read in the rewrite phase (set), before the content
handler reads the body: without "volatile" the map keeps what it gave
then (the default) for the whole request.
--- http_config eval
$::Routes
--- config
    location /chat {
        set $early "[$llm_request_model] $llm_chain";
        llm_fallback_chain $llm_chain;
        add_header X-Early $early;
        add_header X-Request-Model $llm_request_model;
    }
--- request eval
[::chat('fast'), ::chat('smart')]
--- more_headers eval
[($::Chat) x 2]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Provider: defp\nX-Early: [] defp\nX-Request-Model: fast",
 "X-LLM-Provider: defp\nX-Early: [] defp\nX-Request-Model: smart"]
--- no_error_log
[error]



=== TEST 20: a volatile map is read again by the chain, after the body
--- http_config
    llm_provider fastp  uri=/_llm/ok;
    llm_provider smartp uri=/_llm/ok2;
    llm_provider defp   uri=/_llm/echo;

    map $llm_request_model $llm_chain {
        volatile;
        fast     fastp;
        smart    smartp;
        default  defp;
    }
--- config
    location /chat {
        set $early "[$llm_request_model] $llm_chain";
        llm_fallback_chain $llm_chain;
        add_header X-Early $early;
    }
--- request eval
[::chat('fast'), ::chat('smart'), ::chat(undef)]
--- more_headers eval
[($::Chat) x 3]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Provider: fastp\nX-Early: [] defp",
 "X-LLM-Provider: smartp\nX-Early: [] defp",
 "X-LLM-Provider: defp\nX-Early: [] defp"]
--- no_error_log
[error]



=== TEST 21: a chain whose map gives an unknown provider is a 500 with an [error]
--- http_config
    llm_provider fastp uri=/_llm/ok;

    map $llm_request_model $llm_chain {
        fast     fastp;
        default  nosuch;
    }
--- config
    location /chat { llm_fallback_chain $llm_chain; }
--- request eval
::chat('other')
--- more_headers eval
$::Chat
--- error_code: 500
--- response_body_like: 500 Internal Server Error
--- no_schema_check
--- error_log
unknown llm provider "nosuch" in "llm_fallback_chain" value "nosuch"
