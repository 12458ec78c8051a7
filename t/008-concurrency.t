# Two worker processes under concurrent clients: every request falls back
# from a failing provider to a healthy one, no request is lost, and both
# workers serve. A plain Test::More script (Test::Nginx sends one request
# at a time), so it runs the same under the real Test::Nginx or without.

use strict;
use warnings;
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use POSIX ();
use IO::Socket::INET;
use Test::More;
use LLMNginx;

plan skip_all => 'TEST_NGINX_LOAD_MODULES does not name the module'
    unless module_path();

my ($port, $fake) = (free_port(), free_port());

my $ok = '{"id":"chatcmpl-c","object":"chat.completion","created":1,'
       . '"model":"m","choices":[{"index":0,"message":{"role":"assistant",'
       . '"content":"hello"},"finish_reason":"stop"}]}';

my $nginx = start_nginx(workers => 2, level => 'warn', http => <<"END");
    upstream fake {
        server 127.0.0.1:$fake;
        keepalive 16;
    }

    llm_provider bad uri=/_llm/bad api_key=sk-bad;
    llm_provider good uri=/_llm/good api_key=sk-good;

    server {
        listen 127.0.0.1:$fake;
        default_type application/json;
        location = /bad { return 503 '{"error":{"message":"busy"}}'; }
        location = /good { return 200 '$ok'; }
    }

    server {
        listen 127.0.0.1:$port;
        proxy_http_version 1.1;
        proxy_set_header Connection "";

        location /chat {
            llm_fallback_chain bad good;
            add_header X-Pid \$pid;
        }
        location = /_llm/bad { internal; proxy_pass http://fake/bad; }
        location = /_llm/good { internal; proxy_pass http://fake/good; }
    }
END

END { stop_nginx($nginx) if $nginx }

wait_port($port) or BAIL_OUT("nginx does not listen");

my $body = '{"messages":[{"role":"user","content":"hi"}]}';

# one client: N requests on one keepalive connection; prints one line per
# response: "<status> <provider> <attempts> <pid>"
sub client {
    my ($n) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 10) or return "connect failed\n";
    my $out = '';

    for my $i (1 .. $n) {
        print $s "POST /chat HTTP/1.1\r\nHost: localhost\r\n"
               . "Content-Type: application/json\r\n"
               . "Content-Length: " . length($body) . "\r\n"
               . ($i == $n ? "Connection: close\r\n" : "") . "\r\n$body";

        my $head = '';
        while (defined(my $line = <$s>)) {
            $head .= $line;
            last if $line eq "\r\n";
        }

        my ($len) = $head =~ /Content-Length: (\d+)/i;
        my $got = '';
        read($s, $got, $len // 0);

        my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
        my ($prov) = $head =~ /X-LLM-Provider: (\S+)/i;
        my ($att) = $head =~ /X-LLM-Attempts: (\d+)/i;
        my ($pid) = $head =~ /X-Pid: (\d+)/i;
        $out .= join(' ', $status // 0, $prov // '-', $att // 0, $pid // 0,
                     $got =~ /"content":"hello"/ ? 'body' : 'nobody') . "\n";
    }

    return $out;
}

my ($clients, $per_client) = (20, 25);
my @pipes;

for (1 .. $clients) {
    pipe(my $r, my $w) or die $!;
    my $pid = fork // die $!;

    if ($pid == 0) {
        close $r;
        print $w client($per_client);
        close $w;
        POSIX::_exit(0);    # not exit: END would stop nginx
    }

    close $w;
    push @pipes, $r;
}

my @lines = map { local $/; my $t = <$_>; split /\n/, $t } @pipes;
1 while wait() != -1;

is(scalar @lines, $clients * $per_client, 'every request was answered');

my @bad = grep { $_ !~ /^200 good 2 \d+ body$/ } @lines;
is(scalar @bad, 0, 'every answer is 200 from "good" after one fallback')
    or diag(join "\n", @bad[0 .. ($#bad < 5 ? $#bad : 5)]);

my %pids = map { (split ' ')[3] // 0 => 1 } @lines;
cmp_ok(scalar keys %pids, '>=', 2, 'both workers served requests');

my @alerts = error_log_lines($nginx, qr/\[(alert|crit|emerg)\]|signal/);
is(scalar @alerts, 0, 'no alert, crit or crash in error.log')
    or diag(@alerts);

done_testing();
