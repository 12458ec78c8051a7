package LLMNode;

# An nginx instance of its own for plain Test::More scripts (two nodes,
# faults injected between requests, clients that go away), with a fake
# provider server inside it and a blocking HTTP client that times each
# request.
#
#   my $n = LLMNode->new(http => $text);   # @PORT@, @FAKE@ substituted
#   my $res = $n->request(body => $json, headers => [...]);
#   $res->{status}, $res->{headers}{'x-llm-cache'}, $res->{body},
#   $res->{elapsed}
#
# With TEST_NGINX_USE_VALGRIND=1 nginx runs in the foreground under
# valgrind (one process); valgrind_errors() returns its findings.

use strict;
use warnings;
use IO::Socket::INET;
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);
use POSIX ();

my $owner = $$;
my @instances;

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "cannot find a free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub module_so {
    my ($so) = grep { /ngx_http_llm_fallback_module\.so$/ }
        split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} // '');
    return $so;
}

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        dir => tempdir(CLEANUP => 1),
        port => free_port(),
        fake => $o{fake} // free_port(),
        valgrind => $ENV{TEST_NGINX_USE_VALGRIND} ? 1 : 0,
        workers => $o{workers} // 1,
    }, $class;

    my $dir = $self->{dir};
    mkdir "$dir/$_" for qw(conf logs tmp html);

    my $http = $o{http};
    $http =~ s/\@PORT\@/$self->{port}/g;
    $http =~ s/\@FAKE\@/$self->{fake}/g;

    my $so = module_so() or die "TEST_NGINX_LOAD_MODULES does not name "
                              . "the module\n";
    my $proc = $self->{valgrind}
             ? "daemon off;\nmaster_process off;\n"
             : "daemon on;\nmaster_process on;\n"
               . "worker_processes $self->{workers};\n";

    open my $fh, '>', "$dir/conf/nginx.conf" or die $!;
    print $fh <<"END";
load_module $so;
$proc
pid $dir/logs/nginx.pid;
error_log $dir/logs/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

$http
}
END
    close $fh;

    $self->start;
    push @instances, $self;

    return $self;
}

sub start {
    my ($self) = @_;
    my $dir = $self->{dir};
    my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
    my @cmd = ($nginx, '-p', "$dir/", '-c', "$dir/conf/nginx.conf");

    if ($self->{valgrind}) {
        my $pid = fork // die "fork: $!";

        if ($pid == 0) {
            open STDOUT, '>', '/dev/null';
            { exec 'valgrind', '-q', '--tool=memcheck', '--leak-check=full',
                   '--num-callers=50', '--keep-debuginfo=yes',
                   "--log-file=$dir/logs/valgrind.log", @cmd };
            POSIX::_exit(127);
        }

        $self->{pid} = $pid;

    } else {
        system(@cmd) == 0 or die "cannot start nginx\n";
    }

    for (1 .. ($self->{valgrind} ? 300 : 100)) {
        return if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}");
        sleep 0.05;
    }

    die "nginx did not start listening on $self->{port}\n";
}

sub port { $_[0]{port} }
sub fake { $_[0]{fake} }

sub master_pid {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/logs/nginx.pid" or return undef;
    my $pid = <$fh>;
    chomp $pid if defined $pid;
    return $pid;
}

# A request with Connection: close. Options: path, body, headers (array of
# "Name: value"), timeout, close_after (seconds: send, wait, close without
# reading; returns undef).
sub request {
    my ($self, %o) = @_;
    my $body = $o{body} // '{"messages":[{"role":"user","content":"hi"}]}';
    my $path = $o{path} // '/chat';
    my $t0 = time;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
                                  Timeout => $o{timeout} // 10)
        or return { status => 0, error => "connect: $!",
                    elapsed => time - $t0 };

    print $s "POST $path HTTP/1.1\r\nHost: localhost\r\n"
           . "Content-Type: application/json\r\n"
           . join('', map { "$_\r\n" } @{ $o{headers} // [] })
           . "Content-Length: " . length($body) . "\r\n"
           . "Connection: close\r\n\r\n$body";

    if (defined $o{close_after}) {
        sleep $o{close_after};
        close $s;
        return undef;
    }

    my $raw = '';
    my $timeout = $o{timeout} // 10;

    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $timeout;
        while (1) {
            my $n = sysread($s, my $buf, 65536);
            last unless $n;
            $raw .= $buf;
        }
        alarm 0;
    };
    alarm 0;
    close $s;

    my $res = { elapsed => time - $t0, raw => $raw, headers => {} };
    my ($head, $rbody) = split /\r\n\r\n/, $raw, 2;

    return { %$res, status => 0, error => $@ || 'no response' }
        unless defined $head && $head =~ m{^HTTP/1\.\d (\d+)};

    $res->{status} = $1;

    for my $line (split /\r\n/, $head) {
        $res->{headers}{lc $1} = $2 if $line =~ /^([^:]+):\s*(.*)$/;
    }

    $rbody //= '';

    if (($res->{headers}{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($rbody =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($rbody, 0, $len);
            substr($rbody, 0, $len + 2) = '';
        }
        $rbody = $out;
    }

    $res->{body} = $rbody;

    return $res;
}

sub error_log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/logs/error.log" or return '';
    local $/;
    return scalar <$fh>;
}

sub stop {
    my ($self) = @_;
    return if $self->{stopped}++;

    my $pid = $self->{valgrind} ? $self->{pid} : $self->master_pid;
    return unless $pid;

    # one process without a master exits at once on QUIT: let the last
    # connections close first, or valgrind reports their memory
    sleep 1 if $self->{valgrind};

    kill 'QUIT', $pid;

    if ($self->{valgrind}) {
        waitpid $pid, 0;
        return;
    }

    for (1 .. 100) {
        last unless kill 0, $pid;
        sleep 0.05;
    }
}

# valgrind's findings: every error, and the leaks that involve the module
# or its libraries (stock nginx 1.22 reports a few at exit on its own:
# ngx_set_environment, ngx_single_process_cycle, ngx_crc32_table_init)
sub valgrind_errors {
    my ($self) = @_;
    return () unless $self->{valgrind};
    $self->stop;

    open my $fh, '<', "$self->{dir}/logs/valgrind.log" or return ();
    local $/;
    my $log = <$fh> // '';

    my @records = grep { /\S/ } split /^==\d+==\s*\n/m, $log;

    if (my $dump = $ENV{LLM_VALGRIND_DUMP}) {
        open my $out, '>>', $dump or die "$dump: $!";
        print $out $log;
    }

    return grep {
        !/ are (possibly|definitely|indirectly) lost /
        || / definitely lost /
           && /ngx_http_llm_fallback|redis|json_|SHA256/
           && !/ngx_set_environment|ngx_single_process_cycle/
    } @records;
}


END {
    local $?;

    if ($$ == $owner) {
        $_->stop for @instances;
    }
}

1;
