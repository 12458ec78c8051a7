# Self-test of the Test::Nginx harness: $TEST_NGINX_* expansion, block
# preprocessors, log_level(), no_root_location() is not used here.
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/../lib" }   # appended: a real installed Test::Nginx wins
# own port and server root, so these files never collide with the project's
# suite (port 1984, t/servroot) even under prove -j
BEGIN { $ENV{TEST_NGINX_RANDOMIZE} = 1 unless defined $ENV{TEST_NGINX_RANDOMIZE} }
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_BINARY} ||= '/usr/sbin/nginx' if -x '/usr/sbin/nginx';
$ENV{TEST_NGINX_GREETING} = 'howdy';

log_level('info');

# blocks without a config get a default one, and every block checks [error]
add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location = /default { return 200 "default config\n"; }
_EOC_
    }
    if (!defined $block->no_error_log) {
        $block->set_value("no_error_log", "[error]");
    }
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: any $TEST_NGINX_FOO comes from the environment; nginx $vars stay
--- config
    location = /t {
        return 200 "$TEST_NGINX_GREETING from $server_port\n";
    }
--- request
GET /t
--- response_body
howdy from $TEST_NGINX_SERVER_PORT



=== TEST 2: $TEST_NGINX_SERVER_PORT lets nginx call itself
--- config
    location = /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/inner;
    }
    location = /inner { return 200 "inner\n"; }
--- request
GET /t
--- response_body
inner



=== TEST 3: the same random port within a block, in http_config and config
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_7;
        location / { return 200 "port $server_port\n"; }
    }
--- config
    location = /t { proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_7; }
--- request
GET /t
--- response_body_like: ^port \d+$



=== TEST 4: config set by the block preprocessor
--- request
GET /default
--- response_body
default config



=== TEST 5: log_level('info') applies: no debug lines
--- config
    location = /t { return 200; }
--- request
GET /t
--- response_body:
--- no_error_log
[debug]
[error]



=== TEST 6: per-block log_level overrides it
--- log_level: debug
--- config
    location = /t { return 204; }
--- request
GET /t
--- error_code: 204
--- response_body:
--- error_log
[debug]
