# The header list of an attempt, as nginx's own code in the provider
# location sees it: header variables ($content_type, $http_*) read exact
# values on every nginx version (on 1.23 and later they walk the list's
# "next" links), the operator's proxy_set_header replaces the module's
# header of the same name, and a key with CR, LF or NUL never reaches a
# provider.
#
# master_on(): a worker that crashes is logged ("exited on signal") and
# replaced; every block checks for that.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
BEGIN { $ENV{LLM_TEST_CRLF_KEY} = "sk-env-secret\r\nX-Injected: 1" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;
use LLMHostile;
use LLMProviders;

master_on();
no_shuffle();
no_long_string();

# varying sizes: the header list and the values around it land at other
# places of the request's pool
our @Sizes = (0, 1, 7, 60, 100, 333, 1000, 1500, 2048, 3000, 4000, 4096,
              5000, 8000, 12000, 16384, 20000, 33000, 65536, 100000);

sub body {
    my ($n) = @_;
    return '{"messages":[{"role":"user","content":"' . ('x' x $n) . '"}]}';
}

our @Requests = map { "POST /chat\n" . body($_) } @Sizes;

our @Headers = map {
    "Content-Type: application/json\n"
    . ($_ % 2 ? "Accept: text/html\n" : '')
    . ($_ % 3 ? "X-Client-$_: " . ('v' x ($_ * 37)) . "\n" : '')
    . ($_ % 4 ? "Authorization: Bearer client-$_\n" : '')
} 0 .. $#Sizes;

our $Seen = 'type=[application/json] accept=[application/json] '
          . 'auth=[Bearer sk-vars] len=[%d]';

# what the /seen fake provider answers for body($n)
sub seen {
    my ($n) = @_;
    return sprintf($Seen, length body($n));
}

# --- tcp_reply subs: the answer's text lists every header the provider
# received, lowercased and sorted, with its count and values:
# "accept=1:application/json authorization=1:Bearer sk-x ..."
sub headers_seen {
    my ($req) = @_;
    my ($head) = split /\r\n\r\n/, $req, 2;
    my (undef, @lines) = split /\r\n/, $head;
    my (%n, %v);

    for (@lines) {
        my ($k, $v) = /^([^:]+):[ \t]*(.*)$/ or next;
        $n{lc $k}++;
        push @{$v{lc $k}}, $v;
    }

    return join ' ', map { "$_=$n{$_}:" . join('|', @{$v{$_}}) } sort keys %n;
}

sub counted {
    return LLMFake::echo_reply(headers_seen(shift));
}

sub counted_anthropic {
    return LLMProviders::http_reply(200, LLMProviders::anthropic_message(
                                            content => headers_seen(shift)));
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", LLMFake::fake_providers()
        . ($block->http_config // '') . <<'END');
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        default_type application/json;
        client_max_body_size 1m;

        # what the provider location put into the X-Seen-* headers
        location = /seen {
            return 200 '{"choices":[{"index":0,"message":{"role":"assistant","content":"type=[$http_x_seen_type] accept=[$http_x_seen_accept] auth=[$http_x_seen_auth] len=[$http_x_seen_length]"},"finish_reason":"stop"}]}';
        }
    }
END

    $block->set_value("config", LLMFake::llm_locations()
                      . ($block->config // ''));

    if (!defined $block->more_headers) {
        $block->set_value("more_headers", "Content-Type: application/json");
    }

    if (!defined $block->request) {
        $block->set_value("request", LLMHostile::post($LLMHostile::Hi));
    }

    LLMHostile::survives($block);
});

run_tests();

__DATA__

=== TEST 1: header variables in the provider location read the module's headers exactly, whatever the request
--- http_config
    llm_provider vars uri=/_llm/vars api_key=sk-vars;
--- config
    location = /_llm/vars {
        internal;
        proxy_set_header X-Seen-Type $content_type;
        proxy_set_header X-Seen-Accept $http_accept;
        proxy_set_header X-Seen-Auth $http_authorization;
        proxy_set_header X-Seen-Length $content_length;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/seen;
    }
    location /chat { llm_fallback_chain vars; }
--- request eval
[@::Requests]
--- more_headers eval
[@::Headers]
--- error_code eval
[(200) x @::Sizes]
--- response_body_like eval
[map { qr/"content":"\Q${\ ::seen($_)}\E"/ } @::Sizes]



=== TEST 2: proxy_set_header Authorization, Accept and Content-Type replace the module's: one of each, the operator's value
--- http_config
    llm_provider tcp uri=/_llm/tcp api_key=sk-module;
--- config
    location = /_llm/tcp {
        internal;
        proxy_set_header Authorization "Bearer sk-operator";
        proxy_set_header Accept text/event-stream;
        proxy_set_header Content-Type "application/json; charset=utf-8";
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_3/v1/chat/completions;
    }
    location /chat { llm_fallback_chain tcp; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_3
--- tcp_reply eval
\&::counted
--- error_code: 200
--- response_body_like: "content":"accept=1:text/event-stream authorization=1:Bearer sk-operator connection=1:close content-length=1:45 content-type=1:application/json; charset=utf-8 host=1:127\.0\.0\.1:\d+"



=== TEST 3: without proxy_set_header, the module's headers, once each
--- http_config
    llm_provider tcp uri=/_llm/tcp api_key=sk-module;
--- config
    location = /_llm/tcp {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_3/v1/chat/completions;
    }
    location /chat { llm_fallback_chain tcp; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_3
--- tcp_reply eval
\&::counted
--- more_headers
Content-Type: application/json
Accept: text/html
Authorization: Bearer client-secret
--- error_code: 200
--- response_body_like: "content":"accept=1:application/json authorization=1:Bearer sk-module connection=1:close content-length=1:45 content-type=1:application/json host=1:127\.0\.0\.1:\d+"



=== TEST 4: proxy_set_header with an empty value removes the module's header
--- http_config
    llm_provider tcp uri=/_llm/tcp api_key=sk-module;
--- config
    location = /_llm/tcp {
        internal;
        proxy_set_header Authorization "";
        proxy_set_header Accept "";
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_3/v1/chat/completions;
    }
    location /chat { llm_fallback_chain tcp; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_3
--- tcp_reply eval
\&::counted
--- error_code: 200
--- response_body_like: "content":"connection=1:close content-length=1:45 content-type=1:application/json host=1:127\.0\.0\.1:\d+"



=== TEST 5: anthropic: proxy_set_header names in any case replace x-api-key and anthropic-version
--- http_config
    llm_provider tcp uri=/_llm/tcp format=anthropic model=claude-3-5-haiku-latest
                     api_key=sk-ant-module;
--- config
    location = /_llm/tcp {
        internal;
        proxy_set_header X-Api-Key sk-ant-operator;
        proxy_set_header Anthropic-Version 2024-10-22;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_3/v1/messages;
    }
    location /chat { llm_fallback_chain tcp; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_3
--- tcp_reply eval
\&::counted_anthropic
--- error_code: 200
--- response_body_like: "content":"accept=1:application/json anthropic-version=1:2024-10-22 connection=1:close content-length=1:\d+ content-type=1:application/json host=1:127\.0\.0\.1:\d+ x-api-key=1:sk-ant-operator"



=== TEST 6: auth_header=Api-Key (Azure OpenAI): proxy_set_header api-key replaces it
--- http_config
    llm_provider tcp uri=/_llm/tcp api_key=azure-module auth_header=Api-Key;
--- config
    location = /_llm/tcp {
        internal;
        proxy_set_header api-key azure-operator;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_3/v1/chat/completions;
    }
    location /chat { llm_fallback_chain tcp; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_3
--- tcp_reply eval
\&::counted
--- error_code: 200
--- response_body_like: "content":"accept=1:application/json api-key=1:azure-operator connection=1:close content-length=1:45 content-type=1:application/json host=1:127\.0\.0\.1:\d+"



=== TEST 7: an api_key_file with LF inside the key fails the configuration, without showing it
--- user_files
>>> bad.key
sk-file-secret
X-Injected: 1
--- http_config
    llm_provider f uri=/_llm/ok api_key_file=../html/bad.key;
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?the key of llm provider "f" contains CR, LF or NUL, which cannot be sent in a header in \S+nginx\.conf:\d+/
--- no_error_log
sk-file-secret
X-Injected



=== TEST 8: a NUL in an api_key_file
--- user_files eval
">>> nul.key\nsk-nul-secret\0tail\n"
--- http_config
    llm_provider f uri=/_llm/ok api_key_file=../html/nul.key;
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?the key of llm provider "f" contains CR, LF or NUL, which cannot be sent in a header in \S+nginx\.conf:\d+/
--- no_error_log
sk-nul-secret
tail



=== TEST 9: an api_key_env variable with CR LF in it
--- http_config
    llm_provider e uri=/_llm/ok api_key_env=LLM_TEST_CRLF_KEY;
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?the key of llm provider "e" contains CR, LF or NUL, which cannot be sent in a header in \S+nginx\.conf:\d+/
--- no_error_log
sk-env-secret
X-Injected



=== TEST 10: a literal api_key= with "\r\n" in it
--- http_config
    llm_provider l uri=/_llm/ok "api_key=sk-lit-secret\r\nX-Injected: 1";
--- must_die
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?the key of llm provider "l" contains CR, LF or NUL, which cannot be sent in a header in \S+nginx\.conf:\d+/
--- no_error_log
sk-lit-secret
X-Injected



=== TEST 11: a key from variables with CR LF or NUL: a 500 in the OpenAI error shape and an [error] without the key
--- log_level: info
--- http_config eval
qq{
    map \$http_x_tenant \$tenant_key {
        default  "sk-var-secret\\r\\nX-Injected: 1";
        lf       "sk-var-secret\\nX-Injected: 1";
        nul      "sk-var-secret\0tail";
        good     sk-var-good;
    }

    llm_provider var uri=/_llm/echo api_key=\$tenant_key;
    llm_provider ok uri=/_llm/ok;
}
--- config
    location /chat { llm_fallback_chain var ok; }
--- request eval
[("POST /chat\n$LLMHostile::Hi") x 3]
--- more_headers eval
["Content-Type: application/json\n",
 "Content-Type: application/json\nX-Tenant: lf\n",
 "Content-Type: application/json\nX-Tenant: nul\n"]
--- error_code eval
[500, 500, 500]
--- response_headers eval
[("Content-Type: application/json\n!X-LLM-Provider") x 3]
--- response_body_like eval
[(qr/^\{"error":\{"message":"The credential of provider \\"var\\" cannot be sent: it contains CR, LF or NUL\.","type":"server_error","param":null,"code":null\}\}$/) x 3]
--- error_log
the key of llm provider "var" ("api_key=" with variables) contains CR, LF or NUL, not sent
--- no_error_log
sk-var-secret
X-Injected
tail



=== TEST 12: the same map's good key is sent
--- log_level: info
--- http_config eval
qq{
    map \$http_x_tenant \$tenant_key {
        default  "sk-var-secret\\r\\nX-Injected: 1";
        good     sk-var-good;
    }

    llm_provider var uri=/_llm/echo api_key=\$tenant_key;
}
--- config
    location /chat { llm_fallback_chain var; }
--- more_headers
Content-Type: application/json
X-Tenant: good
--- error_code: 200
--- response_headers
X-LLM-Provider: var
--- response_body_like: "content":"auth=\[Bearer sk-var-good\] key=\[\]
