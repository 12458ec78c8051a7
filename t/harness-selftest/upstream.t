# Self-test of the Test::Nginx harness: fake upstreams (http_config
# servers and --- tcp_listen).
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/../lib" }   # appended: a real installed Test::Nginx wins
# own port and server root, so these files never collide with the project's
# suite (port 1984, t/servroot) even under prove -j
BEGIN { $ENV{TEST_NGINX_RANDOMIZE} = 1 unless defined $ENV{TEST_NGINX_RANDOMIZE} }
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_BINARY} ||= '/usr/sbin/nginx' if -x '/usr/sbin/nginx';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: proxy_pass to a server in http_config on a random port
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / {
            default_type application/json;
            return 200 '{"from":"provider","auth":"$http_authorization"}';
        }
    }
--- config
    location = /v1/chat {
        proxy_set_header Authorization "Bearer secret";
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- request
POST /v1/chat
{"model":"x"}
--- more_headers
Authorization: Bearer client
--- response_headers
Content-Type: application/json
--- response_body chomp
{"from":"provider","auth":"Bearer secret"}
--- no_error_log
[error]



=== TEST 2: fallback between two http_config providers (503 then 200)
--- http_config
    upstream providers {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2 backup;
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 503 'busy'; }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        location / { return 200 'second'; }
    }
--- config
    location = /t {
        proxy_next_upstream http_503;
        proxy_pass http://providers;
    }
--- request
GET /t
--- response_body: second



=== TEST 3: tcp_listen with a plain string reply and exact tcp_query
--- config
    location = /t {
        proxy_set_header Host up.example;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/up;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query eval
"GET /up HTTP/1.0\r\nHost: up.example\r\nConnection: close\r\n\r\n"
--- tcp_reply eval
"HTTP/1.0 200 OK\r\nContent-Length: 6\r\nX-Up: 1\r\n\r\nfrom-t"
--- request
GET /t
--- response_headers
X-Up: 1
--- response_body: from-t



=== TEST 4: chunked upstream answer sent as an array, de-chunked by the client
--- http_config
    upstream backend { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
    location = /t {
        proxy_http_version 1.1;
        proxy_buffering off;
        proxy_pass http://backend;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
["HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
 "d\r\ndata: hello\n\n\r\n",
 "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"]
--- request
GET /t
--- response_headers
Content-Type: text/event-stream
Transfer-Encoding: chunked
--- response_body eval
"data: hello\n\ndata: [DONE]\n\n"



=== TEST 5: tcp_reply sub gets the upstream request
--- config
    location = /t {
        proxy_set_header X-Key "k-123";
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply eval
sub {
    my $req = shift;
    my $verdict = $req =~ /^POST \/t HTTP\/1\.0\r\n/ && $req =~ /\r\nX-Key: k-123\r\n/
                  && $req =~ /\r\n\r\n\{"q":1\}$/ ? "request ok" : "bad request: $req";
    return "HTTP/1.0 200 OK\r\nContent-Length: " . length($verdict) . "\r\n\r\n$verdict";
}
--- request
POST /t
{"q":1}
--- response_body: request ok



=== TEST 6: slow upstream: tcp_reply_delay beyond proxy_read_timeout gives 504
--- config
    location = /t {
        proxy_read_timeout 200ms;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 1s
--- tcp_reply eval
"HTTP/1.0 200 OK\r\n\r\ntoo late"
--- request
GET /t
--- error_code: 504
--- error_log
upstream timed out
--- timeout: 3



=== TEST 7: tcp_query_len and a reply delay in ms that is within the timeout
--- config
    location = /t {
        proxy_read_timeout 2s;
        proxy_set_header Host up;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query_len: 48
--- tcp_reply_delay: 100ms
--- tcp_reply eval
"HTTP/1.0 200 OK\r\n\r\nslow but fine"
--- request
GET /t
--- response_body: slow but fine



=== TEST 8: upstream closes without answering: 502
--- config
    location = /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply:
--- request
GET /t
--- error_code: 502
--- error_log
upstream prematurely closed connection
