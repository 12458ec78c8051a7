package LLMRedis;

# A real redis-server for the cache suites: started on a free port when
# the suite is compiled (so that $TEST_NGINX_REDIS_PORT and
# $TEST_NGINX_REDIS_SOCKET are set before Test::Nginx reads any config),
# stopped when the suite ends. More servers (with a password, on a port
# to kill and restart) can be started with redis_start().
#
# Also: a minimal RESP client (redis_cmd), and cache_key(), which computes
# a cache key exactly as docs/cache.md documents it.

use strict;
use warnings;
use IO::Socket::INET;
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);
use POSIX ();
use Digest::SHA qw(sha256_hex);
use JSON::PP ();
use Exporter 'import';

our @EXPORT = qw(redis_start redis_stop redis_cmd redis_cmd_at redis_send
                 redis_socket cache_key free_port slow_set_redis);

my $owner = $$;
my %servers;    # port => { pid, dir, args }
my $default;

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "cannot find a free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# redis_start(port => P, args => [...]): starts (or restarts, on the same
# port) a redis-server without persistence; returns its port once it
# answers PING.
sub redis_start {
    my %o = @_;
    my $port = $o{port} // free_port();
    my $old = $servers{$port};
    my $dir = $old ? $old->{dir} : tempdir(CLEANUP => 1);
    my $args = $o{args} // ($old ? $old->{args} : []);

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        open STDOUT, '>>', "$dir/redis.out";
        open STDERR, '>&', \*STDOUT;
        { exec 'redis-server', '--port', $port, '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--daemonize', 'no',
             '--dir', $dir, '--unixsocket', "$dir/redis.sock",
             '--unixsocketperm', '700', '--enable-debug-command', 'yes',
             '--logfile', "$dir/redis.log", @$args };
        POSIX::_exit(127);
    }

    $servers{$port} = { pid => $pid, dir => $dir, args => $args };

    for (1 .. 100) {
        my $r = eval { redis_cmd_at($port, @$args ? auth_args($args) : (),
                                    'PING') };
        return $port if defined $r && $r eq 'PONG';
        sleep 0.05;
    }

    die "redis-server on port $port did not start";
}

sub auth_args {
    my ($args) = @_;
    my %a = @$args;
    return $a{'--requirepass'} ? ('AUTH', $a{'--requirepass'}) : ();
}

sub redis_socket {
    my ($port) = @_;
    return $servers{$port // $default}{dir} . '/redis.sock';
}

# redis_stop(port): kills the server (SIGKILL with kill => 1) and waits
sub redis_stop {
    my ($port, %o) = @_;
    $port //= $default;
    my $s = $servers{$port} or return;

    return unless $s->{pid};

    kill $o{kill} ? 'KILL' : 'TERM', $s->{pid};
    waitpid $s->{pid}, 0;
    $s->{pid} = 0;
}

sub encode_cmd {
    my @args = @_;
    my $req = '*' . scalar(@args) . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for @args;
    return $req;
}

sub read_reply {
    my ($s) = @_;
    my $line = <$s>;
    die "no reply from redis\n" unless defined $line;
    $line =~ s/\r\n$//;
    my ($t, $rest) = (substr($line, 0, 1), substr($line, 1));

    return $rest if $t eq '+' || $t eq ':';
    die "redis error: $rest\n" if $t eq '-';

    if ($t eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        while (length($buf) < $rest + 2) {
            my $n = read($s, $buf, $rest + 2 - length($buf), length($buf));
            die "short read from redis\n" unless $n;
        }
        return substr($buf, 0, $rest);
    }

    if ($t eq '*') {
        return undef if $rest < 0;
        return [ map { read_reply($s) } 1 .. $rest ];
    }

    die "bad reply from redis: $line\n";
}

# redis_cmd_at(port, cmd...) or redis_cmd_at(port, [cmd...], [cmd...]):
# one connection; "AUTH pass cmd..." is split in two commands; returns the
# last reply
sub redis_cmd_at {
    my ($port, @cmd) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5)
        or die "cannot connect to redis on $port: $!\n";

    my @cmds = ref $cmd[0] ? @cmd
             : ($cmd[0] // '') eq 'AUTH' ? ([@cmd[0, 1]], [@cmd[2 .. $#cmd]])
             : ([@cmd]);
    my @replies;

    print $s encode_cmd(@$_) for @cmds;
    push @replies, read_reply($s) for @cmds;
    close $s;

    return $replies[-1];
}

sub redis_cmd {
    return redis_cmd_at($default, @_);
}

# sends a command without waiting for the answer (DEBUG SLEEP); returns the
# socket, which the caller keeps until it does not matter any more
sub redis_send {
    my ($port, @cmd) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5)
        or die "cannot connect to redis on $port: $!\n";
    print $s encode_cmd(@cmd);
    return $s;
}

