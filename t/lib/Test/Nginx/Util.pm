package Test::Nginx::Util;

# Server-side half of the project's stand-in for Test::Nginx (see the POD
# at the end).  This file manages the nginx process, the server root, the
# generated nginx.conf, the fake TCP upstream and the per-block test loop.
# The client side (requests, responses, assertions) is in Socket.pm.

use strict;
use warnings;

our $VERSION = '0.33';

# lets a test file tell this stand-in from the real Test::Nginx
our $IsProjectHarness = 1;

use Exporter 'import';
use POSIX qw(SIGQUIT SIGKILL SIGTERM WNOHANG);
use Carp ();
use Config ();
use File::Spec ();
use File::Path qw(make_path remove_tree);
use File::Temp ();
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use IO::Select ();
use List::Util qw(shuffle);
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(sleep time);
use Test::More ();

my $HaveLongString = eval { require Test::LongString; 1 };

sub bail_out (@);
sub expand_env_in_text ($$$);
sub gen_rand_port (;$$);

#--------------------------------------------------------------------------
# Settings (environment variables and the functions that override them).
# The package variable names are the ones of the real Test::Nginx::Util,
# so test files that poke at them keep working.
#--------------------------------------------------------------------------

our $Verbose            = $ENV{TEST_NGINX_VERBOSE};
our $NginxBinary        = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $LoadModules        = $ENV{TEST_NGINX_LOAD_MODULES};
our $LogLevel           = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $NoShuffle          = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $Timeout            = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $UseValgrind        = $ENV{TEST_NGINX_USE_VALGRIND};
our $UseHup             = $ENV{TEST_NGINX_USE_HUP};
our $CheckLeak          = $ENV{TEST_NGINX_CHECK_LEAK} || 0;
our $Benchmark          = $ENV{TEST_NGINX_BENCHMARK} || 0;
our $BenchmarkWarmup    = $ENV{TEST_NGINX_BENCHMARK_WARMUP} || 0;
our $CheckAccumErrLog   = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $NoNginxManager     = $ENV{TEST_NGINX_NO_NGINX_MANAGER} || 0;
our $EventType          = $ENV{TEST_NGINX_EVENT_TYPE};
our $PostponeOutput     = $ENV{TEST_NGINX_POSTPONE_OUTPUT};
our $TestNginxSleep     = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $Randomize          = $ENV{TEST_NGINX_RANDOMIZE};
our $WorkerUser         = $ENV{TEST_NGINX_WORKER_USER};
our $UseStap;           # SystemTap is not supported; always false
our $MasterProcessEnabled = on_off($ENV{TEST_NGINX_MASTER_PROCESS});
our $DaemonEnabled      = 'on';
our $Workers            = 1;
our $WorkerConnections  = 64;
our $RepeatEach         = 1;
our $NoRootLocation     = 0;
our $NoLongString;
our $ConfigPreamble     = '';
our $FilterHttpConfig;
our $ServerAddr         = '127.0.0.1';
our $ServerName         = 'localhost';
our $ServerPort         = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                          || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;

