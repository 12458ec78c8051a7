# A provider's Content-Length is a claim, not an allocation: a provider
# that announces 8000000 bytes (under llm_max_response_size) and sends a
# few before it closes costs the worker a few bytes, not 8 MB. The
# worker's peak virtual memory (VmPeak, /proc: untouched pages never show
# in RSS) after such answers is within 2 MiB of its peak before them; an
# honest 3 MB answer still arrives whole. A self-managed nginx with one
# worker (plain Test::More).

use strict;
use warnings;
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use LLMNginx;
use LLMStream;

plan skip_all => 'TEST_NGINX_LOAD_MODULES does not name the module'
    unless module_path();

my $ok = '{"id":"chatcmpl-m","object":"chat.completion","created":1,'
       . '"model":"m","choices":[{"index":0,"message":{"role":"assistant",'
       . '"content":"hello"},"finish_reason":"stop"}],'
       . '"usage":{"prompt_tokens":5,"completion_tokens":7}}';

my $big = '{"id":"chatcmpl-b","object":"chat.completion","created":1,'
        . '"model":"m","choices":[{"index":0,"message":{"role":"assistant",'
        . '"content":"' . ('x' x 3_000_000) . '"},"finish_reason":"stop"}],'
        . '"usage":{"prompt_tokens":5,"completion_tokens":7}}';

sub head {
    my ($len) = @_;
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
         . "Content-Length: $len\r\nConnection: close\r\n\r\n";
}

# "claims" announces 8000000 bytes, sends 40, waits and closes; "small"
# does the same with a claim of 200 (the warm-up); "big" is honest
stream_server(
    claims => [head(8_000_000), substr($ok, 0, 40), 0.3],
    small  => [head(200), substr($ok, 0, 40), 0.3],
    big    => [head(length $big), $big],
);

my $port = free_port();

my $n = start_nginx(workers => 1, http => <<"EOF");
    llm_provider claims uri=/_s/claims;
    llm_provider small uri=/_s/small;
    llm_provider big uri=/_s/big;
    llm_provider ok uri=/_ok;

    server {
        listen 127.0.0.1:$port;

        location /claims { llm_fallback_chain claims ok; }
        location /small { llm_fallback_chain small ok; }
        location /big { llm_fallback_chain big; }

        location ~ ^/_s/(\\w+)\$ {
            internal;
            proxy_pass http://127.0.0.1:$ENV{TEST_NGINX_STREAM_PORT}/s/\$1;
        }

        location = /_ok {
            internal;
            default_type application/json;
            return 200 '$ok';
        }
    }
EOF

ok(wait_port($port), 'nginx listens');

sub vm_peak_kib {
    my ($pid) = @_;

    open my $fh, '<', "/proc/$pid/status" or return 0;
    my $text = do { local $/; <$fh> };

    return $text =~ /^VmPeak:\s+(\d+) kB/m ? $1 : 0;
}

# { status, h => { lc name => value }, body }
sub chat {
    my ($uri) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 30) or die $!;
    my $body = '{"messages":[{"role":"user","content":"hi"}]}';

    print $c "POST $uri HTTP/1.0\r\nHost: localhost\r\n"
           . "Content-Type: application/json\r\n"
           . "Content-Length: " . length($body) . "\r\n\r\n$body";

    local $/;
    my $raw = <$c> // '';
    my ($head, $rest) = split /\r\n\r\n/, $raw, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
    my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () }
            split /\r\n/, $head // '';

    return { status => $status // 0, h => \%h, body => $rest // '' };
}

my $pid = worker_pid($n);
ok($pid, "worker pid $pid");

for (1 .. 2) {
    my $r = chat('/small');
    is($r->{h}{'x-llm-fallback'}, 'small:error', 'warm-up: a short answer');
}

my $base = vm_peak_kib($pid);

for my $i (1 .. 3) {
    my $r = chat('/claims');
    is($r->{status}, 200, "claim $i: answered");
    is($r->{h}{'x-llm-fallback'}, 'claims:error',
       "claim $i: the short answer is an error, the next provider served");
}

my $peak = vm_peak_kib($pid);

diag("worker VmPeak: $base KiB before, $peak KiB after three claims");

SKIP: {
    # AddressSanitizer and valgrind have allocators of their own
    skip 'memory under a sanitizer', 1 if $ENV{ASAN_OPTIONS};

    cmp_ok($peak - $base, '<', 2048,
           'peak virtual memory within 2 MiB: nothing allocated up front');
}

my $r = chat('/big');
is($r->{status}, 200, 'an honest 3 MB answer');

my $d = eval { decode_json($r->{body}) } // {};
is(length($d->{choices}[0]{message}{content} // ''), 3_000_000,
   'arrives whole');

ok(!error_log_lines($n, qr/\[(alert|crit|emerg)\]|exited on signal/),
   'no alert in the error log');

stop_nginx($n);

done_testing();
