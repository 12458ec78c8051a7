# The circuit breaker, one worker: opening after failures in the window,
# a success in between, skipping without a subrequest, Retry-After,
# half-open trials that close or re-open with a doubled cooldown, every
# provider open, breaker=off, a zone too small, configuration errors.
# Several workers, slow trials, client aborts and reloads are in
# t/012-breaker-workers.t.
#
# The state is checked through llm_status, summarised by status_summary()
# into one line per provider that saw traffic. Test::Nginx checks
# "--- error_log" after each request of a block, so blocks of several
# requests read the error log as their last request (GET /error.log).

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use JSON::PP;
use LLMFake;

our $Body = '{"messages":[{"role":"user","content":"hi"}]}';

our $Ok = LLMFake::completion('hello from flaky');

# the providers of these suites that are not in LLMFake: "flaky" fails
# when the client asked for ?mode=down (the key is $arg_mode), "counted"
# fails and writes an access log line per call, "ra120" is a 503 with
# Retry-After: 120
our $Extra = <<"END";
    log_format llm_fake_calls '\$uri';

    llm_provider flaky uri=/_llm2/flaky api_key=\$arg_mode;
    llm_provider counted uri=/_llm2/counted;
    llm_provider ra120 uri=/_llm2/ra120;

    server {
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_2;
        default_type application/json;

        location = /flaky {
            if (\$http_authorization = "Bearer down") {
                return 503 '{"error":{"message":"down","type":"x"}}';
            }

            return 200 '$Ok';
        }

        location = /counted {
            access_log logs/fake.log llm_fake_calls;
            return 503 '{"error":{"message":"down","type":"x"}}';
        }

        location = /ra120 {
            add_header Retry-After 120 always;
            return 503 '{"error":{"message":"later","type":"x"}}';
        }
    }
END

our $ExtraLocations = <<'END';
        location /_llm2/ {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/;
        }

        location = /status { llm_status; }
        location = /fake.log { root logs; }
        location = /error.log { root logs; }
END