if (defined $WorkerUser && $WorkerUser !~ /^\w[-\w]+(?:\s+\w[-\w]+)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

# hooks filled in by Test::Nginx::Socket
our ($RunTestHelper, $CheckErrorLog, $CheckShutdownErrorLog);

our (@BlockPreprocessors, @CleanupHandlers, @TestCleanupHandlers, @EnvToNginx);

# state
our ($NginxVersion, $NginxRawVersion, $OpenSSLVersion, $PcreVersion);
our ($PrevConfig, $PrevBlock, $RandPorts, $ErrLogFilePos);
our ($ChildPid, $TcpServerPid, $UdpServerPid, $InSubprocess);
our $ConfigVersion;

srand $$;

if ($Randomize) {
    $ServerPort = gen_rand_port(1000)
        or bail_out "Cannot find an available listening port number.\n";
    $ServerPortForClient = $ServerPort;
}

our $ServRoot = $Randomize
    ? File::Spec->rel2abs("t/servroot_$ServerPort")
    : ($ENV{TEST_NGINX_SERVROOT} || File::Spec->rel2abs('t/servroot'));
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = File::Spec->catfile($ServRoot, 'logs');
our $ErrLogFile = File::Spec->catfile($LogDir, 'error.log');
our $AccLogFile = File::Spec->catfile($LogDir, 'access.log');
our $HtmlDir    = File::Spec->catfile($ServRoot, 'html');
our $ConfDir    = File::Spec->catfile($ServRoot, 'conf');
our $ConfFile   = File::Spec->catfile($ConfDir, 'nginx.conf');
our $PidFile    = File::Spec->catfile($LogDir, 'nginx.pid');
our $CacheDir   = File::Spec->catfile($ServRoot, 'cache');

if ($UseValgrind) {
    $DaemonEnabled = 'off';     # nginx must stay our child under valgrind
}

my %WarnedOnce;
sub warn_once ($) {
    my $msg = shift;
    warn $msg unless $WarnedOnce{$msg}++;
}

warn_once "WARNING: TEST_NGINX_USE_HUP is not supported by this harness; "
          . "nginx is restarted for every block instead.\n" if $UseHup;
warn_once "WARNING: TEST_NGINX_CHECK_LEAK/TEST_NGINX_BENCHMARK are not "
          . "supported by this harness; ignored.\n" if $CheckLeak || $Benchmark;
$UseHup = $CheckLeak = $Benchmark = 0;

our @EXPORT = qw(
    expand_env_in_text use_http2 use_http3 env_to_nginx is_str
    check_accum_error_log is_running $NoLongString no_long_string
    $ServerAddr server_addr $ServerName server_name parse_time $UseStap
    verbose sleep_time stap_out_fh stap_out_fname bail_out
    add_cleanup_handler add_test_cleanup_handler access_log_data
    error_log_data setup_server_root run_customer_init_script
    write_config_file get_canon_version get_nginx_version trim
    show_all_chars parse_headers run_tests run_test get_pid_from_pidfile
    $ServerPortForClient $ServerPort $NginxVersion $PcreVersion $PidFile
    $ServRoot $ConfFile $RunTestHelper $CheckErrorLog
    $CheckShutdownErrorLog $FilterHttpConfig $NoNginxManager $RepeatEach
    $CheckLeak $Benchmark $BenchmarkWarmup add_block_preprocessor timeout
    worker_connections workers master_on master_off config_preamble
    repeat_each master_process_enabled log_level no_shuffle
    no_root_location html_dir server_root server_port
    server_port_for_client no_nginx_manager use_hup is_udp_port_used
    is_tcp_port_used
);

#--------------------------------------------------------------------------
# Small setters/getters used by test files
#--------------------------------------------------------------------------

sub on_off { my $v = shift; (defined $v && $v =~ /^(?:1|on|yes|true)$/i) ? 'on' : 'off' }

sub getset {                    # getset(\$var, @args)
    my $ref = shift;
    $$ref = shift if @_;
    return $$ref;
}

sub repeat_each (@)        { getset(\$RepeatEach, @_) }
sub workers (@)            { getset(\$Workers, @_) }
sub worker_connections (@) { getset(\$WorkerConnections, @_) }
sub log_level (@)          { getset(\$LogLevel, @_) }
sub timeout (@)            { getset(\$Timeout, @_) }
sub server_addr (@)        { getset(\$ServerAddr, @_) }
sub server_name (@)        { getset(\$ServerName, @_) }
sub server_port (@)        { getset(\$ServerPort, @_) }
sub server_port_for_client (@) { getset(\$ServerPortForClient, @_) }
sub master_on ()           { $MasterProcessEnabled = 'on' }
sub master_off ()          { $MasterProcessEnabled = 'off' }
sub master_process_enabled (@) {
    $MasterProcessEnabled = $_[0] ? 'on' : 'off' if @_;
    return $MasterProcessEnabled;
}
sub no_shuffle ()          { $NoShuffle = 1 }
sub no_long_string ()      { $NoLongString = 1 }
sub no_root_location ()    { $NoRootLocation = 1 }
sub no_nginx_manager ()    { $NoNginxManager = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub use_hup () {
    warn_once "WARNING: use_hup() is not supported by this harness; ignored.\n";
}
sub config_preamble ($)    { $ConfigPreamble = shift }
sub html_dir ()            { $HtmlDir }
sub server_root ()         { $ServRoot }
sub sleep_time             { $TestNginxSleep }
sub verbose                { $Verbose }
sub stap_out_fh            { undef }
sub stap_out_fname         { undef }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($)    { unshift @CleanupHandlers, shift }
sub add_test_cleanup_handler ($) { unshift @TestCleanupHandlers, shift }

sub env_to_nginx (@) {
    Carp::croak("env_to_nginx: no arguments specified") unless @_;
    for my $v (@_) {
        Carp::croak("env_to_nginx: bad argument value: $v\n")
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

# HTTP/2 and HTTP/3 need curl-based clients that this harness lacks.
sub use_http2 ($) {
    my $block = shift;
    bail_out($block->name . " - --- http2 is not supported by this harness")
        if defined $block->http2;
    return undef;
}

sub use_http3 ($) {
    my $block = shift;
    bail_out($block->name . " - --- http3 is not supported by this harness")
        if defined $block->http3;
    return undef;
}

#--------------------------------------------------------------------------
# Generic helpers
#--------------------------------------------------------------------------

# A zombie counts as gone: a daemonized nginx is reaped by init, which can
# take a second or more (e.g. in containers).
sub is_running ($) {
    my $pid = shift;
    return 0 unless $pid && kill(0, $pid);
    if (open my $in, '<', "/proc/$pid/stat") {
        my $stat = <$in> // '';
        return 0 if $stat =~ /^\d+ \(.*\) Z/s;
    }
    return 1;
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    if ($NoLongString || !$HaveLongString) {
        return Test::More::is($got, $expected, $desc);
    }
    return Test::LongString::is_string($got, $expected, $desc);
}

# "100ms" -> 0.1, "2s" -> 2, "2" -> 2
sub parse_time ($) {
    my $t = shift;
    return undef unless defined $t;
    if ($t =~ /^\s*([\d.]+)\s*ms\s*$/) {
        return $1 / 1000;
    }
    $t =~ s/^\s*([\d.]+)\s*s?\s*$/$1/;
    return $t;
}

sub trim ($) {
    my $s = shift;
    return undef unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /g;
    $s =~ s/\s{2,}/ /g;
    return $s;
}

sub show_all_chars ($) {
    my $s = shift;
    $s =~ s/\n/\\n/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\t/\\t/g;
    return $s;
}

# "Name: value" lines -> { Name => value }; "!Name" -> { Name => undef }
sub parse_headers ($) {
    my $text = shift;
    my %headers;
    for my $line (split /\n/, $text) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            $headers{$line} = undef;
        } else {
            my ($key, $val) = split /\s*:\s*/, $line, 2;
            $headers{$key} = $val;
        }
    }
    return \%headers;
}

sub port_in_proc_table ($$) {
    my ($table, $port) = @_;
    open my $in, '<', $table or return 0;
    while (<$in>) {
        return 1 if /^\s*\d+: [0-9A-F]+:([0-9A-F]+) / && hex($1) == $port;
    }
    return 0;
}

sub is_tcp_port_used ($) { port_in_proc_table('/proc/net/tcp', shift) }
sub is_udp_port_used ($) { port_in_proc_table('/proc/net/udp', shift) }

# A random TCP port that we could bind on $ServerAddr just now.
sub gen_rand_port (;$$) {
    my ($tries, $used) = @_;
    $tries ||= 1000;
    $used  ||= {};
    for (1 .. $tries) {
        my $port = 1988 + int rand(63547);
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(
            LocalAddr => $ServerAddr, LocalPort => $port,
            Proto => 'tcp', Listen => 1, ReuseAddr => 1,
        );
        if ($sock) {
            close $sock;
            return $port;
        }
    }
    return undef;
}

# Replace $TEST_NGINX_FOO by the environment variable of that name and
# $TEST_NGINX_RAND_PORT_N by a free port (the same one within a block).
sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return undef unless defined $text;
    $rand_ports ||= {};

    my $replace = sub {
        my $var = shift;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            unless (defined $rand_ports->{$var}) {
                my %used = ($ServerPort => 1, map { $_ => 1 } values %$rand_ports);
                my $port = gen_rand_port(1000, \%used)
                    or bail_out "$name - Cannot find an available listening port number for $var.\n";
                $rand_ports->{$var} = $port;
            }
            return $rand_ports->{$var};
        }
        bail_out "$name - No environment $var defined.\n"
            unless defined $ENV{$var};
        return $ENV{$var};
    };

    $text =~ s/\$(TEST_NGINX_[_A-Z0-9]+)/$replace->($1)/ge;
    return $text;
}