# The key of docs/cache.md: prefix "v1:" sha256_hex(canonical request
# without stream/stream_options, "\np" len ":" name per provider,
# "\ns" len ":" scope)
sub cache_key {
    my (%o) = @_;
    my $req = JSON::PP->new->decode($o{request});
    delete @$req{qw(stream stream_options)};
    my $buf = JSON::PP->new->canonical->encode($req);
    $buf .= "\np" . length($_) . ":$_" for @{ $o{chain} };
    my $scope = $o{scope} // '';
    $buf .= "\ns" . length($scope) . ":$scope";
    return ($o{prefix} // 'llm:') . 'v1:' . sha256_hex($buf);
}

# slow_set_redis(delay => S, min => BYTES): a fake Redis (RESP over TCP,
# one process, every connection served from one select loop) that takes S
# seconds over each SET of a value of at least BYTES (default 0), as a
# real one does over a large value on a slow link: that connection's later
# commands wait behind it, in order, while other connections are served at
# once. GET, SET (PX is ignored), AUTH, SELECT and PING; the values are
# shared by all connections. Returns its port; it is killed when the suite
# ends. "SETS" answers the number of SETs done so far.
my @fakes;

sub slow_set_redis {
    my (%o) = @_;
    my $delay = $o{delay} // 1;
    my $min = $o{min} // 0;
    my $srv = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                    LocalPort => 0, ReuseAddr => 1)
        or die "cannot listen: $!";
    my $port = $srv->sockport;

    my $pid = fork // die "fork: $!";

    if ($pid) {
        close $srv;
        push @fakes, $pid;
        return $port;
    }

    require IO::Select;

    my $sel = IO::Select->new($srv);
    my (%conn, %data);
    my $sets = 0;

    my $bulk = sub {
        my ($v) = @_;
        return defined $v ? '$' . length($v) . "\r\n$v\r\n" : "\$-1\r\n";
    };

    # one command from the front of $$buf, or undef when incomplete
    my $parse = sub {
        my ($buf) = @_;
        return undef unless $$buf =~ /\A\*(\d+)\r\n/;
        my ($n, $pos, @args) = ($1, length($&));

        for (1 .. $n) {
            my $rest = substr($$buf, $pos);
            return undef unless $rest =~ /\A\$(\d+)\r\n/;
            my $len = $1;
            my $start = $pos + length($&);
            return undef if length($$buf) < $start + $len + 2;
            push @args, substr($$buf, $start, $len);
            $pos = $start + $len + 2;
        }

        substr($$buf, 0, $pos) = '';
        return \@args;
    };

    while (1) {
        my $now = Time::HiRes::time();
        my $wait = 0.5;

        for my $c (values %conn) {
            $wait = 0 if ($c->{doing} || @{ $c->{queue} })
                         && $c->{busy} <= $now;
            $wait = $c->{busy} - $now
                if $c->{busy} > $now && $c->{busy} - $now < $wait;
        }

        for my $fh ($sel->can_read($wait)) {
            if ($fh == $srv) {
                my $c = $srv->accept or next;
                $sel->add($c);
                $conn{fileno $c} = { fh => $c, buf => '', queue => [],
                                     busy => 0, doing => undef };
                next;
            }

            my $c = $conn{fileno $fh};
            my $n = sysread($fh, $c->{buf}, 1 << 20, length $c->{buf});

            if (!$n) {
                $sel->remove($fh);
                delete $conn{fileno $fh};
                close $fh;
                next;
            }

            while (my $cmd = $parse->(\$c->{buf})) {
                push @{ $c->{queue} }, $cmd;
            }
        }

        $now = Time::HiRes::time();

        for my $c (values %conn) {
            next if $c->{busy} > $now;

            if (my $set = delete $c->{doing}) {
                $data{ $set->[1] } = $set->[2];
                $sets++;
                syswrite $c->{fh}, "+OK\r\n";
            }

            while (@{ $c->{queue} }) {
                my $cmd = shift @{ $c->{queue} };
                my $name = uc $cmd->[0];

                if ($name eq 'SET' && length($cmd->[2] // '') >= $min) {
                    $c->{doing} = $cmd;
                    $c->{busy} = $now + $delay;
                    last;
                }

                if ($name eq 'SET') {
                    $data{ $cmd->[1] } = $cmd->[2];
                    $sets++;
                }

                syswrite $c->{fh},
                    $name eq 'GET' ? $bulk->($data{ $cmd->[1] })
                  : $name eq 'PING' ? "+PONG\r\n"
                  : $name eq 'SETS' ? ":$sets\r\n"
                  : "+OK\r\n";
            }
        }
    }
}

# false when redis-server is not installed: the suites skip themselves
our $Available;

BEGIN {
    $Available = grep { -x "$_/redis-server" } split /:/, $ENV{PATH} // '';

    if ($Available) {
        $default = redis_start();
        $ENV{TEST_NGINX_REDIS_PORT} = $default;
        $ENV{TEST_NGINX_REDIS_SOCKET} = redis_socket($default);

    } else {
        $ENV{TEST_NGINX_REDIS_PORT} = 1;
        $ENV{TEST_NGINX_REDIS_SOCKET} = '/nonexistent';
    }
}

END {
    local $?;

    if ($$ == $owner) {
        redis_stop($_, kill => 1) for keys %servers;
        kill 'KILL', @fakes if @fakes;
    }
}

1;