# "name state opened=N attempts=N successes=N open=N consecutive=N" for
# each provider that was tried or skipped; other bodies are left as they
# are
sub status_summary {
    my ($body) = @_;

    return $body unless $body =~ /^\{"zone"/;

    my $d = eval { decode_json($body) } or return "invalid JSON: $body";
    my $out = '';

    for my $name (sort keys %{ $d->{providers} }) {
        my $p = $d->{providers}{$name};

        next unless $p->{attempts} || $p->{failures}{open};

        $out .= "$name $p->{state} opened=$p->{opened}"
              . " attempts=$p->{attempts} successes=$p->{successes}"
              . " open=$p->{failures}{open}"
              . " consecutive=$p->{consecutive_failures}"
              . ($p->{tracked} ? '' : ' untracked') . "\n";
    }

    return $out;
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", ($block->http_config // '') . $Extra);
    $block->set_value("config", $ExtraLocations . ($block->config // ''));

    LLMFake::fault_blocks($block);

    $block->set_value("response_body_filters", \&status_summary);
});

log_level('info');
no_shuffle();
run_tests();

__DATA__

=== TEST 1: failures within the window open the breaker; then it is skipped
--- http_config
    llm_circuit_breaker zone=cb:64k failures=2 window=60s cooldown=60s;
--- config
    location /chat { llm_fallback_chain p503 ok; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "POST /chat\n$::Body",
 "GET /status",
 "GET /error.log"]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: p503:http_503\nX-LLM-Attempts: 2",
 "X-LLM-Fallback: p503:http_503\nX-LLM-Attempts: 2",
 "X-LLM-Fallback: p503:open\nX-LLM-Attempts: 1\nX-LLM-Provider: ok",
 "Content-Type: application/json", ""]
--- response_body_like eval
["hello from ok", "hello from ok", "hello from ok",
 "^ok closed opened=0 attempts=3 successes=3 open=0 consecutive=0\n"
 . "p503 open opened=1 attempts=2 successes=0 open=1 consecutive=2\n\$",
 qr/(?=.*\Qllm provider "p503" circuit breaker opened for 60000ms after 2 failures\E)/s]
--- no_error_log
[error]
[alert]



=== TEST 2: a success in between resets the count
--- http_config
    llm_circuit_breaker zone=cb:64k failures=2 cooldown=60s;
--- config
    location /chat { llm_fallback_chain flaky ok; }
--- request eval
["POST /chat?mode=down\n$::Body", "POST /chat?mode=up\n$::Body",
 "POST /chat?mode=down\n$::Body", "POST /chat?mode=down\n$::Body",
 "POST /chat?mode=up\n$::Body", "GET /status"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: flaky:http_503", "X-LLM-Provider: flaky\n!X-LLM-Fallback",
 "X-LLM-Fallback: flaky:http_503", "X-LLM-Fallback: flaky:http_503",
 "X-LLM-Fallback: flaky:open\nX-LLM-Provider: ok", ""]
--- response_body_like eval
["hello from ok", "hello from flaky", "hello from ok", "hello from ok",
 "hello from ok",
 "^flaky open opened=1 attempts=4 successes=1 open=1 consecutive=2\n"
 . "ok closed opened=0 attempts=4 successes=4 open=0 consecutive=0\n\$"]



=== TEST 3: failures further apart than the window do not add up
--- http_config
    llm_circuit_breaker zone=cb:64k failures=2 window=1s cooldown=60s;
--- config
    location /chat { llm_fallback_chain flaky ok; }
--- request eval
["POST /chat?mode=down\n$::Body",
 ["POST /chat?mode=down\n", { value => $::Body, delay_before => 1.5 }],
 "POST /chat?mode=down\n$::Body", "POST /chat?mode=down\n$::Body"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: flaky:http_503", "X-LLM-Fallback: flaky:http_503",
 "X-LLM-Fallback: flaky:http_503", "X-LLM-Fallback: flaky:open"]
--- timeout: 6



=== TEST 4: an open provider is skipped without a subrequest
--- http_config
    llm_circuit_breaker zone=cb:64k failures=2 cooldown=60s;
--- config
    location /chat { llm_fallback_chain counted ok; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "POST /chat\n$::Body",
 "POST /chat\n$::Body", "POST /chat\n$::Body", "GET /fake.log",
 "GET /status"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: counted:http_503", "X-LLM-Fallback: counted:http_503",
 "X-LLM-Fallback: counted:open", "X-LLM-Fallback: counted:open",
 "X-LLM-Fallback: counted:open", "", ""]
--- response_body_like eval
["hello from ok", "hello from ok", "hello from ok", "hello from ok",
 "hello from ok", "^/counted\n/counted\n\$",
 "^counted open opened=1 attempts=2 successes=0 open=3 consecutive=2\n"]



=== TEST 5: a 503 with Retry-After opens at once, for that long
--- http_config
    llm_circuit_breaker zone=cb:64k failures=5 cooldown=10s max_cooldown=5m;
--- config
    location /chat { llm_fallback_chain ra120 ok; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "GET /status",
 "GET /error.log"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: ra120:http_503", "X-LLM-Fallback: ra120:open", "", ""]
--- response_body_like eval
["hello from ok", "hello from ok",
 "ra120 open opened=1 attempts=1 successes=0 open=1 consecutive=1\n",
 qr/\Qllm provider "ra120" circuit breaker opened for 120000ms by Retry-After\E/]



=== TEST 6: a 429 with Retry-After opens at once, capped at max_cooldown
--- http_config
    llm_circuit_breaker zone=cb:64k cooldown=10s max_cooldown=30s;
--- config
    location /chat { llm_fallback_chain p429ra-long ok; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "GET /error.log"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: p429ra-long:http_429", "X-LLM-Fallback: p429ra-long:open",
 ""]
--- response_body_like eval
["hello from ok", "hello from ok",
 qr/\Qllm provider "p429ra-long" circuit breaker opened for 30000ms by Retry-After\E/]



=== TEST 7: Retry-After opens the breaker even when 429 is not a fallback condition
--- http_config
    llm_circuit_breaker zone=cb:64k max_cooldown=1h;
--- config
    location /chat {
        llm_fallback_on error timeout http_5xx;
        llm_fallback_chain p429ra-long ok;
    }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "GET /error.log"]
--- error_code eval
[429, 200, 200]
--- response_headers eval
["X-LLM-Attempts: 1", "X-LLM-Fallback: p429ra-long:open", ""]
--- response_body_like eval
["rate limited", "hello from ok",
 qr/\Qcircuit breaker opened for 3600000ms by Retry-After\E/]



=== TEST 8: every provider open: 503 llm_circuit_open with Retry-After
--- http_config
    llm_circuit_breaker zone=cb:64k failures=1 cooldown=30s;
--- config
    location /chat {
        add_header X-Reasons $llm_fallback_reasons always;
        llm_fallback_chain ra120 p503;
    }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body",
 "GET /error.log"]