sub get_canon_version (@) {
    sprintf "%d.%03d%03d", $_[0], $_[1], $_[2];
}

{
    my $nginx_V;

    sub nginx_V_output () {
        return $nginx_V if defined $nginx_V;
        my $out = `$NginxBinary -V 2>&1`;
        if (!defined $out || $? != 0) {
            bail_out("Failed to get the version of the Nginx in PATH: "
                     . ($out // ''));
        }
        return $nginx_V = $out;
    }
}

sub get_nginx_version () {
    my $out = nginx_V_output();
    if ($out =~ m{built with OpenSSL (\d+)\.(\d+)\.(\d+)([a-z])?}) {
        $OpenSSLVersion = get_canon_version($1, $2, $3)
            . (defined $4 ? sprintf('%03d', ord($4) - ord('a')) : '');
    }
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)})
    {
        my @ver = ($1, $2, $3);
        $NginxRawVersion = join '.', @ver;
        $PcreVersion = $out =~ /pcre/i ? 1 : 0;
        return get_canon_version(@ver);
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

sub can_run ($) {
    my $cmd = shift;
    if ($cmd =~ m{/}) {
        return -f $cmd && -x $cmd ? $cmd : undef;
    }
    for my $dir (split(/\Q$Config::Config{path_sep}\E/, $ENV{PATH} // ''), '.') {
        next if $dir eq '';
        my $abs = File::Spec->catfile($dir, $cmd);
        return $abs if -f $abs && -x $abs;
    }
    return undef;
}

sub get_pid_from_pidfile ($) {
    my $name = shift;
    open my $in, '<', $PidFile
        or bail_out("$name - Failed to open the pid file $PidFile for reading: $!");
    my $pid = do { local $/; <$in> } // '';
    close $in;
    $pid =~ s/\s+//g;
    return $pid;
}

# Wait until $pid is gone (reaping it if it is our child).
sub wait_for_exit ($$) {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        return 1 if $r == $pid;
        if (!is_running($pid)) {
            waitpid($pid, WNOHANG);     # reap it if it is our child
            return 1;
        }
        return 0 if time > $deadline;
        sleep 0.01;
    }
}

# Ask a process to quit (SIGQUIT, or SIGTERM with TEST_NGINX_FAST_SHUTDOWN),
# then use force if it does not exit within the timeout.
sub kill_process ($$$) {
    my ($pid, $wait, $name) = @_;
    return unless $pid && is_running($pid);

    kill(($ENV{TEST_NGINX_FAST_SHUTDOWN} ? SIGTERM : SIGQUIT), $pid);
    return if wait_for_exit($pid, $wait ? timeout() : 0.2);

    kill SIGTERM, $pid;
    return if wait_for_exit($pid, 1);

    warn "$name - WARNING: killing the child process $pid with force...\n";
    kill SIGKILL, $pid;
    wait_for_exit($pid, 1);
}

#--------------------------------------------------------------------------
# Server root, user files and nginx.conf
#--------------------------------------------------------------------------

sub setup_server_root ($) {
    if (-d $ServRoot) {
        # Remove only what we create, so a mistaken TEST_NGINX_SERVROOT
        # can not wipe real data: rmdir fails if anything else is left.
        remove_tree($ConfDir, $CacheDir, $HtmlDir, $LogDir,
                    glob("$ServRoot/*_cache"), glob("$ServRoot/*_temp"));
        rmdir $ServRoot
            or bail_out "Can't remove $ServRoot (not empty?): $!";
    }
    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        mkdir $dir or bail_out "Failed to do mkdir $dir: $!\n";
    }
    write_file("$HtmlDir/index.html", '<html><head><title>It works!</title>'
               . '</head><body>It works!</body></html>');
}

