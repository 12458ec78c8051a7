# llm_status: the JSON document (parsed and checked field by field), the
# Prometheus text (checked by "promtool check metrics" when promtool is
# installed: Debian package "prometheus"), ?format=, HEAD, methods,
# names that need escaping, llm_status without llm_circuit_breaker.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use File::Temp qw(tempfile);
use JSON::PP;
use LLMFake;

our $Body = '{"messages":[{"role":"user","content":"hi"}]}';

our $Promtool = (grep { -x } map { "$_/promtool" } split /:/, $ENV{PATH})[0];

if (!$Promtool) {
    diag("promtool is not installed (apt-get install prometheus): "
         . "the \"promtool check metrics\" blocks are skipped");
}

# the JSON status with what cannot be known in advance taken out (time
# spent, seconds left), and only the providers that saw traffic, as
# canonical JSON; "providers_listed" counts them all
sub json_summary {
    my ($body) = @_;

    return $body unless $body =~ /^\{"zone"/;

    my $d = eval { decode_json($body) } or return "invalid JSON: $body";
    my $providers = $d->{providers};

    $d->{providers_listed} = scalar keys %$providers;

    for my $name (keys %$providers) {
        my $p = $providers->{$name};

        if (!$p->{attempts} && !$p->{failures}{open}) {
            delete $providers->{$name};
            next;
        }

        $p->{attempt_duration_ms}{sum} = 'N'
            if $p->{attempt_duration_ms}{sum} =~ /^\d+$/;
        $p->{retry_in} = 'N' if $p->{retry_in} =~ /^[1-9]\d*$/;
    }

    return JSON::PP->new->canonical->encode($d) . "\n";
}

# "promtool: OK" or its complaints, then the text
sub promtool_check {
    my ($body) = @_;

    return $body unless $body =~ /^# HELP/;

    my ($fh, $file) = tempfile(UNLINK => 1);
    print $fh $body;
    close $fh;

    my $out = `$Promtool check metrics < $file 2>&1`;

    return ($? == 0 ? "promtool: OK\n" : "promtool: FAILED: $out\n") . $body;
}

add_block_preprocessor(sub {
    my $block = shift;

    LLMFake::fault_blocks($block);

    if (!defined $block->response_body_filters) {
        $block->set_value("response_body_filters", \&json_summary);
    }
});

log_level('info');
no_shuffle();
run_tests();

__DATA__

=== TEST 1: the JSON document, parsed: breaker, providers, requests, cache
--- http_config
    llm_circuit_breaker zone=llm_cb:1m failures=2 window=30s cooldown=5s
                        max_cooldown=1m probes=2;
--- config
    location /chat { llm_fallback_chain p503 ok; }
    location = /status { llm_status; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "POST /chat\n$::Body",
 "POST /chat\n{\"messages\":[]}", "GET /chat", "GET /status"]
--- error_code eval
[200, 200, 200, 400, 405, 200]
--- response_headers eval
["", "", "", "", "", "Content-Type: application/json"]
--- response_body_like eval
["hello from ok", "hello from ok", "hello from ok", "invalid_request_error",
 "invalid_request_error",
 qr/^\Q{"breaker":{"cooldown_ms":5000,"failures":2,"max_cooldown_ms":60000,"probes":2,"window_ms":30000},"cache":{"bypass":0,"error":0,"hit":0,"miss":0,"stale":0},"providers":{"ok":{"attempt_duration_ms":{"count":3,"sum":"N"},"attempts":3,"consecutive_failures":0,"failures":{"error":0,"invalid_response":0,"open":0,"timeout":0},"opened":0,"probes":0,"retry_in":0,"state":"closed","successes":3,"tokens":{"completion":21,"prompt":15},"tracked":true},"p503":{"attempt_duration_ms":{"count":2,"sum":"N"},"attempts":2,"consecutive_failures":2,"failures":{"error":0,"http_503":2,"invalid_response":0,"open":1,"timeout":0},"opened":1,"probes":0,"retry_in":"N","state":"open","successes":0,"tokens":{"completion":0,"prompt":0},"tracked":true}},"providers_listed":17,"requests":{"1xx":0,"2xx":3,"3xx":0,"4xx":2,"5xx":0,"total":5},"zone":"llm_cb"}\E\n$/]



=== TEST 2: error, timeout and invalid_response are counted by reason
--- http_config
    llm_circuit_breaker zone=llm_cb:1m failures=10;
--- config
    location /chat {
        llm_attempt_timeout 200ms;
        llm_fallback_chain prefused phang pgarbage p429 p500 ok;
    }
    location = /status { llm_status; }
--- request eval
["POST /chat\n$::Body", "GET /status"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-LLM-Fallback: prefused:error,phang:timeout,pgarbage:invalid_response,p429:http_429,p500:http_500",
 ""]
--- response_body_like eval
["hello from ok",
 qr/"p429":\{"attempt_duration_ms":\{[^{}]*\},[^{}]*"failures":\{"error":0,"http_429":1,"invalid_response":0,"open":0,"timeout":0\}.*"p500":\{"attempt_duration_ms":\{[^{}]*\},[^{}]*"failures":\{"error":0,"http_500":1,"invalid_response":0,"open":0,"timeout":0\}.*"pgarbage":\{"attempt_duration_ms":\{[^{}]*\},[^{}]*"failures":\{"error":0,"invalid_response":1,"open":0,"timeout":0\}.*"phang":\{"attempt_duration_ms":\{[^{}]*\},[^{}]*"failures":\{"error":0,"invalid_response":0,"open":0,"timeout":1\}.*"prefused":\{"attempt_duration_ms":\{[^{}]*\},[^{}]*"failures":\{"error":1,"invalid_response":0,"open":0,"timeout":0\}/]
--- timeout: 5



=== TEST 3: Prometheus text passes promtool check metrics
--- skip_eval: 4: !$::Promtool
--- http_config
    llm_circuit_breaker zone=llm_cb:1m failures=1 cooldown=30s;
--- config
    location /chat { llm_fallback_chain p503 ok; }
    location = /metrics { llm_status prometheus; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "GET /metrics"]
--- response_body_filters eval
\&::promtool_check
--- error_code eval
[200, 200, 200]
--- response_headers eval
["", "", "Content-Type: text/plain; version=0.0.4; charset=utf-8"]
--- response_body_like eval
["hello from ok", "hello from ok",
 qr/^promtool: OK\n# HELP llm_breaker_state .*\nllm_breaker_state\{provider="p503"\} 1\n.*\nllm_breaker_retry_seconds\{provider="p503"\} (?:30\.000|2\d\.\d{3})\n.*\nllm_breaker_opened_total\{provider="p503"\} 1\n.*\nllm_provider_attempts_total\{provider="p503",outcome="open"\} 1\nllm_provider_attempts_total\{provider="p503",outcome="http_503"\} 1\n.*\nllm_provider_attempts_total\{provider="ok",outcome="success"\} 2\n.*\nllm_tokens_total\{provider="ok",type="prompt"\} 10\nllm_tokens_total\{provider="ok",type="completion"\} 14\n.*\nllm_attempt_duration_seconds_bucket\{provider="ok",le="\+Inf"\} 2\nllm_attempt_duration_seconds_sum\{provider="ok"\} \d+\.\d{3}\nllm_attempt_duration_seconds_count\{provider="ok"\} 2\n.*\nllm_requests_total\{class="2xx"\} 2\n.*\nllm_cache_requests_total\{status="hit"\} 0\n/s]



=== TEST 4: ?format=prometheus on a JSON location, ?format=json on a Prometheus one
--- skip_eval: 4: !$::Promtool
--- http_config
    llm_circuit_breaker zone=llm_cb:1m;
--- config
    location = /status { llm_status; }
    location = /metrics { llm_status prometheus; }
--- request eval
["GET /status?format=prometheus", "GET /metrics?format=json"]
--- response_body_filters eval
[\&::promtool_check]
--- error_code eval
[200, 200]
--- response_headers eval
["Content-Type: text/plain; version=0.0.4; charset=utf-8",
 "Content-Type: application/json"]
--- response_body_like eval
["^promtool: OK\n# HELP llm_breaker_state", "^\\{\"zone\":\"llm_cb\""]



=== TEST 5: names that need escaping stay valid JSON and valid Prometheus text
--- skip_eval: 4: !$::Promtool
--- http_config
    llm_circuit_breaker zone=llm_cb:1m failures=1;
    llm_provider "we\"ird\\name" uri=/_llm/503;
--- config
    location /chat { llm_fallback_chain "we\"ird\\name" ok; }
    location = /status { llm_status; }
--- request eval
["POST /chat\n$::Body", "GET /status",
 "GET /status?format=prometheus"]
--- response_body_filters eval
[\&::json_summary, \&::promtool_check]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
["hello from ok", qr/"providers":\{"ok":\{.*"we\\"ird\\\\name":\{.*"state":"open"/,
 qr/^promtool: OK\n.*\nllm_breaker_state\{provider="we\\"ird\\\\name"\} 1\n/s]



=== TEST 6: HEAD gives the headers only
--- http_config
    llm_circuit_breaker zone=llm_cb:1m;
--- config
    location = /status { llm_status; }
--- request
HEAD /status
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body chomp



=== TEST 7: other methods are 405
--- http_config
    llm_circuit_breaker zone=llm_cb:1m;
--- config
    location = /status { llm_status; }
--- request
POST /status
{}
--- error_code: 405



=== TEST 8: llm_status without llm_circuit_breaker: counters, no breaker
--- config
    location /chat { llm_fallback_chain p503 ok; }
    location = /status { llm_status; }
--- request eval
["POST /chat\n$::Body", "POST /chat\n$::Body", "POST /chat\n$::Body",
 "GET /status"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-LLM-Fallback: p503:http_503", "X-LLM-Fallback: p503:http_503",
 "X-LLM-Fallback: p503:http_503", ""]
--- response_body_like eval
["hello from ok", "hello from ok", "hello from ok",
 qr/^\Q{"breaker":null,\E.*\Q"p503":{"attempt_duration_ms":{"count":3,"sum":"N"},"attempts":3,"consecutive_failures":0,"failures":{"error":0,"http_503":3,"invalid_response":0,"open":0,"timeout":0},"opened":0,"probes":0,"retry_in":0,"state":"disabled",\E.*\Q"requests":{"1xx":0,"2xx":3,"3xx":0,"4xx":0,"5xx":0,"total":3},"zone":"llm_status"}\E/]



=== TEST 9: without llm_status and llm_circuit_breaker there is no zone at all
--- config
    location /chat { llm_fallback_chain p503 ok; }
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- error_code: 200
--- no_error_log
llm_status
[alert]



=== TEST 10: llm_status with a bad format
--- config
    location = /status { llm_status xml; }
--- must_die
--- error_log
invalid parameter "xml"



=== TEST 11: llm_status twice in a location
--- config
    location = /status { llm_status; llm_status prometheus; }
--- must_die
--- error_log
"llm_status" directive is duplicate
