# Self-test of the Test::Nginx harness: requests and responses.
# Runs unchanged under the real Test::Nginx (see README.md here).
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/../lib" }   # appended: a real installed Test::Nginx wins
# own port and server root, so these files never collide with the project's
# suite (port 1984, t/servroot) even under prove -j
BEGIN { $ENV{TEST_NGINX_RANDOMIZE} = 1 unless defined $ENV{TEST_NGINX_RANDOMIZE} }
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_BINARY} ||= '/usr/sbin/nginx' if -x '/usr/sbin/nginx';

# blocks are shuffled here on purpose
run_tests();

__DATA__

=== TEST 1: plain GET with return
--- config
    location = /t {
        return 200 "hello\n";
    }
--- request
GET /t
--- response_body
hello
--- no_error_log
[error]



=== TEST 2: POST body gets a Content-Length; more_headers reach nginx
--- config
    location = /t {
        return 200 "$request_method len=$content_length foo=$http_x_foo ct=$content_type\n";
    }
--- request
POST /t
hello world
--- more_headers
X-Foo: bar
Content-Type: application/json
--- response_body
POST len=11 foo=bar ct=application/json



=== TEST 3: error_code and response_headers (exact and absent)
--- config
    location = /t {
        add_header X-Test "yes" always;
        return 201 "created\n";
    }
--- request
GET /t
--- error_code: 201
--- response_headers
X-Test: yes
Content-Type: text/plain
!X-Nope
--- response_body
created



=== TEST 4: response_headers_like and response_body_like (dot matches newline)
--- config
    location = /t {
        add_header X-Num 12345;
        return 200 "line one\nline two\n";
    }
--- request
GET /t
--- response_headers_like
X-Num: \d+
--- response_body_like: ^line one.line two$



=== TEST 5: error_log patterns (string and eval qr//), 404 from a missing file
--- config
--- request
GET /no-such-file.html
--- error_code: 404
--- error_log eval
["No such file or directory", qr/\[error\] .*no-such-file\.html/]
--- response_body_like: 404 Not Found



=== TEST 6: no_error_log with several patterns and log_level
--- log_level: info
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok
--- no_error_log
[debug]
[error]
[alert]



=== TEST 7: user_files served from html/
--- user_files
>>> foo.txt
Hello from a user file.
>>> sub/dir/bar.json
{"a":1}
--- config
    location = /sub/dir/bar.json { default_type application/json; root html; }
--- request eval
["GET /foo.txt", "GET /sub/dir/bar.json"]
--- response_body eval
["Hello from a user file.\n", "{\"a\":1}\n"]
--- response_headers eval
["Content-Type: text/plain", "Content-Type: application/json"]



=== TEST 8: raw_request eval
--- config
    location = /t { return 200 "proto=$server_protocol host=$host\n"; }
--- raw_request eval
"GET /t HTTP/1.0\r\nHost: raw.example\r\n\r\n"
--- response_body
proto=HTTP/1.0 host=raw.example



=== TEST 9: HTTP/1.0 request line and a HEAD request
--- config
    location = /t { return 200 "$server_protocol\n"; }
--- request eval
["GET /t HTTP/1.0", "HEAD /t"]
--- response_body eval
["HTTP/1.0\n", ""]
--- error_code eval
[200, 200]



=== TEST 10: several requests with different expected codes
--- config
    location = /a { return 200 "a\n"; }
    location = /b { return 403; }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 403]
--- response_body_like eval
["^a\$", "403 Forbidden"]



=== TEST 11: default location / serves index.html
--- config
--- request
GET /
--- response_body_like: It works!



=== TEST 12: chomp filter and inline sections
--- config
    location = /t { return 200 "no newline"; }
--- request
    GET /t
--- response_body chomp
no newline