sub write_file ($$) {
    my ($path, $data) = @_;
    open my $out, '>', $path or bail_out "Can't open $path for writing: $!\n";
    binmode $out;
    print $out $data;
    close $out;
}

sub run_customer_init_script ($) {
    my $block = shift;
    if (my $code = $block->post_setup_server_root) {
        eval $code;
        bail_out($block->name . " - post_setup_server_root failed: $@") if $@;
    }
}

# --- user_files: ">>> name [date]" followed by the content, several times,
# or (eval) an array of [name, content, date] triples.
sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;
    my $name  = $block->name;
    my $files = $block->user_files;
    return unless $files;

    if (!ref $files) {
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, '', $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out "$name - wrong value type: ", ref $files,
                 ", only scalar or ARRAY are accepted";
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/} && !-d $1) {
            make_path($1) or bail_out "$name - Cannot create directory $1";
        }
        write_file($path, expand_env_in_text($body // '', $name, $rand_ports));
        if ($date) {
            system("TZ=GMT touch -t '$date' '$path'") == 0
                or bail_out "$name - Failed to set the date of $path\n";
        }
    }
}

# The layout (and so the line numbers) follows the real Test::Nginx.
sub write_config_file ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    my $http_config = expand_env_in_text($block->http_config, $name, $rand_ports) // '';
    $http_config = $FilterHttpConfig->($http_config) if $FilterHttpConfig;

    my $main_config = $block->main_config // '';
    if ($LoadModules) {
        my @lines = map { "load_module $_;" } grep { length } split /\s+/, $LoadModules;
        $main_config = join ' ', @lines, $main_config;
    }
    $main_config = expand_env_in_text($main_config, $name, $rand_ports);

    my $post_main_config =
        expand_env_in_text($block->post_main_config // '', $name, $rand_ports);

    my $err_log_file =
        expand_env_in_text($block->error_log_file || $ErrLogFile, $name, $rand_ports);

    my $server_name = $block->server_name // $ServerName;
    $server_name =~ s/\\/\\\\/g;
    $server_name =~ s/'/\\'/g;

    $config //= '';

    my $extra_http_config = '';
    if (defined $PostponeOutput && $http_config !~ /\bpostpone_output\b/) {
        bail_out "Bad TEST_NGINX_POSTPONE_OUTPUT value: $PostponeOutput\n"
            if $PostponeOutput !~ /^\d+$/;
        $extra_http_config = "\n    postpone_output $PostponeOutput;\n";
    }

    # keep all temporary files inside the server root
    my $nginx_V = nginx_V_output();
    my @temp_paths;
    for my $mod (qw(client_body proxy fastcgi scgi uwsgi)) {
        next if $nginx_V =~ /--without-http_${mod}_module/;
        next if $http_config =~ /\b${mod}_temp_path\b/;
        push @temp_paths, "${mod}_temp_path $ServRoot/${mod}_temp;";
    }
    my $temp_paths = join ' ', @temp_paths;

    my $env_lines = join '', map { "env $_;\n" } qw(
        MOCKEAGAIN_VERBOSE MOCKEAGAIN MOCKEAGAIN_WRITE_TIMEOUT_PATTERN
        LD_PRELOAD LD_LIBRARY_PATH DYLD_INSERT_LIBRARIES
        DYLD_FORCE_FLAT_NAMESPACE
    );
    $env_lines .= join '', map { /\s/ ? "env '$_';\n" : "env $_;\n" } @EnvToNginx;

    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $use_events = $EventType ? "    use $EventType;\n" : '';

    my $user = defined $WorkerUser ? "\nuser $WorkerUser;"
             : $> == 0             ? "\nuser root;"
             : '';
    my $http3_placeholder = '';     # (the real module puts HTTP/3 settings here)

    write_file($ConfFile, <<"_EOC_");
worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $err_log_file $LogLevel;
pid       $PidFile;
$env_lines#env LUA_PATH;
#env LUA_CPATH;

$main_config

http {
    access_log $AccLogFile; $temp_paths
    #access_log off;

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config
    server {
        listen          $ServerPort;
        #placeholder
        server_name     '$server_name';
        $http3_placeholder
        client_max_body_size 30M;
        #client_body_buffer_size 4k;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
$extra_http_config}

$post_main_config

#timer_resolution 100ms;

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
$use_events}
env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;$user
_EOC_
}

#--------------------------------------------------------------------------
# Logs
#--------------------------------------------------------------------------

