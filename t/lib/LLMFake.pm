package LLMFake;

# Fake LLM providers for the Test::Nginx suites: an nginx server block
# (returned as text for --- http_config) whose locations answer like
# providers do, including faults: statuses, 429 with Retry-After, garbage,
# empty choices, connection resets (444 + reset_timedout_connection), and a
# port that accepts TCP connections but never answers (a hang).
#
# It only builds configuration text and opens one listening socket; it
# does not replace Test::Nginx, so the suites run unchanged under the real
# Test::Nginx.

use strict;
use warnings;
use IO::Socket::INET;
use Exporter 'import';

our @EXPORT = qw(fake_providers llm_locations completion hang_port
                 blackhole_port echo_reply fault_blocks);

my $hang;
my %blackhole;

# A socket that is listening but never accepts: connections complete in
# the kernel backlog and requests get no answer.
sub hang_port {
    $hang ||= IO::Socket::INET->new(
        Listen    => 128,
        LocalAddr => '127.0.0.1',
        LocalPort => 0,
        Proto     => 'tcp',
        ReuseAddr => 1,
    ) or die "cannot listen: $!";

    return $hang->sockport;
}

# A port whose connects never complete: its accept queue (of one) is
# full with two connections nobody accepts, so the kernel drops the SYNs
# of every further connect, as a firewall that black-holes a server does.
sub blackhole_port {
    my ($n) = @_;

    $n //= 1;

    if (!$blackhole{$n}) {
        my $l = IO::Socket::INET->new(
            Listen    => 1,
            LocalAddr => '127.0.0.1',
            LocalPort => 0,
            Proto     => 'tcp',
        ) or die "cannot listen: $!";

        my @fill = map {
            IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $l->sockport,
                                  Proto => 'tcp', Timeout => 1)
        } 1 .. 2;

        $blackhole{$n} = [$l, @fill];
    }

    return $blackhole{$n}[0]->sockport;
}

BEGIN {
    $ENV{TEST_NGINX_HANG_PORT} = hang_port();
    $ENV{TEST_NGINX_BLACKHOLE_PORT} = blackhole_port(1);
    $ENV{TEST_NGINX_BLACKHOLE_PORT2} = blackhole_port(2);
}

# an answer of the shape OpenAI's API sends ("refusal" and "logprobs"
# included); /echo and echo_reply() are compatible servers that leave
# out what they may
sub completion {
    my ($content, %o) = @_;
    my $model = $o{model} // 'fake-model';
    my $finish = $o{finish} // 'stop';

    return qq({"id":"chatcmpl-fake","object":"chat.completion",)
         . qq("created":1700000000,"model":"$model","choices":[{"index":0,)
         . qq("message":{"role":"assistant","content":"$content",)
         . qq("refusal":null},"logprobs":null,)
         . qq("finish_reason":"$finish"}],"usage":{"prompt_tokens":5,)
         . qq("completion_tokens":7,"total_tokens":12}});
}