--- error_code eval
[502, 503, 200]
--- response_headers eval
["X-LLM-Fallback: ra120:http_503,p503:http_503",
 "X-LLM-Fallback: ra120:open,p503:open\nX-Reasons: ra120:open,p503:open\n"
 . "X-LLM-Attempts: 0\nContent-Type: application/json\n!x-should-retry", ""]
--- response_headers_like eval
["", "Retry-After: (?:30|29)", ""]
--- response_body_like eval
["llm_providers_exhausted",
 qr/^\{"error":\{"message":"[^"]+","type":"llm_circuit_open","param":null,"code":null,"attempts":\[\{"provider":"ra120","status":null,"reason":"open"\},\{"provider":"p503","status":null,"reason":"open"\}\]\}\}$/,
 qr/\Qllm fallback: every provider is open: ra120:open,p503:open\E/]



=== TEST 9: half-open: a successful trial closes the breaker
--- http_config
    llm_circuit_breaker zone=cb:64k failures=1 cooldown=3s;
--- config
    location /chat { llm_fallback_chain flaky ok; }
--- request eval
["POST /chat?mode=down\n$::Body", "POST /chat?mode=up\n$::Body",
 ["POST /chat?mode=up\n", { value => $::Body, delay_before => 3.5 }],
 "POST /chat?mode=up\n$::Body", "GET /status",
 "GET /error.log"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: flaky:http_503", "X-LLM-Fallback: flaky:open",
 "X-LLM-Provider: flaky\n!X-LLM-Fallback",
 "X-LLM-Provider: flaky\n!X-LLM-Fallback", "", ""]
--- response_body_like eval
["hello from ok", "hello from ok", "hello from flaky", "hello from flaky",
 "^flaky closed opened=1 attempts=3 successes=2 open=1 consecutive=0\n",
 qr/(?=.*\Qllm provider "flaky" circuit breaker opened for 3000ms after 1 failures\E)(?=.*\Qllm provider "flaky" circuit breaker closed after a successful trial\E)/s]
--- timeout: 8



=== TEST 10: half-open: a failed trial re-opens it with a doubled cooldown, up to max_cooldown
--- http_config
    llm_circuit_breaker zone=cb:64k failures=1 cooldown=1s max_cooldown=3s;
--- config
    location /chat { llm_fallback_chain flaky ok; }
--- request eval
["POST /chat?mode=down\n$::Body",
 ["POST /chat?mode=down\n", { value => $::Body, delay_before => 1.3 }],
 ["POST /chat?mode=down\n", { value => $::Body, delay_before => 2.3 }],
 "GET /status",
 "GET /error.log"]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: flaky:http_503", "X-LLM-Fallback: flaky:http_503",
 "X-LLM-Fallback: flaky:http_503", "", ""]
--- response_body_like eval
["hello from ok", "hello from ok", "hello from ok",
 "^flaky open opened=3 attempts=3 successes=0 open=0 consecutive=3\n",
 qr/(?=.*\Qllm provider "flaky" circuit breaker opened for 1000ms after 1 failures\E)(?=.*\Qllm provider "flaky" circuit breaker reopened for 2000ms after a failed trial\E)(?=.*\Qllm provider "flaky" circuit breaker reopened for 3000ms after a failed trial\E)/s]
--- timeout: 10



=== TEST 11: a neutral outcome (not a llm_fallback_on condition) does not count
--- http_config
    llm_circuit_breaker zone=cb:64k failures=1;
--- config
    location /chat { llm_fallback_chain p400 ok; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "GET /status"]
--- error_code eval
[400, 400, 200]
--- response_body_like eval
["bad prompt", "bad prompt",
 "^p400 closed opened=0 attempts=2 successes=0 open=0 consecutive=0\n\$"]
--- no_error_log
circuit breaker opened



=== TEST 12: breaker=off: the provider is always tried
--- http_config
    llm_circuit_breaker zone=cb:64k failures=1;
    llm_provider nobreaker uri=/_llm/503 breaker=off;