# Lines of a log file written since the last call (for the error log), so
# that every check sees only what the current request produced.
sub error_log_data () {
    sleep $TestNginxSleep * 3;     # let the log phase finish
    open my $in, '<', $ErrLogFile or return undef;
    seek $in, $ErrLogFilePos, 0 if !$CheckAccumErrLog && $ErrLogFilePos;
    my @lines = <$in>;
    $ErrLogFilePos = tell $in unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub access_log_data () {
    sleep $TestNginxSleep * 3;
    open my $in, '<', $AccLogFile or die "open $AccLogFile failed: $!";
    my @lines = <$in>;
    close $in;
    return \@lines;
}

sub check_prev_block_shutdown_error_log () {
    my $block = $PrevBlock or return;
    if (defined $block->shutdown_error_log || defined $block->no_shutdown_error_log) {
        $CheckShutdownErrorLog->($block, $ENV{TEST_NGINX_NO_CLEAN} ? 1 : 0);
    }
}

#--------------------------------------------------------------------------
# nginx process management
#--------------------------------------------------------------------------

sub nginx_command ($) {
    my $block = shift;
    my $cmd = $NginxBinary;
    # -e (early error log) exists since nginx 1.19.5
    $cmd .= " -e $ErrLogFile" if $NginxVersion >= 1.019005;
    $cmd .= " -p $ServRoot/ -c $ConfFile > /dev/null";
    $cmd .= " 2> /dev/null" if defined $block->suppress_stderr;

    my $preload = $ENV{LD_PRELOAD};
    if (defined $ENV{TEST_NGINX_LD_PRELOAD}) {
        $preload = join ' ', grep { defined } $ENV{TEST_NGINX_LD_PRELOAD}, $preload;
        $cmd = qq{LD_PRELOAD="$preload" $cmd};
    }
    return $cmd;
}

sub valgrind_prefix () {
    return "valgrind -q $UseValgrind " if $UseValgrind !~ /^\d+$/;
    my $opts = "--num-callers=100 -q --tool=memcheck --leak-check=full "
             . "--keep-debuginfo=yes --show-possibly-lost=no --gen-suppressions=all";
    $opts .= " --suppressions=valgrind.suppress" if -f 'valgrind.suppress';
    return "valgrind $opts ";
}

# Stop the nginx started for an earlier block, if any.
sub stop_nginx ($) {
    my $name = shift;
    if (-f $PidFile) {
        my $pid = get_pid_from_pidfile($name);
        if ($pid && is_running($pid)) {
            kill_process($pid, 1, $name);
        } else {
            unlink $PidFile;
        }
    }
    if (defined $ChildPid) {            # valgrind mode: nginx is our child
        kill_process($ChildPid, 1, $name);
        undef $ChildPid;
    }
}

# Lines of the error log that show why nginx failed to start.
sub startup_failure_reason () {
    open my $in, '<', $ErrLogFile or return '';
    my @emerg = grep { /\[emerg\]/ } <$in>;
    close $in;
    return join '', @emerg;
}

# Start nginx for a block.  Returns a "dry run" reason when the block's
# tests must be skipped, or '' normally.
sub start_nginx ($) {
    my $block = shift;
    my $name = $block->name;
    my $cmd = nginx_command($block);

    if ($UseValgrind) {
        $cmd = valgrind_prefix() . $cmd;
        warn "$name\n";
        my $pid = fork();
        bail_out("$name - fork() failed: $!") unless defined $pid;
        if ($pid == 0) {
            $InSubprocess = 1;
            setpgrp;
            exec "exec $cmd" or POSIX::_exit(127);
        }
        $ChildPid = $pid;
        sleep $TestNginxSleep;
        return '';
    }

    my $waited = 0;
    for (my $try = 1; ; $try++) {
        system($cmd);
        return '' if $? == 0;

        my $status = $?;
        my $reason = startup_failure_reason();
        if ($ENV{TEST_NGINX_IGNORE_MISSING_DIRECTIVES}
            && $reason =~ /\[emerg\] \S+?: unknown directive "([^"]+)"/)
        {
            return "the lack of directive $1";
        }

        # Only a port still held by the previous nginx is worth a retry;
        # any other startup error would fail again.
        if ($status == -1 || ($reason ne '' && $reason !~ /Address already in use/)
            || $waited >= 30)
        {
            bail_out("$name - Cannot start nginx using command \"$cmd\" "
                     . "(status code $status).\n$reason");
        }
        my $delay = 0.1 * $try;
        $delay = 1 if $delay > 1;
        sleep $delay;
        $waited += $delay;
    }
}

