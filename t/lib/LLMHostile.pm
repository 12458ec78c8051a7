package LLMHostile;

# Shared by the hostile-input suites (t/040-t/042): a block preprocessor
# step that makes every block assert the worker survived, whatever else
# it checks, and builders of requests and expected error bodies for the
# --- eval sections.
#
# With master_on() a worker that crashes is logged by the master as
# "worker process N exited on signal S" and replaced, so the next request
# of the block is answered by a fresh worker: these lines, not a failed
# connection, are what shows a crash.

use strict;
use warnings;
use Exporter 'import';

our @EXPORT_OK = qw(survives post with with_message content invalid
                    unparsable answer reply exhausted);

# a valid request, and what the "ok" fake provider of LLMFake answers
our $Hi = '{"messages":[{"role":"user","content":"hi"}]}';
our $OkRe = qr/^\{"id":"chatcmpl-fake",.*"content":"hello from ok"/;

# ("[emerg]" is left out: at run time nginx logs none, and at start the
# harness may retry a port still held by the previous block's nginx, which
# logs "bind() ... failed" at that level)
our @Fatal = ('[alert]', '[crit]', 'exited on signal');

# adds @Fatal (and "[error]" unless the block expects error lines) to the
# block's --- no_error_log, kept as a list of lines or an array
sub survives {
    my ($block) = @_;
    my @add = @Fatal;

    push @add, '[error]' unless defined $block->error_log;

    my $have = $block->no_error_log;

    if (ref $have eq 'ARRAY') {
        $block->set_value("no_error_log", [@$have, @add]);
        return;
    }

    $have = defined $have ? $have : '';
    $have .= "\n" if length $have && $have !~ /\n\z/;

    $block->set_value("no_error_log", $have . join("\n", @add) . "\n");
}


# POST /chat (or $uri) with $json as the body
sub post {
    my ($json, $uri) = @_;
    return "POST " . ($uri // '/chat') . "\n$json";
}

# a valid request with the top-level $field set to $value (JSON text)
sub with {
    my ($field, $value) = @_;
    return post(qq({"$field":$value,"messages":[{"role":"user","content":"hi"}]}));
}

# a valid request whose only message has $field set to $value
sub with_message {
    my ($field, $value) = @_;
    my %m = (role => '"user"', content => '"hi"', $field => $value);
    my $m = join ',', map { qq("$_":$m{$_}) } sort keys %m;
    return post(qq({"messages":[{$m}]}));
}

# a valid request body whose only message has $text as its content
sub content {
    my ($text) = @_;
    return qq({"messages":[{"role":"user","content":"$text"}]});
}

# the characters of a JSON string (escapes included)
my $chars = '(?:[^"\\\\]|\\\\.)*';

# the whole body of a 400 invalid_request_error: $msg is a regex for the
# message (what follows it up to the closing quote may be anything when
# $open is true), $param a regex for the param, or undef for null
sub invalid {
    my ($msg, $param, $open) = @_;
    my $p = defined $param ? qq("$param") : 'null';
    my $m = $open ? "$msg$chars" : $msg;
    return qr/^\{"error":\{"message":"$m","type":"invalid_request_error","param":$p,"code":null\}\}$/;
}

# a 400 for a body the JSON parser refused, the parser's message starting
# with $text (literal)
sub unparsable {
    my ($text) = @_;
    return invalid('We could not parse the JSON body of your request: '
                   . quotemeta($text // ''), undef, 1);
}


# a chat.completion whose message content is the JSON text $content, with
# $extra (JSON members) after "choices"; of the shape OpenAI's API sends
# ("refusal" and "logprobs" included), so that it is passed on as it came
sub answer {
    my ($content, $extra) = @_;
    return '{"id":"chatcmpl-h","object":"chat.completion","created":1,'
         . '"model":"m","choices":[{"index":0,"message":{"role":"assistant",'
         . qq("content":$content,"refusal":null},"logprobs":null,)
         . '"finish_reason":"stop"}]'
         . ($extra // '') . '}';
}

# a raw HTTP/1.1 200 reply for --- tcp_reply: $head is the header lines
# after the status line (each ending in CRLF)
sub reply {
    my ($head, $body) = @_;
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n$head"
         . "Connection: close\r\n\r\n$body";
}


# the 502 of a chain whose only provider, "bad", failed with $reason
# after answering $status
sub exhausted {
    my ($status, $reason) = @_;
    return qr/^\{"error":\{"message":"Every provider of the fallback chain failed\.","type":"llm_providers_exhausted","param":null,"code":null,"attempts":\[\{"provider":"bad","status":$status,"reason":"$reason"\}\]\}\}$/;
}

1;
