# Self-test of the Test::Nginx harness: repeat_each, master process with
# two workers, classic "plan tests => ..." and add_response_body_check.
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/../lib" }   # appended: a real installed Test::Nginx wins
# own port and server root, so these files never collide with the project's
# suite (port 1984, t/servroot) even under prove -j
BEGIN { $ENV{TEST_NGINX_RANDOMIZE} = 1 unless defined $ENV{TEST_NGINX_RANDOMIZE} }
use Test::Nginx::Socket;

$ENV{TEST_NGINX_BINARY} ||= '/usr/sbin/nginx' if -x '/usr/sbin/nginx';

repeat_each(2);
master_on();
workers(2);

# the worker that answers is not the master (whose pid is in the pid file)
add_response_body_check(sub {
    my ($block, $body) = @_;
    my $pid_file = server_root() . "/logs/nginx.pid";
    open my $in, '<', $pid_file or die "cannot open $pid_file: $!";
    chomp(my $master = <$in>);
    my ($worker) = ($body // '') =~ /worker=(\d+)/;
    isnt($worker // '', $master, $block->name . " - answered by a worker, not the master");
});

plan tests => repeat_each() * (4 * blocks());

no_shuffle();
run_tests();

__DATA__

=== TEST 1: two workers behind a master
--- config
    location = /t { return 200 "worker=$pid\n"; }
--- request
GET /t
--- response_body_like: ^worker=\d+$
--- no_error_log
[error]



=== TEST 2: error_log is checked per repetition
--- config
    location = /t { return 200 "worker=$pid\n"; }
--- request
GET /t?rep
--- response_body_like: worker=\d+
--- error_log
"GET /t?rep HTTP/1.1"