# --- must_die: nginx is expected to refuse to start.
sub run_must_die_test ($$) {
    my ($block, $must_die) = @_;
    my $name = $block->name;
    my $cmd = nginx_command($block);

    $ErrLogFilePos = 0;
    for my $i (0 .. $RepeatEach - 1) {
        system($cmd);
        my $status = $?;
        my $exit_code = $status == -1 ? undef : $status >> 8;

        if ($status == -1) {
            Test::More::fail("$name - failed to execute the nginx command line");
        } elsif ($status & 128) {
            Test::More::fail("$name - nginx core dumped");
        } elsif ($must_die =~ /^\s*\d+\s*$/) {
            Test::More::is($must_die, $exit_code, "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }

        $CheckErrorLog->($block, undef, 0, $i, 0);

        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; killing it (req $i)\n";
            for (1 .. 15) {
                last if -f $PidFile;
                sleep $TestNginxSleep;
            }
            stop_nginx($name);
        }
    }
}

#--------------------------------------------------------------------------
# The fake TCP upstream (--- tcp_listen)
#--------------------------------------------------------------------------

sub start_tcp_server ($$) {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;

    my $target = expand_env_in_text($block->tcp_listen, $name, $rand_ports);
    $target =~ s/^\s+|\s+$//g;

    my $reply = $block->tcp_reply;
    if (!defined $reply && !defined $block->tcp_shutdown) {
        bail_out("$name - no --- tcp_reply specified but --- tcp_listen is specified");
    }

    my $req_len = $block->tcp_query_len;
    my $query_file;
    if (defined $block->tcp_query || defined $req_len) {
        $req_len //= length $block->tcp_query;
        (undef, $query_file) = File::Temp::tempfile('tn-tcp-query-XXXXXX',
                                                    TMPDIR => 1, OPEN => 0);
    }

    my ($listener, $err);
    for my $try (1 .. 30) {
        if ($target =~ /^\d+$/) {
            $listener = IO::Socket::INET->new(
                LocalHost => '127.0.0.1', LocalPort => $target,
                Proto => 'tcp', ReuseAddr => 1, Listen => 5,
            );
        } elsif ($target =~ /\S+\.sock$/) {
            unlink $target if -e $target;
            $listener = IO::Socket::UNIX->new(
                Local => $target, Type => SOCK_STREAM, Listen => 5,
            );
        } else {
            bail_out("$name - bad tcp_listen target: $target");
        }
        last if $listener;
        $err = $!;
        last unless $err =~ /address already in use/i;
        warn "WARNING: failed to create the tcp listening socket: $err\n";
        sleep 0.2;
    }
    bail_out("$name - failed to create the tcp listening socket: $err")
        unless $listener;

    my $pid = fork();
    bail_out("$name - fork() failed: $!") unless defined $pid;

    if ($pid == 0) {
        $InSubprocess = 1;
        Test::More->builder->no_ending(1);
        my $ok = eval {
            serve_one_tcp_client($block, $listener, $reply, $req_len, $query_file);
            1;
        };
        warn "$name - TCP server: $@" unless $ok;
        POSIX::_exit(0);
    }

    $TcpServerPid = $pid;
    return { pid => $pid, socket => $listener, query_file => $query_file,
             target => $target };
}

# Runs in the forked child: accept one connection, read the request,
# optionally wait, send the reply, close.
sub serve_one_tcp_client {
    my ($block, $listener, $reply, $req_len, $query_file) = @_;
    local $| = 1;

    my $client;
    until ($client = $listener->accept) {
        sleep $TestNginxSleep;
    }

    my ($no_read, $no_write);
    if (defined(my $how = $block->tcp_shutdown)) {
        sleep parse_time($block->tcp_shutdown_delay) if $block->tcp_shutdown_delay;
        $client->shutdown($how);
        if ($how == 0 || $how == 2) { $no_read = 1 } else { $no_write = 1 }
    }

    my $buf = '';
    unless ($no_read) {
        my $auto = $block->tcp_query_auto_timeout;
        my $silence = (defined $auto && $auto ne '') ? $auto + 0 : 0.1;
        my $select = IO::Select->new($client);
        while (1) {
            last if defined $auto && !$select->can_read($silence);
            my $chunk;
            my $n = sysread($client, $chunk, 4096);
            last unless $n;         # EOF or error
            $buf .= $chunk;
            if ($query_file) {      # make what we got visible at once
                write_file("$query_file.tmp", $buf);
                rename "$query_file.tmp", $query_file;
            }
            last if !defined $auto && (!$req_len || length($buf) >= $req_len);
        }
    }

    if (my $delay = parse_time($block->tcp_reply_delay)) {
        sleep $delay;
    }

    if (!$no_write && defined $reply) {
        $reply = $reply->($buf) if ref $reply eq 'CODE';
        my @parts = ref $reply eq 'ARRAY' ? @$reply : ($reply);
        die "bad --- tcp_reply value\n" if grep { ref } @parts;
        for my $part (@parts) {
            defined syswrite($client, $part)
                or warn "WARNING: tcp server failed to send reply: $!\n";
        }
    }

    if (defined $block->tcp_no_close) {
        sleep 1 while 1;
    }
    close $client;
}

sub stop_tcp_server ($$) {
    my ($server, $name) = @_;
    return unless $server;
    if (is_running($server->{pid})) {
        kill SIGTERM, $server->{pid};
        unless (wait_for_exit($server->{pid}, 1)) {
            kill SIGKILL, $server->{pid};
            wait_for_exit($server->{pid}, 1);
        }
    }
    undef $TcpServerPid;
    close $server->{socket};
    unlink $server->{target} if $server->{target} =~ /\.sock$/;
    unlink $server->{query_file} if $server->{query_file};
}

sub run_tcp_server_tests ($$) {
    my ($block, $server) = @_;
    return unless $server && $server->{query_file};
    my $name = $block->name;

    my $buf = '';
    if (open my $in, '<', $server->{query_file}) {
        local $/;
        $buf = <$in> // '';
        close $in;
    }
    if (defined $block->tcp_query) {
        is_str($buf, $block->tcp_query, "$name - tcp_query ok");
    }
    if (defined $block->tcp_query_len) {
        Test::More::is(length($buf), $block->tcp_query_len, "$name - TCP query length ok");
    }
}

#--------------------------------------------------------------------------
# Skip / todo specs (--- skip_nginx, --- skip_eval, --- todo ...)
#--------------------------------------------------------------------------

my %Compare = (
    '<'  => sub { $_[0] <  $_[1] }, '<=' => sub { $_[0] <= $_[1] },
    '>'  => sub { $_[0] >  $_[1] }, '>=' => sub { $_[0] >= $_[1] },
);

sub version_matches ($$) {
    my ($op, $ver) = @_;
    return $op =~ /^</ unless defined $NginxVersion;
    return $Compare{$op}->($NginxVersion, $ver);
}

# Returns (number of tests to skip, reason) when the block must be skipped.
sub block_skip_spec ($) {
    my $block = shift;
    my $name = $block->name;
    my ($count, $skip, $reason);

    if (defined(my $spec = $block->skip_eval)) {
        if ($spec =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            $count = $1;
            $reason = 'skip_eval';
            $skip = eval $2;
            bail_out("$name - skip_eval - failed to eval the Perl code \"$2\": $@") if $@;
        }
    }

    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$/
            or bail_out("$name - Invalid --- skip_nginx spec: $spec");
        $count = $1;
        $reason = $6 || "nginx version $2 $3.$4.$5";
        $skip = 1 if version_matches($2, get_canon_version($3, $4, $5));

    } elsif (defined(my $spec2 = $block->skip_nginx2)) {
        $spec2 =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)\s*(or|and)\s*
                   ([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$/x
            or bail_out("$name - Invalid --- skip_nginx2 spec: $spec2");
        $count = $1;
        $reason = $11;
        my $a = version_matches($2, get_canon_version($3, $4, $5));
        my $b = version_matches($7, get_canon_version($8, $9, $10));
        $skip = 1 if !defined $NginxVersion || ($6 eq 'or' ? ($a || $b) : ($a && $b));
    }

    if (defined(my $spec = $block->skip_openssl)) {
        $spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)([a-z])?(?:\s*:\s*(.*))?\s*$/
            or bail_out("$name - Invalid --- skip_openssl spec: $spec");
        $count = $1;
        my $ver = get_canon_version($3, $4, $5)
                  . (defined $6 ? sprintf('%03d', ord($6) - ord('a')) : '');
        $reason = $7 || (defined $OpenSSLVersion ? "OpenSSL version $2 $3.$4.$5"
                                                  : "Not built with OpenSSL");
        $skip = 1 if !defined $OpenSSLVersion || $Compare{$2}->($OpenSSLVersion, $ver);
    }

    return $skip ? ($count, $reason || 'various reasons') : ();
}