--- config
    location /chat { llm_fallback_chain nobreaker ok; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "POST /chat\n$::Body",
 "GET /status"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: nobreaker:http_503", "X-LLM-Fallback: nobreaker:http_503",
 "X-LLM-Fallback: nobreaker:http_503", ""]
--- response_body_like eval
["hello from ok", "hello from ok", "hello from ok",
 "^nobreaker disabled opened=0 attempts=3 successes=0 open=0 consecutive=0\n"
 . "ok closed opened=0 attempts=3 successes=3 open=0 consecutive=0\n\$"]
--- no_error_log
circuit breaker opened



=== TEST 13: without llm_circuit_breaker nothing is ever skipped
--- config
    location /chat { llm_fallback_chain p503 ok; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "POST /chat\n$::Body",
 "POST /chat\n$::Body", "POST /chat\n$::Body", "POST /chat\n$::Body"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: p503:http_503", "X-LLM-Fallback: p503:http_503",
 "X-LLM-Fallback: p503:http_503", "X-LLM-Fallback: p503:http_503",
 "X-LLM-Fallback: p503:http_503", "X-LLM-Fallback: p503:http_503"]



=== TEST 14: retries stop at an open breaker and move on
--- http_config
    llm_circuit_breaker zone=cb:64k failures=2 cooldown=60s;
--- config
    location /chat {
        llm_retries 3 backoff=10ms;
        llm_fallback_chain p503 ok;
    }
--- request eval
["POST /chat\n$::Body", "GET /status"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Fallback: p503:http_503,p503:http_503,p503:open\nX-LLM-Attempts: 3",
 ""]
--- response_body_like eval
["hello from ok",
 "p503 open opened=1 attempts=2 successes=0 open=1 consecutive=2\n"]



=== TEST 15: a zone too small for every provider: one alert, the rest stay closed
--- http_config eval
"    llm_circuit_breaker zone=tiny:32k failures=1 cooldown=60s;\n"
. CORE::join('', map { sprintf "    llm_provider z%02d uri=/_llm/503;\n", $_ } 1 .. 80)
--- config
    location /chat { llm_fallback_chain z80 ok; }
    location /first { llm_fallback_chain p500 ok; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "POST /chat\n$::Body",
 "POST /first\n$::Body", "POST /first\n$::Body", "GET /status",
 "GET /error.log"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: z80:http_503", "X-LLM-Fallback: z80:http_503",
 "X-LLM-Fallback: z80:http_503", "X-LLM-Fallback: p500:http_500",
 "X-LLM-Fallback: p500:open", "", ""]
--- response_body_like eval
["hello from ok", "hello from ok", "hello from ok", "hello from ok",
 "hello from ok",
 "^ok closed opened=0 attempts=5 successes=5 open=0 consecutive=0\n"
 . "p500 open opened=1 attempts=1 successes=0 open=1 consecutive=1\n\$",
 qr/^(?!.*\[(?:crit|emerg)\])(?=.*\[alert\] [^\n]*could not allocate nodes for \d+ of \d+ llm providers in llm_circuit_breaker zone "tiny", their breakers stay closed)(?!.*could not allocate.*could not allocate)/s]



=== TEST 16: llm_circuit_breaker without zone=
--- http_config
    llm_circuit_breaker failures=3;
--- must_die
--- error_log
"llm_circuit_breaker" must have "zone" parameter



=== TEST 17: llm_circuit_breaker with a bad parameter
--- http_config
    llm_circuit_breaker zone=cb:1m failures=0;
--- must_die
--- error_log
invalid parameter "failures=0"



=== TEST 18: llm_circuit_breaker with a zone below 8 pages
--- http_config
    llm_circuit_breaker zone=cb:4k;
--- must_die
--- error_log
zone "zone=cb:4k" is too small



=== TEST 19: cooldown larger than max_cooldown
--- http_config
    llm_circuit_breaker zone=cb:1m cooldown=10m max_cooldown=1m;
--- must_die
--- error_log
"cooldown" is larger than "max_cooldown"



=== TEST 20: llm_circuit_breaker twice
--- http_config
    llm_circuit_breaker zone=cb:1m;
    llm_circuit_breaker zone=cb2:1m;
--- must_die
--- error_log
"llm_circuit_breaker" directive is duplicate
