# The gen_ai histograms across nginx -s reload (plain Test::More, own
# nginx with two workers, as t/012): a provider still configured keeps
# its rows and counts, even reordered; a removed one is forgotten (its
# node freed) and starts from nothing when it comes back; a new one is
# counted from its first answer.

use strict;
use warnings;
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use LLMNginx;

plan skip_all => 'TEST_NGINX_LOAD_MODULES does not name the module'
    unless module_path();

my $port = free_port();
my $body = '{"model":"client-model","messages":[{"role":"user",'
         . '"content":"hi"}]}';
my $ok = '{"id":"c","object":"chat.completion","created":1,'
       . '"model":"answer-model","choices":[{"index":0,"message":'
       . '{"role":"assistant","content":"hello"},"finish_reason":"stop"}],'
       . '"usage":{"prompt_tokens":5,"completion_tokens":7}}';

sub config {
    my (@providers) = @_;

    my $chains = join '', map { "        location /$_ { llm_fallback_chain $_; }\n" }
                 @providers;

    return "    llm_circuit_breaker zone=cb:1m;\n"
         . join('', map { "    llm_provider $_ uri=/_llm/ok;\n" } @providers)
         . <<"END";
    server {
        listen 127.0.0.1:$port reuseport;

$chains
        location = /metrics { llm_status prometheus; }

        location = /_llm/ok {
            internal;
            return 200 '$ok';
        }
    }
END
}

my $nginx = start_nginx(workers => 2, http => config(qw(a b)));

END { stop_nginx($nginx) if $nginx }

wait_port($port) or BAIL_OUT("nginx does not listen");

sub request {
    my ($method, $uri, $data) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 10) or return '';

    $data //= '';
    print $s "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
           . "Connection: close\r\nContent-Type: application/json\r\n"
           . "Content-Length: " . length($data) . "\r\n\r\n$data";

    local $/;
    my $raw = <$s> // '';
    close $s;

    return $raw;
}

# gen_ai_server_request_duration_seconds_count by provider
sub counts {
    my %c;

    for (split /\n/, request('GET', '/metrics')) {
        $c{$1} = $2 if /^gen_ai_server_request_duration_seconds_count\{.*
                        gen_ai_provider_name="(\w+)".*\}\ (\d+)\r?$/x;
    }

    return \%c;
}

sub chat {
    my ($p, $n) = @_;
    like(request('POST', "/$p", $body), qr{^HTTP/1\.1 200 }, "POST /$p")
        for 1 .. $n;
}

sub reload_to {
    my (@providers) = @_;
    my @before = worker_pids();

    reload_nginx($nginx, http => config(@providers));

    # the old workers are gone once none of them is left
    my $deadline = time + 20;
    while (time < $deadline) {
        my %now = map { $_ => 1 } worker_pids();
        last unless grep { $now{$_} } @before;
        sleep 0.1;
    }
}

sub worker_pids {
    my $master = do {
        open my $fh, '<', $nginx->{pid_file} or return ();
        my $p = <$fh>;
        chomp $p;
        $p;
    };

    return map { m{/proc/(\d+)/stat} ? $1 : () }
           grep {
               open my $fh, '<', $_ or return 0;
               my @f = split ' ', <$fh> // '';
               ($f[3] // 0) == $master;
           } glob '/proc/[0-9]*/stat';
}

chat('a', 2);
chat('b', 3);
is_deeply(counts(), { a => 2, b => 3 }, 'counted before the reload');

reload_to(qw(c b));
is_deeply(counts(), { b => 3 }, 'after a reload: b kept, a forgotten');

chat('c', 1);
chat('b', 1);
is_deeply(counts(), { b => 4, c => 1 }, 'c counted, b goes on');

reload_to(qw(a b c));
chat('a', 1);
is_deeply(counts(), { a => 1, b => 4, c => 1 },
          'a back: from nothing');

my @alerts = grep { /\[(?:alert|crit|emerg)\]/ }
             error_log_lines($nginx, qr/./);
is_deeply(\@alerts, [], 'no [alert], [crit] or [emerg] in error.log');

done_testing();