# Returns (number of tests, reason) when the block is a TODO.
sub block_todo_spec ($) {
    my $block = shift;
    my $name = $block->name;
    my ($todo, $count, $reason);

    if (defined(my $spec = $block->todo_nginx)) {
        $spec =~ /^\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$/
            or bail_out("$name - Invalid --- todo_nginx spec: $spec");
        $reason = $5;
        $todo = 1 if version_matches($1, get_canon_version($2, $3, $4));
    }
    if (defined(my $spec = $block->todo)) {
        $spec =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- todo spec: $spec");
        ($todo, $count, $reason) = (1, $1, $2);
    }
    return $todo ? ($count, $reason || 'various reasons') : ();
}

#--------------------------------------------------------------------------
# Section names
#--------------------------------------------------------------------------

our %SupportedSections = map { $_ => 1 } qw(
    ONLY SKIP LAST
    main_config post_main_config http_config config server_name init
    post_setup_server_root request request_eval raw_request
    raw_request_middle_delay pipelined_requests more_headers
    error_code error_code_like response_body response_body_eval
    response_body_like response_body_unlike response_body_filters
    response_body_json_sort response_headers response_headers_like
    raw_response_headers_like raw_response_headers_unlike charset
    error_log no_error_log grep_error_log grep_error_log_out access_log
    no_access_log shutdown_error_log no_shutdown_error_log log_level
    error_log_file timeout abort shutdown ignore_response wait user_files
    must_die suppress_stderr tcp_listen tcp_reply tcp_reply_delay tcp_query
    tcp_query_len tcp_query_auto_timeout tcp_no_close tcp_shutdown
    tcp_shutdown_delay skip_nginx skip_nginx2 skip_eval skip_openssl
    skip_slave todo todo_nginx no_check_leak server_addr_for_client
    write_resp_body_file http09 no_http2 no_http3 no_mockeagain
);

# Sections the real Test::Nginx knows but this harness does not implement.
my %UnsupportedSections = map { $_ => 1 } qw(
    http2 http3 curl curl_protocol curl_options curl_error stap stap_out
    stap_out_like stap_out_unlike udp_listen udp_reply udp_reply_delay
    udp_query reload_fails quic_max_idle_timeout
);

# Warn about misspelled section names (the real Test::Nginx silently
# ignores them, so "--- response_bdy" would pass without checking), and
# about "--- foo eval" sections whose Perl code did not compile (Test::Base
# then silently uses the error message as the value).
sub check_section_names (@) {
    for my $block (@_) {
        for my $sec (@{ $block->{_section_order}[0] || [] }) {
            my $where = "$0: " . $block->name;
            my $value = $block->$sec;
            if (defined $value && !ref $value
                && $block->{_section_map}[0]{$sec}{filters} =~ /\beval\b/
                && $value =~ /at \(eval \d+\) line \d+/)
            {
                warn "WARNING: $where - --- $sec eval failed: $value";
            }
            next if $SupportedSections{$sec};
            if ($UnsupportedSections{$sec}) {
                warn_once "WARNING: $0 - section \"--- $sec\" is not supported "
                          . "by this harness (t/lib/Test/Nginx); ignored.\n";
            } else {
                warn "WARNING: $where - unknown section \"--- $sec\" "
                     . "(misspelled?); it is ignored.\n";
            }
        }
    }
}

