# Self-test of the Test::Nginx harness: less common sections (request
# packets, pipelined requests, skip/todo specs, shutdown logs, tcp_*
# variants).
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/../lib" }   # appended: a real installed Test::Nginx wins
# own port and server root, so these files never collide with the project's
# suite (port 1984, t/servroot) even under prove -j
BEGIN { $ENV{TEST_NGINX_RANDOMIZE} = 1 unless defined $ENV{TEST_NGINX_RANDOMIZE} }
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_BINARY} ||= '/usr/sbin/nginx' if -x '/usr/sbin/nginx';

no_long_string();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: request sent in several packets
--- config
    location = /t { return 200 "$request_method $request_uri len=$content_length\n"; }
--- request eval
[["POST /t\nhel", "lo wor", "ld"]]
--- raw_request_middle_delay: 0.05
--- response_body
POST /t len=11



=== TEST 2: raw_request as packets
--- config
    location = /t { return 200 "raw ok\n"; }
--- raw_request eval
["GET /t HTTP/1.1\r\nHost: localhost\r\n", "Connection: close\r\n\r\n"]
--- raw_request_middle_delay: 0.05
--- response_body
raw ok



=== TEST 3: pipelined requests
--- config
    location = /a { return 200 "A\n"; }
    location = /b { return 200 "B\n"; }
--- pipelined_requests eval
["GET /a", "GET /b"]
--- response_body eval
["A\n", "B\n"]



=== TEST 4: leading comment lines in --- request are ignored
--- config
    location = /t { return 200 "c\n"; }
--- request
    # a comment
    GET /t
--- response_body
c



=== TEST 5: skip_nginx skips on old-enough nginx
--- skip_nginx: 2: > 0.1.0
--- config
    location = /t { return 200 "x"; }
--- request
GET /t
--- response_body: never checked



=== TEST 6: skip_nginx does not skip when the version does not match
--- skip_nginx: 2: < 0.1.0
--- config
    location = /t { return 200 "x"; }
--- request
GET /t
--- response_body: x



=== TEST 7: skip_eval
--- skip_eval: 3: 1
--- config
--- request
GET /t



=== TEST 8: SKIP blocks are left out
--- SKIP
--- config
--- request
GET /t
--- response_body: never



=== TEST 9: tcp_query_auto_timeout reads until silence; tcp_reply is a string
--- config
    location = /t {
        proxy_set_header Host up;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query_auto_timeout: 0.1
--- tcp_query eval
"GET /t HTTP/1.0\r\nHost: up\r\nConnection: close\r\n\r\n"
--- tcp_reply eval
"HTTP/1.0 200 OK\r\n\r\nauto"
--- request
GET /t
--- response_body: auto



=== TEST 10: tcp_shutdown without a reply: upstream closes at once
--- config
    location = /t { proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 1
--- request
GET /t
--- error_code: 502



=== TEST 11: shutdown_error_log is checked when nginx stops
--- config
    location = /t { return 200 "bye\n"; }
--- request
GET /t
--- response_body
bye
--- shutdown_error_log
received from
--- no_shutdown_error_log
[alert]



=== TEST 12: grep_error_log
--- config
    location = /t { return 200 "g\n"; }
--- request
GET /t?x=1
--- grep_error_log eval
qr/http args: "[^"]*"/
--- grep_error_log_out
http args: "x=1"



=== TEST 13: error_code_like, raw_response_headers_like and ignore of case in header names
--- config
    location = /t { add_header x-lower "v" always; return 418; }
--- request
GET /t
--- error_code_like: ^4\d\d$
--- raw_response_headers_like: x-lower: v\r\n
--- response_headers
X-Lower: v



=== TEST 14: response_body_filters
--- config
    location = /t { return 200 "hello"; }
--- request
GET /t
--- response_body_filters
uc
--- response_body: HELLO



=== TEST 15: todo
--- todo: 2: not implemented yet
--- config
    location = /t { return 200 "x"; }
--- request
GET /t
--- response_body: y



=== TEST 16: access_log, and ignore_response for a connection nginx closes without an answer
--- config
    location = /b {
        client_body_timeout 200ms;
        proxy_pass http://127.0.0.1:1;
    }
--- raw_request eval
"POST /b HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc"
--- ignore_response
--- access_log
"POST /b HTTP/1.1" 408



=== TEST 17: raw_response_headers_unlike, one pattern per request
--- config
    location = /t { add_header X-Word $arg_w; return 200 "x"; }
--- request eval
["GET /t?w=one", "GET /t?w=two"]
--- raw_response_headers_unlike eval
[qr/X-Word: two/, qr/X-Word: one/]
--- response_body eval
["x", "x"]