# The fake provider server, listening on $TEST_NGINX_RAND_PORT_1.
sub fake_providers {
    my $ok = completion('hello from ok');
    my $ok2 = completion('hello from ok2', model => 'fake-model-2');

    my $err = sub {
        my ($msg, $type) = @_;
        return qq('{"error":{"message":"$msg","type":"$type","param":null,)
             . qq("code":null}}');
    };

    return <<"END";
    server {
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_1;
        default_type application/json;
        reset_timedout_connection on;
        client_max_body_size 50m;

        location = /ok { return 200 '$ok'; }
        location = /ok2 { return 200 '$ok2'; }

        location = /echo {
            return 200 '{"choices":[{"index":0,"message":{"role":"assistant","content":"auth=[\$http_authorization] key=[\$http_x_api_key] apikey=[\$http_api_key] cookie=[\$http_cookie] ct=[\$content_type] accept=[\$http_accept] len=[\$content_length] x=[\$http_x_client] ae=[\$http_accept_encoding] method=[\$request_method]"},"finish_reason":"stop"}]}';
        }

        location = /500 { return 500 ${\ $err->('internal', 'server_error')}; }
        location = /502 { return 502 ${\ $err->('bad gateway', 'server_error')}; }
        location = /503 { return 503 ${\ $err->('overloaded', 'server_error')}; }
        location = /504 { return 504 ${\ $err->('upstream timeout', 'server_error')}; }
        location = /429 { return 429 ${\ $err->('rate limited', 'rate_limit_error')}; }

        location = /429ra {
            add_header Retry-After 1 always;
            return 429 ${\ $err->('rate limited', 'rate_limit_error')};
        }

        location = /429ra-long {
            add_header Retry-After 3600 always;
            return 429 ${\ $err->('rate limited', 'rate_limit_error')};
        }

        location = /400 {
            return 400 '{"error":{"message":"bad prompt","type":"invalid_request_error","param":"messages","code":"bad_prompt"}}';
        }

        location = /401html { return 401 '<html>no</html>'; }
        location = /garbage { return 200 'this is not json at all'; }
        location = /empty { return 200 '{"id":"x","object":"chat.completion","choices":[]}'; }
        location = /nomessage { return 200 '{"choices":[{"index":0}]}'; }
        location = /reset { return 444; }

        location /files/ { alias html/; }

        location /chunked/ {
            alias html/;
            gzip on;
            gzip_types *;
            gzip_min_length 0;
            gunzip on;
        }
    }
END
}

# The internal locations in front of the fake providers: /_llm/NAME
# proxies to /NAME, /_llm/hang to the port that never answers and
# /_llm/refused to a port nobody listens on.
sub llm_locations {
    return <<'END';
        location /_llm/ {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        }

        location = /_llm/hang {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_HANG_PORT/;
        }

        location = /_llm/refused {
            internal;
            proxy_pass http://127.0.0.1:1/;
        }
END
}

# A tcp_reply sub: answers a chat.completion whose content is the raw HTTP
# request the provider received, so a test can check what was sent.
sub echo_reply {
    my ($req) = @_;

    (my $text = $req) =~ s/(["\\])/\\$1/g;
    $text =~ s/\r/\\r/g;
    $text =~ s/\n/\\n/g;
    $text =~ s/([\x00-\x1f])/sprintf("\\u%04x", ord($1))/ge;

    my $body = qq({"id":"chatcmpl-echo","object":"chat.completion",)
             . qq("created":1700000000,"model":"echo-model","choices":[)
             . qq({"index":0,"message":{"role":"assistant",)
             . qq("content":"$text"},"finish_reason":"stop"}]});

    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
         . "Content-Length: " . length($body) . "\r\n"
         . "Connection: close\r\n\r\n$body";
}

# A block preprocessor for suites about faults: the fake providers, a
# provider named after each fault ("p503" is /_llm/503, ...), "ok" and
# "ok2", the block's own --- http_config after them; the internal
# locations before the block's --- config; a default chat request.
sub fault_blocks {
    my $block = shift;
    my $providers = join '', map { "    llm_provider p$_ uri=/_llm/$_;\n" }
        qw(500 502 503 504 429 429ra 429ra-long 400 401html garbage empty
           nomessage reset hang refused);

    $block->set_value("http_config", fake_providers() . $providers
                      . "    llm_provider ok uri=/_llm/ok;\n"
                      . "    llm_provider ok2 uri=/_llm/ok2;\n"
                      . ($block->http_config // ''));
    $block->set_value("config", llm_locations() . ($block->config // ''));

    if (!defined $block->request) {
        $block->set_value("request", "POST /chat\n"
            . '{"messages":[{"role":"user","content":"hi"}]}');
    }

    if (!defined $block->more_headers) {
        $block->set_value("more_headers", "Content-Type: application/json");
    }
}

1;
