# A client that goes away while an attempt is running: nginx closes the
# provider connection, the worker survives and keeps serving, and nothing
# is logged above "info" but the abort itself.

use strict;
use warnings;
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use IO::Socket::INET;
use Test::More;
use LLMNginx;

plan skip_all => 'TEST_NGINX_LOAD_MODULES does not name the module'
    unless module_path();

my ($port, $fake) = (free_port(), free_port());

# the hanging provider: accepts, reads, never answers; counts connections
# and notices when nginx closes them
my $hang = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                 LocalPort => 0, ReuseAddr => 1) or die $!;
my $hang_port = $hang->sockport;

my $nginx = start_nginx(workers => 1, http => <<"END");
    llm_provider hang uri=/_llm/hang;
    llm_provider slow uri=/_llm/503;
    llm_provider good uri=/_llm/good;

    server {
        listen 127.0.0.1:$fake;
        default_type application/json;
        location = /503 { return 503 '{"error":{"message":"busy"}}'; }
        location = /good {
            return 200 '{"choices":[{"message":{"role":"assistant","content":"ok"}}]}';
        }
    }

    server {
        listen 127.0.0.1:$port;

        location /chat {
            llm_attempt_timeout 30s;
            llm_fallback_chain hang good;
        }

        location /sleepy {
            llm_retries 1 backoff=500ms;
            llm_fallback_chain slow good;
        }

        location = /_llm/hang { internal; proxy_pass http://127.0.0.1:$hang_port/; }
        location = /_llm/503 { internal; proxy_pass http://127.0.0.1:$fake/503; }
        location = /_llm/good { internal; proxy_pass http://127.0.0.1:$fake/good; }
    }
END

END { stop_nginx($nginx) if $nginx }

wait_port($port) or BAIL_OUT("nginx does not listen");

my $body = '{"messages":[{"role":"user","content":"hi"}]}';
my $req = sub {
    my ($uri) = @_;
    return "POST $uri HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
         . "Content-Type: application/json\r\n"
         . "Content-Length: " . length($body) . "\r\n\r\n$body";
};

# 1. abort while the attempt hangs
my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die $!;
print $c $req->('/chat');

$hang->timeout(5);
my $upstream = $hang->accept;
ok($upstream, 'the attempt reached the hanging provider');

close $c;

# nginx must close the provider connection: a read returns EOF
my $eof = 0;
if ($upstream) {
    my $rin = '';
    vec($rin, fileno($upstream), 1) = 1;
    my $buf;

    for (1 .. 50) {
        last unless select(my $rout = $rin, undef, undef, 0.1);
        my $n = sysread($upstream, $buf, 65536);
        if (!$n) {
            $eof = 1;
            last;
        }
    }
}

ok($eof, 'the provider connection was closed after the client left');

# 2. abort during a backoff wait
$c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die $!;
print $c $req->('/sleepy');
select(undef, undef, undef, 0.1);
close $c;
select(undef, undef, undef, 1.0);

# 3. the worker still serves
$c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die $!;
print $c $req->('/sleepy');
my $resp = do { local $/; $c->timeout(5); <$c> } // '';
like($resp, qr{^HTTP/1\.1 200 .*X-LLM-Provider: good}s,
     'the worker serves the next request');

my @bad = error_log_lines($nginx,
                          qr/\[(alert|crit|emerg)\]|exited on signal/);
is(scalar @bad, 0, 'no alert or crash') or diag(@bad);

ok(scalar error_log_lines($nginx, qr/client prematurely closed connection/),
   'the abort was noticed');

done_testing();
