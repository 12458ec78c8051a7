package LLMSchema;

# Every body the module answers with, checked against the shape of
# OpenAI's API (t/schema/*.json, JSON Schema draft-07, validated by
# JSON::Validator, Debian's libjson-validator-perl):
#
#   a JSON body with a 2xx status   CreateChatCompletionResponse
#   a JSON body with another status ErrorResponse
#   each data: line of an SSE body  CreateChatCompletionStreamResponse,
#                                   or ErrorResponse for {"error":...};
#                                   "[DONE]" ends the stream, last
#
# check_bodies(), called before the suite's own add_block_preprocessor()
# (so that its preprocessor runs last and sees every filter the others
# set), adds the check to every block: one "OpenAI schema" test per
# response, through
# add_response_body_check(), which the real Test::Nginx and t/lib's both
# have.  The body checked is the one nginx sent, before any
# --- response_body_filters.  The status is the block's --- error_code
# (200 when absent, as Test::Nginx assumes); a body with another
# expected status is an error.  A block whose answer is not the
# module's (a status page, a body relayed as it came) opts out with
# --- no_schema_check: alone for all its requests, or followed by the
# indexes (from 0) of the requests whose answers are not the module's.

use strict;
use warnings;
use File::Basename ();
use File::Spec ();
use Test::More ();
use JSON::PP ();

BEGIN {
    eval { require JSON::Validator; 1 }
        or die "LLMSchema: JSON::Validator is missing "
             . "(libjson-validator-perl: run 'make deps')\n";
}

our $Dir = File::Spec->rel2abs(File::Spec->catdir(
               File::Basename::dirname(__FILE__), '..', 'schema'));

my %validator;

sub validator {
    my ($name) = @_;

    return $validator{$name} //= do {
        my $jv = JSON::Validator->new;
        $jv->schema("$Dir/$name.json");
        $jv;
    };
}

my $json = JSON::PP->new->allow_nonref(0);

# the problems of one JSON text against schema NAME, as strings
sub problems {
    my ($name, $text, $where) = @_;
    my $data = eval { $json->decode($text) };

    if (!defined $data) {
        my $e = $@ || 'not a JSON object';
        $e =~ s/ at \S+ line \d+.*//s;
        return ("$where: not JSON: $e");
    }

    return map { "$where ($name): $_" } validator($name)->validate($data);
}

# the events of an SSE body: the data of each complete event (an event
# cut by the end of the body is left out)
sub sse_data {
    my ($body) = @_;
    my @data;

    $body =~ s/\r\n/\n/g;

    my @events = split /\n\n/, $body, -1;

    # the text after the last blank line is an event that did not end
    pop @events;

    for my $ev (@events) {
        my @lines = grep { /^data:/ } split /\n/, $ev;

        next unless @lines;

        push @data, join "\n", map { s/^data: ?//r } @lines;
    }

    return @data;
}

# problems of the body BODY answered with STATUS (undef: unknown)
sub body_problems {
    my ($body, $status) = @_;

    return () if !defined $body || $body !~ /\S/;

    if ($body =~ /\A(?:data|event|id|retry)?:/) {
        my (@p, $done);
        my $n = 0;

        for my $data (sse_data($body)) {
            $n++;

            if ($done) {
                push @p, "event $n: after [DONE]";
                next;
            }

            if ($data eq '[DONE]') {
                $done = 1;
                next;
            }

            my $name = $data =~ /\A\s*\{\s*"error"\s*:/
                       ? 'error' : 'chat-completion-chunk';

            push @p, problems($name, $data, "event $n");
        }

        return @p;
    }

    my $name = defined $status
               ? ($status =~ /^2/ ? 'chat-completion' : 'error')
               : ($body =~ /\A\s*\{\s*"error"\s*:/ ? 'error'
                                                   : 'chat-completion');

    return problems($name, $body, 'body');
}

sub expected_status {
    my ($block, $req_idx) = @_;
    my $code = $block->error_code;

    return 200 if !defined $code;

    $code = $code->[$req_idx] if ref $code eq 'ARRAY';

    return undef if !defined $code;

    $code =~ s/^\s+|\s+$//g;

    return $code =~ /^\d{3}$/ ? $code : undef;
}

# --- no_schema_check for request REQ_IDX (undef: for every request)
sub skipped {
    my ($block, $req_idx) = @_;
    my $v = $block->no_schema_check;

    return 0 if !defined $v;

    my @idx = split ' ', $v;

    return 1 if !@idx;
    return 0 if !defined $req_idx;

    return scalar grep { $_ == $req_idx } @idx;
}

my $raw;

# a first --- response_body_filters step that keeps the body as it came
sub keep_raw {
    my ($body) = @_;
    $raw = $body;
    return $body;
}

sub preprocess {
    my ($block) = @_;
    my $f = $block->response_body_filters;

    return if !defined $f || skipped($block, undef);

    if (!ref $f) {
        $f =~ s/^\s+|\s+$//g;
        $f = [split /\s+/, $f];

    } elsif (ref $f ne 'ARRAY') {
        $f = [$f];
    }

    if (ref $f->[0] eq 'ARRAY') {
        $f = [map { [\&keep_raw, @$_] } @$f];

    } else {
        $f = [\&keep_raw, @$f];
    }

    $block->set_value('response_body_filters', $f);
}

sub check {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;

    if (defined $raw) {
        $body = $raw;
        undef $raw;
    }

    return if $dry_run || skipped($block, $req_idx);

    my @p = body_problems($body, expected_status($block, $req_idx));

    Test::More::ok(!@p, $block->name . " - OpenAI schema (repeated req "
                        . "$repeated_req_idx, req $req_idx)")
        or Test::More::diag(join "\n", @p,
                            'body: ' . substr($body // '', 0, 2000));
}

sub check_bodies {
    # the t/lib harness warns about section names it does not know
    {
        no warnings 'once';
        $Test::Nginx::Util::SupportedSections{no_schema_check} = 1;
    }

    Test::Nginx::Util::add_block_preprocessor(\&preprocess);
    Test::Nginx::Socket::add_response_body_check(\&check);
}

1;
