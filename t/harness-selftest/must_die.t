# Self-test of the Test::Nginx harness: --- must_die (config validation).
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/../lib" }   # appended: a real installed Test::Nginx wins
# own port and server root, so these files never collide with the project's
# suite (port 1984, t/servroot) even under prove -j
BEGIN { $ENV{TEST_NGINX_RANDOMIZE} = 1 unless defined $ENV{TEST_NGINX_RANDOMIZE} }
use Test::Nginx::Socket tests => 7;

$ENV{TEST_NGINX_BINARY} ||= '/usr/sbin/nginx' if -x '/usr/sbin/nginx';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: unknown directive makes nginx die
--- config
    location = /t {
        no_such_directive on;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
unknown directive "no_such_directive"



=== TEST 2: bad value, expected exit code 1
--- config
    location = /t {
        return 99999;
    }
--- must_die: 1
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*invalid return code "99999"/



=== TEST 3: a valid config after the failures starts normally
--- config
    location = /t { return 200 "alive\n"; }
--- request
GET /t
--- response_body
alive
