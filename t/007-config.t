# Bad configuration fails "nginx -t" with an [emerg] that names the
# directive, the parameter and file:line.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("must_die", 1);
    $block->set_value("request", "GET /t");
});

run_tests();

__DATA__

=== TEST 1: unknown provider in a chain
--- http_config
    llm_provider a uri=/_llm/a;
--- config
    location /chat { llm_fallback_chain a nosuch; }
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?unknown llm provider "nosuch" in "llm_fallback_chain" in \S+nginx\.conf:\d+/



=== TEST 2: duplicate provider
--- http_config
    llm_provider a uri=/_llm/a;
    llm_provider a uri=/_llm/b;
--- config
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?duplicate llm provider "a" in \S+nginx\.conf:\d+/



=== TEST 3: missing uri=
--- http_config
    llm_provider a model=gpt-4o;
--- config
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?llm provider "a" must have "uri=" parameter in \S+nginx\.conf:\d+/



=== TEST 4: a bad time
--- http_config
    llm_provider a uri=/_llm/a timeout=soon;
--- config
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?invalid parameter "timeout=soon" of llm provider "a" in \S+nginx\.conf:\d+/



=== TEST 5: an unreadable api_key_file
--- http_config
    llm_provider a uri=/_llm/a api_key_file=/nonexistent/openai.key;
--- config
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?open\(\) "\/nonexistent\/openai.key" of "api_key_file" failed \(2: No such file or directory\) in \S+nginx\.conf:\d+/



=== TEST 6: an unset api_key_env
--- http_config
    llm_provider a uri=/_llm/a api_key_env=LLM_NO_SUCH_VARIABLE;
--- config
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?environment variable "LLM_NO_SUCH_VARIABLE" of "api_key_env" is not set in \S+nginx\.conf:\d+/



=== TEST 7: an unknown format
--- http_config
    llm_provider a uri=/_llm/a format=cohere;
--- config
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?unknown llm provider format "cohere" in \S+nginx\.conf:\d+/



=== TEST 8: an unknown parameter
--- http_config
    llm_provider a uri=/_llm/a colour=blue;
--- config
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?invalid parameter "colour=blue" of llm provider "a"/



=== TEST 9: a uri that is not a path
--- http_config
    llm_provider a uri=http://api.openai.com/;
--- config
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?invalid parameter "uri=http:\/\/api.openai.com\/" of llm provider "a"/



=== TEST 10: a chain longer than the maximum
--- http_config eval
CORE::join '', map { "    llm_provider p$_ uri=/_llm/p$_;\n" } 1 .. 33
--- config eval
"location /chat { llm_fallback_chain " . CORE::join(' ', map { "p$_" } 1 .. 33) . "; }"
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?too many providers in "llm_fallback_chain", the maximum is 32 in \S+nginx\.conf:\d+/



=== TEST 11: a bad llm_fallback_on condition
--- config
    location /chat { llm_fallback_on error http_600; }
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?invalid parameter "http_600" in \S+nginx\.conf:\d+/



=== TEST 12: "off" with other conditions
--- config
    location /chat { llm_fallback_on off error; }
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"off" cannot be combined with other conditions/



=== TEST 13: a bad llm_attempt_timeout
--- config
    location /chat { llm_attempt_timeout forever; }
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_attempt_timeout" directive invalid value in \S+nginx\.conf:\d+/



=== TEST 14: a bad llm_retries backoff
--- config
    location /chat { llm_retries 2 backoff=fast; }
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?invalid parameter "backoff=fast" in \S+nginx\.conf:\d+/



=== TEST 15: llm_provider outside the http block level
--- config
    llm_provider a uri=/_llm/a;
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_provider" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 16: llm_fallback_chain twice in a location
--- http_config
    llm_provider a uri=/_llm/a;
--- config
    location /chat {
        llm_fallback_chain a;
        llm_fallback_chain a;
    }
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_fallback_chain" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 17: a negative llm_fallback_tries
--- config
    location /chat { llm_fallback_tries -1; }
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?"llm_fallback_tries" directive invalid number in \S+nginx\.conf:\d+/



=== TEST 18: more than one key source
--- http_config
    llm_provider a uri=/_llm/a api_key=x api_key_env=HOME;
--- config
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?llm provider "a" has more than one of "api_key=", "api_key_file=" and "api_key_env="/



=== TEST 19: a typo of api_key= names the parameter, never its value
--- http_config
    llm_provider a uri=/_llm/a apikey=sk-live-0123456789abcdef;
--- config
--- error_log eval
qr/\[emerg\] (?:\d+#\d+: )?invalid parameter "apikey=\[redacted\]" of llm provider "a" in \S+nginx\.conf:\d+/
--- no_error_log
sk-live-0123456789abcdef



=== TEST 20: any parameter named like a secret (key, pass, secret, token; any case) is redacted
--- http_config
    llm_provider a uri=/_llm/a X-API-KEY=sk-live-0123456789abcdef;
--- config
--- error_log
invalid parameter "X-API-KEY=[redacted]" of llm provider "a"
--- no_error_log
sk-live-0123456789abcdef



=== TEST 21: llm_circuit_breaker: an unknown secret-like parameter is redacted
--- http_config
    llm_circuit_breaker zone=cb:64k Secret_Token=hunter2-very-secret;
--- config
--- error_log
invalid parameter "Secret_Token=[redacted]"
--- no_error_log
hunter2-very-secret



=== TEST 22: llm_cache: a typo of password= is redacted
--- config
    location /chat { llm_cache redis=127.0.0.1:6379 passwd=hunter2-very-secret; }
--- error_log
invalid parameter "passwd=[redacted]" of "llm_cache"
--- no_error_log
hunter2-very-secret



=== TEST 23: llm_retries: an unknown secret-like parameter is redacted
--- config
    location /chat { llm_retries 1 auth_token=hunter2-very-secret; }
--- error_log
invalid parameter "auth_token=[redacted]"
--- no_error_log
hunter2-very-secret



=== TEST 24: other invalid parameters are printed whole
--- http_config
    llm_provider a uri=/_llm/a modle=gpt-4o;
--- config
--- error_log
invalid parameter "modle=gpt-4o" of llm provider "a"
