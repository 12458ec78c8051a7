# Self-test of the Test::Nginx harness: wrong expectations must really
# fail, bad setups must bail out.  Each case is a small test file written to
# a temporary directory and run in a child perl; we check its TAP output.
# This file itself does not load Test::Nginx (so it starts no nginx).
use strict;
use warnings;
use Test::More;
use Config;
use Cwd qw(abs_path);
use File::Temp qw(tempdir);
use FindBin;

my $lib = abs_path("$FindBin::Bin/../lib");
my ($prove) = grep { -f } "$Config{installscript}/prove", "$Config{installbin}/prove",
                         '/usr/bin/prove';
plan skip_all => 'prove not found' unless $prove;
my $tmp = tempdir('tn-selftest-XXXXXX', TMPDIR => 1, CLEANUP => 1);
mkdir "$tmp/t" or die "mkdir: $!";

# Run a test file (header + blocks) with a child prove -v; returns
# prove's exit code, stdout (TAP and summary) and stderr.
sub run_child {
    my ($name, $blocks, %env) = @_;
    my $file = "t/$name.t";
    open my $out, '>', "$tmp/$file" or die "cannot write $file: $!";
    print $out <<"_EOC_";
BEGIN { push \@INC, '$lib' }
use Test::Nginx::Socket 'no_plan';
no warnings 'once';
diag(\$Test::Nginx::Util::IsProjectHarness ? 'harness=project' : 'harness=real');
run_tests();

__DATA__

$blocks
_EOC_
    close $out;

    local %ENV = (
        %ENV,
        TEST_NGINX_RANDOMIZE  => 1,
        TEST_NGINX_NO_SHUFFLE => 1,
        TEST_NGINX_BINARY     => $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx',
        PERL5LIB              => join(':', grep { !ref } @INC),
        %env,
    );
    delete $ENV{$_} for grep { !defined $env{$_} && exists $env{$_} } keys %env;
    system("cd '$tmp' && '$^X' '$prove' -v '$file' > '$tmp/$name.out' 2> '$tmp/$name.err'");
    my $rc = $? >> 8;
    my $slurp = sub { open my $in, '<', shift or return ''; local $/; <$in> // '' };
    return ($rc, $slurp->("$tmp/$name.out"), $slurp->("$tmp/$name.err"));
}

#--------------------------------------------------------------------------
my ($rc, $out, $err) = run_child('wrong', <<'_EOB_');
=== TEST 1: wrong body
--- config
    location = /t { return 200 "hello\n"; }
--- request
GET /t
--- response_body
goodbye



=== TEST 2: wrong status
--- config
    location = /t { return 404; }
--- request
GET /t



=== TEST 3: wrong headers
--- config
    location = /t { return 200 "x"; }
--- request
GET /t
--- response_headers
X-Missing: yes
!Content-Type



=== TEST 4: error_log pattern that never appears
--- config
    location = /t { return 200 "x"; }
--- request
GET /t
--- error_log
this never appears in the log



=== TEST 5: no_error_log pattern that does appear
--- config
--- request
GET /missing.html
--- error_code: 404
--- no_error_log
[error]



=== TEST 6: response_body_like that does not match
--- config
    location = /t { return 200 "abc"; }
--- request
GET /t
--- response_body_like: ^xyz



=== TEST 7: client timeout on a slow upstream
--- config
    location = /t {
        proxy_read_timeout 10s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_reply_delay: 2
--- tcp_reply eval
"HTTP/1.0 200 OK\r\n\r\nlate"
--- request
GET /t
--- timeout: 0.3



=== TEST 8: must_die with a valid config
--- config
    location = /t { return 200; }
--- must_die



=== TEST 9: tcp_query mismatch
--- config
    location = /t { proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query: not what nginx sends
--- tcp_reply eval
"HTTP/1.0 200 OK\r\n\r\nok"
--- request
GET /t
--- response_body: ok



=== TEST 10: misspelled section (passes, but our harness warns)
--- config
    location = /t { return 200 "fine\n"; }
--- request
GET /t
--- response_bdy
not checked



=== TEST 11: access_log pattern that never appears
--- config
    location = /t { return 200 "x"; }
--- request
GET /t
--- access_log
"GET /never HTTP/1.1"



=== TEST 12: raw_response_headers_unlike that matches the second response
--- config
    location = /t { add_header X-Secret $arg_s; return 200 "x"; }
--- request eval
["GET /t?s=public", "GET /t?s=hidden"]
--- raw_response_headers_unlike eval
[qr/hidden/, qr/hidden/]
--- response_body eval
["x", "x"]
_EOB_

my ($harness) = $err =~ /harness=(\w+)/;
$harness //= 'unknown';
note "child ran under the $harness harness";

isnt($rc, 0, "prove fails on the wrong blocks");
like($out, qr/^Result: FAIL/m, "prove reports Result: FAIL");

my %fails = (
    'TEST 1: wrong body - response_body - response is expected' => 1,
    'TEST 2: wrong status - status code ok' => 1,
    'TEST 3: wrong headers - header X-Missing ok' => 1,
    'TEST 3: wrong headers - header Content-Type not present in the raw headers' => 1,
    'TEST 4: error_log pattern that never appears - pattern "this never appears in the log" should match a line in error.log' => 1,
    'TEST 5: no_error_log pattern that does appear - pattern "[error]" should not match any line in error.log' => 1,
    'TEST 6: response_body_like that does not match - response_body_like - response is expected' => 1,
    'ERROR: client socket timed out - t/wrong.t TEST 7' => 1,
    'TEST 7: client timeout on a slow upstream - status code ok' => 1,
    'TEST 8: must_die with a valid config - die as expected' => 1,
    'TEST 9: tcp_query mismatch - tcp_query ok' => 1,
    'TEST 11: access_log pattern that never appears - pattern ""GET /never HTTP/1.1"" should match a line in access.log' => 1,
    'TEST 12: raw_response_headers_unlike that matches the second response - raw resp headers unlike' => 1,
);
for my $name (sort keys %fails) {
    like($out, qr/^not ok \d+ - .*\Q$name\E/m, "reported as failing: $name");
}
my @not_ok = $out =~ /^not ok /mg;
is(scalar @not_ok, scalar keys %fails, "exactly the expected failures")
    or diag($out);

for my $name ('TEST 1: wrong body - status code ok',
              'TEST 5: no_error_log pattern that does appear - status code ok',
              'TEST 9: tcp_query mismatch - response_body - response is expected',
              'TEST 10: misspelled section (passes, but our harness warns) - status code ok')
{
    like($out, qr/^ok \d+ - .*\Q$name\E/m, "still passing: $name");
}

SKIP: {
    skip "the real Test::Nginx ignores unknown sections silently", 1
        unless $harness eq 'project';
    like($err, qr/unknown section "--- response_bdy"/, "unknown section is reported on stderr");
}

#--------------------------------------------------------------------------
($rc, $out, $err) = run_child('bail', <<'_EOB_');
=== TEST 1: missing environment variable
--- config
    location = /t { return 200 "$TEST_NGINX_SURELY_NOT_SET_ANYWHERE"; }
--- request
GET /t
_EOB_

isnt($rc, 0, "prove fails on a bail-out");
like($out, qr/(?:Bail out!|Bailout called).*No environment TEST_NGINX_SURELY_NOT_SET_ANYWHERE defined/,
     "a missing \$TEST_NGINX_ variable bails out");

#--------------------------------------------------------------------------
SKIP: {
    my $so = '/usr/lib/nginx/modules/ngx_stream_module.so';
    skip "$so is not installed", 3 unless -f $so;

    ($rc, $out, $err) = run_child('modules', <<'_EOB_', TEST_NGINX_LOAD_MODULES => $so);
=== TEST 1: TEST_NGINX_LOAD_MODULES loads a module (stream{} is accepted)
--- main_config
    stream {
        server {
            listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
            return "stream ok\n";
        }
    }
--- config
    location = /t { return 200 "http ok\n"; }
--- request
GET /t
--- response_body
http ok
--- no_error_log
[error]
_EOB_

    is($rc, 0, "prove passes with the module loaded") or diag($out, $err);
    like($out, qr/^ok \d+ - .*status code ok/m, "module child ran its request");
    unlike($out, qr/^not ok/m, "no failures with the module loaded");
}

done_testing();