#--------------------------------------------------------------------------
# The test loop
#--------------------------------------------------------------------------

sub run_tests () {
    srand($$ + time * 1000000);
    $NginxVersion = get_nginx_version();

    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
        unless defined $ENV{TEST_NGINX_SERVER_PORT};

    my @blocks = Test::Base::blocks();
    check_section_names(@blocks);
    @blocks = shuffle @blocks unless $NoShuffle;

    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_test($block);
        $_->($block) for @TestCleanupHandlers;
        $PrevBlock = $block;
    }

    cleanup();
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;

    my $name = $block->name;
    my $rand_ports = $RandPorts = {};
    my $config = expand_env_in_text($block->config, $name, $rand_ports);

    local $LogLevel = $block->log_level || $LogLevel;
    local $UseValgrind = defined $block->must_die ? undef : $UseValgrind;

    my ($skip_count, $skip_reason) = block_skip_spec($block);
    my ($todo_count, $todo_reason) = block_todo_spec($block);

    # A block without --- config reuses the nginx of the previous block.
    my $restart = 1;
    if (!defined $config) {
        if (!$NoNginxManager && !defined $PrevConfig) {
            bail_out("$name - No '--- config' section specified and could not "
                     . "get previous one. Use TEST_NGINX_NO_NGINX_MANAGER ?");
        }
        $restart = 0;
    } elsif ($NoNginxManager) {
        Test::More::diag("NO_NGINX_MANAGER activated: config for $name ignored");
        $restart = 0;
    }

    my $dry_run = 0;
    if ($restart && !defined $skip_count) {
        $PrevConfig = $config;
        stop_nginx($name);
        check_prev_block_shutdown_error_log();

        setup_server_root(0);
        run_customer_init_script($block);
        write_user_files($block, $rand_ports);
        write_config_file($block, $config, $rand_ports);
        bail_out("$name - Cannot find the nginx executable in the PATH environment")
            unless can_run($NginxBinary);

        if (defined(my $must_die = $block->must_die)) {
            run_must_die_test($block, $must_die);
            return;
        }

        $ErrLogFilePos = 0;
        $dry_run = start_nginx($block);
        sleep $TestNginxSleep;
    }

    if (my $init = $block->init) {
        eval $init;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogFilePos = 0;
    for my $i (0 .. $RepeatEach - 1) {
        write_user_files($block, $rand_ports) if $i > 0;

        if (defined $skip_count) {
            SKIP: { Test::More::skip("$name - $skip_reason", $skip_count) }
            next;
        }
        if (defined $todo_count) {
            TODO: { Test::More::todo_skip("$name - $todo_reason", $todo_count) }
            next;
        }

        my $tcp_server = defined $block->tcp_listen
                       ? start_tcp_server($block, $rand_ports) : undef;

        $RunTestHelper->($block, $dry_run, $i);
        run_tcp_server_tests($block, $tcp_server);
        stop_tcp_server($tcp_server, $name);
    }

    if (my $all_logs = $ENV{TEST_NGINX_ERROR_LOG}) {
        if (-s $ErrLogFile && open my $out, '>>', $all_logs) {
            print $out "\n=== $0 $name\n";
            if (open my $in, '<', $ErrLogFile) {
                print $out $_ while <$in>;
            }
        }
    }

    stop_nginx($name) if $UseValgrind;     # flush valgrind's report now
}

sub cleanup () {
    $_->() for @CleanupHandlers;
    for my $pid ($TcpServerPid, $UdpServerPid, $ChildPid) {
        kill_process($pid, 1, 'cleanup') if defined $pid;
    }
    undef $TcpServerPid;
    undef $UdpServerPid;
    undef $ChildPid;
}

END {
    return if $InSubprocess;
    local $?;      # keep Test::Builder's exit code

    cleanup();

    if ($UseValgrind || !$ENV{TEST_NGINX_NO_CLEAN}) {
        stop_nginx('END') if defined $ServRoot;
    }

    check_prev_block_shutdown_error_log();

    if ($Randomize && defined $ServRoot && $ServRoot =~ m{/t/servroot_\d+$}
        && -d $ServRoot && !$ENV{TEST_NGINX_NO_CLEAN})
    {
        remove_tree($ServRoot);
    }
}

1;
__END__

=head1 NAME

Test::Nginx::Util - server side of the project's Test::Nginx stand-in

=head1 DESCRIPTION

Used by L<Test::Nginx::Socket> (the copy in F<t/lib>), never directly by
test files.  It writes F<servroot/conf/nginx.conf> in the same layout as the
real Test::Nginx 0.33, (re)starts nginx for every block, runs the fake TCP
upstream of C<--- tcp_listen>, and drives the per-block loop
(C<repeat_each>, shuffling, skip/todo, C<must_die>).

The package variables (C<$ServerPort>, C<$ServRoot>, C<$ErrLogFile>, ...)
have the names of the real module, so C<$Test::Nginx::Util::ServerPort>
works under both.  C<$Test::Nginx::Util::IsProjectHarness> is true only
here.

=head1 SEE ALSO

F<t/lib/Test/Nginx/Socket.pm> for the supported sections, environment
variables and known differences.

=cut
