# llm_status: the JSON document (parsed and checked field by field), the
# Prometheus text (checked by "promtool check metrics" when promtool is
# installed: Debian package "prometheus"), the OpenTelemetry gen_ai
# histograms and their bounded model labels, the html status page (its
# headers, its Content-Security-Policy hashes, nothing from elsewhere),
# ?format=, HEAD, methods, names that need escaping, llm_status without
# llm_circuit_breaker.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use File::Temp qw(tempfile);
use JSON::PP;
use LLMFake;
use LLMStream;

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

        my $h = $p->{attempt_duration_ms};
        my $n = 0;
        $n += $_ for @{ $h->{buckets} // [] };

        $h->{sum} = 'N' if $h->{sum} =~ /^\d+$/;
        $h->{buckets} = 'N' if @{ $h->{buckets} // [] } == 10
                               && $n == $h->{count};
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

# each provider with attempts: its attempt_duration_ms buckets, and
# whether they add up to its count
sub json_buckets {
    my ($body) = @_;

    return $body unless $body =~ /^\{"zone"/;

    my $d = eval { decode_json($body) } or return "invalid JSON: $body";
    my $out = 'bounds '
            . join(',', @{ $d->{attempt_duration_buckets_ms} // [] })
            . "\n";

    for my $name (sort keys %{ $d->{providers} }) {
        my $h = $d->{providers}{$name}{attempt_duration_ms};
        next unless $h->{count};

        my $n = 0;
        $n += $_ for @{ $h->{buckets} // [] };

        $out .= "$name " . join(',', @{ $h->{buckets} // [] })
              . ($n == $h->{count} ? " =count\n" : " !=count $h->{count}\n");
    }

    return $out;
}

# the Content-Security-Policy util/status-page.pl makes from the page's
# sources, and the hashes it must hold for what the page has inline
our $Csp = `$^X '$FindBin::Bin/../util/status-page.pl' --csp`;
chomp $Csp;

our ($ScriptHash) = $Csp =~ /script-src ('sha256-[^']+')/;
our ($StyleHash) = $Csp =~ /style-src ('sha256-[^']+')/;

# the html page: what it loads, and the SHA-256 of its inline script and
# style as a Content-Security-Policy names them
sub page_check {
    my ($body) = @_;

    return $body unless $body =~ /^<!DOCTYPE html>/;

    my @bad;

    my @scripts = $body =~ m{<script\b([^>]*)>(.*?)</script>}gs;
    my @styles = $body =~ m{<style\b([^>]*)>(.*?)</style>}gs;

    push @bad, "scripts: " . @scripts / 2 if @scripts != 2;
    push @bad, "styles: " . @styles / 2 if @styles != 2;
    push @bad, "script attributes: $scripts[0]" if ($scripts[0] // '') ne '';
    push @bad, "style attributes: $styles[0]" if ($styles[0] // '') ne '';

    while ($body =~ m{\b((?:src|href|action|srcset|poster|data)\s*=\s*
                         ["']?([^"'\s>]*))}gx)
    {
        push @bad, "reference $1" unless $2 =~ /^(?:data:|\?format=json$)/;
    }

    push @bad, "URL $1" while $body =~ m{((?:https?|wss?|ftp):)}g;
    push @bad, "protocol-relative $1" while $body =~ m{['"(](//[^'"\s)]*)}g;
    push @bad, "CSS $1" while $body =~ m{(url\s*\(|\@import)}g;
    push @bad, "markup $1" while $body =~ m{(<(?:link|iframe|object|embed|img|base|form)\b(?![^>]*rel="icon"))}g;

    my @fetch = $body =~ /\bfetch\(([^,)]*)/g;
    push @bad, "fetch(@fetch)" unless "@fetch" eq "'?format=json'";
    push @bad, "XMLHttpRequest, EventSource, WebSocket, import(), eval"
        if $body =~ /XMLHttpRequest|EventSource|WebSocket|\bimport\(|\beval\(/;
    push @bad, "innerHTML" if $body =~ /innerHTML|outerHTML|document\.write/;

    use Digest::SHA qw(sha256_base64);
    my $b64 = sub { my $h = sha256_base64($_[0]); $h .= '=' while length($h) % 4; "'sha256-$h'" };

    return (@bad ? join('', map { "page: $_\n" } @bad) : "page: OK\n")
         . "script " . $b64->($scripts[1] // '') . "\n"
         . "style " . $b64->($styles[1] // '') . "\n";
}

# a stream whose first content comes at once and its end 0.6 s later
my @late = openai_stream('first', ' then');
stream_server(lateend => [sse_head(), @late[0, 1], 0.6, @late[2 .. $#late]]);

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
 qr/^\Q{"attempt_duration_buckets_ms":[100,250,500,1000,2500,5000,10000,30000,60000],"breaker":{"cooldown_ms":5000,"failures":2,"max_cooldown_ms":60000,"probes":2,"window_ms":30000},"cache":{"bypass":0,"error":0,"hit":0,"miss":0,"stale":0},"providers":{"ok":{"attempt_duration_ms":{"buckets":"N","count":3,"sum":"N"},"attempts":3,"consecutive_failures":0,"failures":{"error":0,"invalid_response":0,"open":0,"timeout":0},"opened":0,"probes":0,"retry_in":0,"state":"closed","successes":3,"tokens":{"completion":21,"prompt":15},"tracked":true},"p503":{"attempt_duration_ms":{"buckets":"N","count":2,"sum":"N"},"attempts":2,"consecutive_failures":2,"failures":{"error":0,"http_503":2,"invalid_response":0,"open":1,"timeout":0},"opened":1,"probes":0,"retry_in":"N","state":"open","successes":0,"tokens":{"completion":0,"prompt":0},"tracked":true}},"providers_listed":17,"requests":{"1xx":0,"2xx":3,"3xx":0,"4xx":2,"5xx":0,"total":5},"zone":"llm_cb"}\E\n$/]



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
 qr/^\Q{"attempt_duration_buckets_ms":[100,250,500,1000,2500,5000,10000,30000,60000],"breaker":null,\E.*\Q"p503":{"attempt_duration_ms":{"buckets":"N","count":3,"sum":"N"},"attempts":3,"consecutive_failures":0,"failures":{"error":0,"http_503":3,"invalid_response":0,"open":0,"timeout":0},"opened":0,"probes":0,"retry_in":0,"state":"disabled",\E.*\Q"requests":{"1xx":0,"2xx":3,"3xx":0,"4xx":0,"5xx":0,"total":3},"zone":"llm_status"}\E/]



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



=== TEST 12: attempt_duration_ms buckets: a 300 ms timeout in the third
--- http_config
    llm_circuit_breaker zone=llm_cb:1m failures=10;
--- config
    location /chat {
        llm_attempt_timeout 300ms;
        llm_fallback_chain phang p503 ok;
    }
    location = /status { llm_status; }
--- request eval
["POST /chat\n$::Body", "GET /status"]
--- response_body_filters eval
\&::json_buckets
--- error_code eval
[200, 200]
--- response_body_like eval
["hello from ok",
 qr/^bounds 100,250,500,1000,2500,5000,10000,30000,60000\nok \d+(?:,\d+){9} =count\np503 \d+(?:,\d+){9} =count\nphang 0,0,1,0,0,0,0,0,0,0 =count\n$/]
--- timeout: 5



=== TEST 13: gen_ai histograms of the answered attempts, promtool clean
--- skip_eval: 3: !$::Promtool
--- http_config
    llm_circuit_breaker zone=llm_cb:1m failures=10;
--- config
    location /chat { llm_fallback_chain p503 ok; }
    location = /metrics { llm_status prometheus; }
--- request eval
["POST /chat\n{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "POST /chat\n{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "GET /metrics"]
--- response_body_filters eval
\&::promtool_check
--- error_code eval
[200, 200, 200]
--- response_body_like eval
["hello from ok", "hello from ok",
 qr/^promtool:\ OK\n.*
\#\ HELP\ gen_ai_client_token_usage\ Number\ of\ input\ and\ output\ tokens\ used\.\n
\#\ TYPE\ gen_ai_client_token_usage\ histogram\n
gen_ai_client_token_usage_bucket\{gen_ai_operation_name="chat",gen_ai_provider_name="ok",gen_ai_request_model="gpt-x",gen_ai_response_model="fake-model",gen_ai_token_type="input",le="1"\}\ 0\n
gen_ai_client_token_usage_bucket\{[^}]*gen_ai_token_type="input",le="4"\}\ 0\n
gen_ai_client_token_usage_bucket\{[^}]*gen_ai_token_type="input",le="16"\}\ 2\n
(?:gen_ai_client_token_usage_bucket\{[^}]*gen_ai_token_type="input",le="\d+"\}\ 2\n){11}
gen_ai_client_token_usage_bucket\{[^}]*gen_ai_token_type="input",le="\+Inf"\}\ 2\n
gen_ai_client_token_usage_sum\{gen_ai_operation_name="chat",gen_ai_provider_name="ok",gen_ai_request_model="gpt-x",gen_ai_response_model="fake-model",gen_ai_token_type="input"\}\ 10\n
gen_ai_client_token_usage_count\{[^}]*gen_ai_token_type="input"\}\ 2\n
(?:gen_ai_client_token_usage_bucket\{[^}]*gen_ai_token_type="output",le="[^"]+"\}\ [02]\n){15}
gen_ai_client_token_usage_sum\{[^}]*gen_ai_token_type="output"\}\ 14\n
gen_ai_client_token_usage_count\{[^}]*gen_ai_token_type="output"\}\ 2\n
\#\ HELP\ gen_ai_server_request_duration_seconds\ [^\n]*\n
\#\ TYPE\ gen_ai_server_request_duration_seconds\ histogram\n
gen_ai_server_request_duration_seconds_bucket\{gen_ai_operation_name="chat",gen_ai_provider_name="ok",gen_ai_request_model="gpt-x",gen_ai_response_model="fake-model",le="0\.01"\}\ [012]\n
(?:gen_ai_server_request_duration_seconds_bucket\{[^}]*\}\ [012]\n){13}
gen_ai_server_request_duration_seconds_bucket\{[^}]*,le="\+Inf"\}\ 2\n
gen_ai_server_request_duration_seconds_sum\{[^}]*\}\ \d+\.\d{3}\n
gen_ai_server_request_duration_seconds_count\{[^}]*\}\ 2\n
\#\ HELP\ gen_ai_server_time_to_first_token_seconds\ [^\n]*\n
\#\ TYPE\ gen_ai_server_time_to_first_token_seconds\ histogram\n
gen_ai_server_time_to_first_token_seconds_bucket\{gen_ai_operation_name="chat",gen_ai_provider_name="ok",gen_ai_request_model="gpt-x",gen_ai_response_model="fake-model",le="0\.001"\}\ [012]\n
(?:gen_ai_server_time_to_first_token_seconds_bucket\{[^}]*\}\ [012]\n){15}
gen_ai_server_time_to_first_token_seconds_bucket\{[^}]*,le="\+Inf"\}\ 2\n
gen_ai_server_time_to_first_token_seconds_sum\{[^}]*\}\ \d+\.\d{3}\n
gen_ai_server_time_to_first_token_seconds_count\{[^}]*\}\ 2\n
$/sx]



=== TEST 14: gen_ai model labels: three pairs per provider, then "other"; model= is the request model
--- skip_eval: 7: !$::Promtool
--- http_config
    llm_circuit_breaker zone=llm_cb:1m failures=10;
    llm_provider okm uri=/_llm/ok2 model=configured-model;
--- config
    location /chat { llm_fallback_chain ok; }
    location /chatm { llm_fallback_chain okm; }
    location = /metrics { llm_status prometheus; }
--- request eval
[map({ "POST /chat\n{\"model\":\"$_\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" }
     'm1', 'we\\"ird\\\\name', 'm3', 'm4', 'm1', 'x' x 65),
 "POST /chatm\n{\"model\":\"m1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "GET /metrics"]
--- response_body_filters eval
\&::promtool_check
--- error_code eval
[(200) x 8]
--- response_body_like eval
[("hello from ok") x 6, "hello from ok2",
 qr/^promtool:\ OK\n
(?=.*^gen_ai_server_request_duration_seconds_count\{gen_ai_operation_name="chat",gen_ai_provider_name="ok",gen_ai_request_model="m1",gen_ai_response_model="fake-model"\}\ 2$)
(?=.*^gen_ai_server_request_duration_seconds_count\{gen_ai_operation_name="chat",gen_ai_provider_name="ok",gen_ai_request_model="we\\"ird\\\\name",gen_ai_response_model="fake-model"\}\ 1$)
(?=.*^gen_ai_server_request_duration_seconds_count\{gen_ai_operation_name="chat",gen_ai_provider_name="ok",gen_ai_request_model="m3",gen_ai_response_model="fake-model"\}\ 1$)
(?=.*^gen_ai_server_request_duration_seconds_count\{gen_ai_operation_name="chat",gen_ai_provider_name="ok",gen_ai_request_model="other",gen_ai_response_model="other"\}\ 2$)
(?=.*^gen_ai_server_time_to_first_token_seconds_count\{gen_ai_operation_name="chat",gen_ai_provider_name="ok",gen_ai_request_model="other",gen_ai_response_model="other"\}\ 2$)
(?=.*^gen_ai_client_token_usage_count\{gen_ai_operation_name="chat",gen_ai_provider_name="ok",gen_ai_request_model="other",gen_ai_response_model="other",gen_ai_token_type="output"\}\ 2$)
(?=.*^gen_ai_server_request_duration_seconds_count\{gen_ai_operation_name="chat",gen_ai_provider_name="okm",gen_ai_request_model="configured-model",gen_ai_response_model="fake-model-2"\}\ 1$)
(?!.*m4)(?!.*xxxxx)
(?!(?:.*^gen_ai_server_request_duration_seconds_count){6})
/msx]



=== TEST 15: llm_status html: the page, its headers, nothing from elsewhere
--- config
    location = /status { llm_status html; allow 127.0.0.1; deny all; }
--- request
GET /status
--- response_body_filters eval
\&::page_check
--- error_code: 200
--- response_headers eval
"Content-Type: text/html; charset=utf-8
Cache-Control: no-store
X-Content-Type-Options: nosniff
Referrer-Policy: no-referrer
Content-Security-Policy: $::Csp
!Content-Encoding"
--- response_body eval
"page: OK\nscript $::ScriptHash\nstyle $::StyleHash\n"



=== TEST 16: ?format=html on a JSON location; ?format= json and prometheus on an html one; HEAD
--- http_config
    llm_circuit_breaker zone=llm_cb:1m;
--- config
    location = /status { llm_status; }
    location = /page { llm_status html; }
--- request eval
["GET /status?format=html", "GET /page?format=json",
 "GET /page?format=prometheus", "GET /page?refresh=1", "HEAD /page"]
--- response_body_filters eval
[\&::page_check, \&::json_summary]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_headers eval
["Content-Type: text/html; charset=utf-8\nContent-Security-Policy: $::Csp",
 "Content-Type: application/json\n!Content-Security-Policy",
 "Content-Type: text/plain; version=0.0.4; charset=utf-8",
 "Content-Type: text/html; charset=utf-8\nCache-Control: no-store",
 "Content-Type: text/html; charset=utf-8\nCache-Control: no-store"]
--- response_body_like eval
["^page: OK\n", "^\\{\"attempt_duration_buckets_ms\":", "^# HELP llm_breaker_state",
 "^page: OK\n", "^\$"]



=== TEST 17: a stream: gen_ai time to first token to the first content, duration to the end
--- skip_eval: 2: !$::Promtool
--- http_config
    llm_circuit_breaker zone=llm_cb:1m failures=10;
    llm_provider lateend uri=/_s/lateend;
--- config
    location /chat { llm_fallback_chain lateend; }
    location = /metrics { llm_status prometheus; }
    location = /_s/lateend {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/lateend;
        proxy_http_version 1.1;
        proxy_buffering off;
    }
--- request eval
["POST /chat\n{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "GET /metrics"]
--- more_headers
Content-Type: application/json
--- response_body_filters eval
\&::promtool_check
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/"content":"first".*"content":" then".*\[DONE\]/s,
 qr/^promtool:\ OK\n
(?=.*^gen_ai_server_time_to_first_token_seconds_bucket\{gen_ai_operation_name="chat",gen_ai_provider_name="lateend",gen_ai_request_model="m",gen_ai_response_model="[^"]*",le="0\.5"\}\ 1$)
(?=.*^gen_ai_server_time_to_first_token_seconds_count\{[^}]*gen_ai_provider_name="lateend"[^}]*\}\ 1$)
(?=.*^gen_ai_server_request_duration_seconds_bucket\{[^}]*gen_ai_provider_name="lateend"[^}]*,le="0\.32"\}\ 0$)
(?=.*^gen_ai_server_request_duration_seconds_bucket\{[^}]*gen_ai_provider_name="lateend"[^}]*,le="\+Inf"\}\ 1$)
(?=.*^gen_ai_client_token_usage_sum\{[^}]*gen_ai_provider_name="lateend"[^}]*gen_ai_token_type="input"\}\ 9$)
(?=.*^gen_ai_client_token_usage_sum\{[^}]*gen_ai_provider_name="lateend"[^}]*gen_ai_token_type="output"\}\ 4$)
/msx]
--- timeout: 5
