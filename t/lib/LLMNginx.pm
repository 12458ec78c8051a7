package LLMNginx;

# A self-managed nginx for the plain Test::More scripts in t/ (several
# workers, concurrent clients, reloads, client aborts): what one request at
# a time under Test::Nginx cannot show. The module comes from
# TEST_NGINX_LOAD_MODULES and the binary from TEST_NGINX_BINARY, as for the
# Test::Nginx suites.

use strict;
use warnings;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Exporter 'import';

our @EXPORT = qw(module_path free_port start_nginx stop_nginx
                 wait_port error_log_lines reload_nginx worker_pid);

sub module_path {
    my ($so) = grep { /ngx_http_llm_fallback_module\.so$/ }
        split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} // '');
    return $so;
}

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0) or die $!;
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub wait_port {
    my ($port) = @_;

    for (1 .. 100) {
        return 1 if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        select(undef, undef, undef, 0.05);
    }

    return 0;
}

# start_nginx(http => $text, workers => N, level => 'info'): writes a
# configuration with the module loaded and the http{} text given, starts
# nginx (master process on) and returns { dir, pid_file, error_log }.
sub start_nginx {
    my (%o) = @_;
    my $dir = tempdir(CLEANUP => 1);
    my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';

    mkdir "$dir/$_" for qw(conf logs tmp html);

    my $n = { dir => $dir, pid_file => "$dir/logs/nginx.pid",
              error_log => "$dir/logs/error.log",
              workers => $o{workers} // 2, level => $o{level} // 'info' };

    write_conf($n, $o{http});

    system($nginx, '-p', "$dir/", '-c', "$dir/conf/nginx.conf") == 0
        or die "cannot start nginx\n";

    return $n;
}

# reload_nginx($n, http => $text): a new configuration, then SIGHUP
sub reload_nginx {
    my ($n, %o) = @_;

    write_conf($n, $o{http});

    open my $fh, '<', $n->{pid_file} or die "no pid file\n";
    my $pid = <$fh>;
    chomp $pid;

    kill 'HUP', $pid or die "cannot signal nginx\n";
}

sub write_conf {
    my ($n, $http) = @_;
    my $dir = $n->{dir};
    my $so = module_path() or die "TEST_NGINX_LOAD_MODULES: no module\n";

    open my $fh, '>', "$dir/conf/nginx.conf" or die $!;
    print $fh <<"END";
load_module $so;
worker_processes $n->{workers};
master_process on;
daemon on;
pid $dir/logs/nginx.pid;
error_log $dir/logs/error.log $n->{level};
events { worker_connections 1024; }
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
}

sub stop_nginx {
    my ($n) = @_;

    return unless $n && -f $n->{pid_file};

    open my $fh, '<', $n->{pid_file} or return;
    my $pid = <$fh>;
    chomp $pid;
    kill 'QUIT', $pid;

    for (1 .. 50) {
        last unless kill 0, $pid;
        select(undef, undef, undef, 0.1);
    }
}

sub error_log_lines {
    my ($n, $re) = @_;

    open my $fh, '<', $n->{error_log} or return ();
    return grep { $_ =~ $re } <$fh>;
}

# The pid of a worker of nginx $n (its master's child), waiting up to 10 s
# for the master to start one; undef when none appears.
sub worker_pid {
    my ($n) = @_;

    for (1 .. 100) {
        if (open my $fh, '<', $n->{pid_file}) {
            my $master = <$fh> // '';
            chomp $master;

            for my $status (glob '/proc/[0-9]*/status') {
                open my $st, '<', $status or next;
                my $text = do { local $/; <$st> };
                return $1 if $master ne ''
                             && $text =~ /^PPid:\s+$master$/m
                             && $text =~ /^Pid:\s+(\d+)/m;
            }
        }

        select(undef, undef, undef, 0.1);
    }

    return;
}

1;
