# The layering rule of util/lint.sh: only the driver (handler.c) moves
# the chain on, sends the response or ends the request. A service file
# that calls one of those names fails the lint; the driver, a comment, a
# string and a definition do not; and the module's own tree keeps it.

use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use Test::More;

my $top = "$FindBin::Bin/..";
my $lint = "$top/util/lint.sh";
my $dir = tempdir(CLEANUP => 1);

sub lint {
    my (@files) = @_;
    my $out = `bash $lint @files 2>&1`;
    return ($? >> 8, $out);
}

sub file {
    my ($name, $text) = @_;
    open my $fh, '>', "$dir/$name" or die "$dir/$name: $!";
    print $fh $text;
    close $fh;
    return "$dir/$name";
}

my $calls = <<'C';
static void
f(ngx_http_request_t *r, ngx_http_llm_fallback_ctx_t *ctx)
{
    /* ngx_http_finalize_request(r, NGX_OK) in a comment is no call */
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ngx_http_llm_fallback_next() in a string is none");
    ngx_http_llm_fallback_next(r, ctx);
    ngx_http_llm_fallback_finish (r, ctx, NGX_OK);
    ngx_http_finalize_request(r, NGX_ERROR);
    (void) ngx_http_llm_fallback_send_result(r, ctx);
    (void) ngx_http_llm_fallback_send_error(r, ctx, NULL);
    (void) ngx_http_llm_fallback_send_stream_header(r, ctx);
}
C

my ($rc, $out) = lint(file('ngx_http_llm_fallback_cache.c', $calls));

isnt($rc, 0, 'a service calling the driver fails the lint');

for my $name (qw(ngx_http_llm_fallback_next ngx_http_llm_fallback_finish
                 ngx_http_finalize_request ngx_http_llm_fallback_send_result
                 ngx_http_llm_fallback_send_error
                 ngx_http_llm_fallback_send_stream_header))
{
    like($out, qr/ngx_http_llm_fallback_cache\.c:\d+: calls the driver's \Q$name\E\(\) outside handler\.c/,
         "$name is named");
}

is(scalar(() = $out =~ /calls the driver's/g), 6,
   'each call once, nothing for the comment and the string');

($rc, $out) = lint(file('ngx_http_llm_fallback_handler.c', $calls));
is($rc, 0, 'the driver may') or diag($out);

($rc, $out) = lint(file('ngx_http_llm_fallback_response.c', <<'C'));
ngx_int_t
ngx_http_llm_fallback_send_result(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    return NGX_OK;
}
C
is($rc, 0, 'a definition is no call') or diag($out);

($rc, $out) = lint();
is($rc, 0, "the module's tree keeps the rule") or diag($out);

done_testing();
