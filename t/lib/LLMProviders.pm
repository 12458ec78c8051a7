package LLMProviders;

# Strict fake Anthropic (Messages API) and Gemini (generateContent)
# providers for the format suites.
#
# anthropic(HANDLER) and gemini(HANDLER) return --- tcp_reply subs: they
# parse the raw HTTP request nginx sent, check the credential header, the
# path and the JSON body as strictly as the real API does (required
# fields, types, ranges, unknown fields, role alternation, tool call and
# result pairing, extended thinking's rules and thinking blocks,
# structured output), and answer a violation with that API's own 400 body.
# A valid request goes to HANDLER->($body, $http), which returns the
# answer: a hash (sent as 200 JSON) or a raw HTTP response string.  A
# HANDLER that dies gets a 400 in the provider's error shape carrying the
# message, so a test sees what the fake did not like.
#
# statics() is an nginx server block with canned provider answers (for
# fallbacks that need two providers in one test: the tcp server takes
# one connection) and blocks() is the suites' block preprocessor.

use strict;
use warnings;
use B;
use JSON::PP;
use Exporter 'import';
use LLMFake;

our @EXPORT = qw(anthropic gemini http_reply anthropic_message
                 anthropic_error gemini_answer gemini_error expect);

my $json = JSON::PP->new->utf8->canonical->allow_nonref;

our $ANTHROPIC_KEY = 'sk-ant-test-key';
our $GEMINI_KEY = 'AIza-test-key';

my %reason = (200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized',
              403 => 'Forbidden', 404 => 'Not Found',
              429 => 'Too Many Requests', 500 => 'Internal Server Error',
              503 => 'Service Unavailable', 529 => 'Overloaded');

sub http_reply {
    my ($status, $body, @headers) = @_;

    $body = $json->encode($body) if ref $body;

    return "HTTP/1.1 $status " . ($reason{$status} // 'Error') . "\r\n"
         . "Content-Type: application/json\r\n"
         . "Content-Length: " . length($body) . "\r\n"
         . join('', map { "$_\r\n" } @headers)
         . "Connection: close\r\n\r\n$body";
}

sub parse_http {
    my ($raw) = @_;

    $raw //= '';

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($line, @lines) = split /\r\n/, $head // '';
    my ($method, $path) = split / /, $line // '';
    my %h;

    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }

    return { method => $method // '', path => $path // '', headers => \%h,
             body => $body // '', raw => $raw };
}

# JSON types as decoded by JSON::PP, checked before any other use

sub _flags { return B::svref_2object(\$_[0])->FLAGS }

sub is_str {
    return defined $_[0] && !ref $_[0] && (_flags($_[0]) & B::SVp_POK)
           && !(_flags($_[0]) & (B::SVp_IOK | B::SVp_NOK));
}

sub is_int {
    return defined $_[0] && !ref $_[0] && (_flags($_[0]) & B::SVp_IOK)
           && !(_flags($_[0]) & B::SVp_POK);
}

sub is_num {
    return defined $_[0] && !ref $_[0]
           && (_flags($_[0]) & (B::SVp_IOK | B::SVp_NOK))
           && !(_flags($_[0]) & B::SVp_POK);
}

sub is_bool { return JSON::PP::is_bool($_[0]) }
sub is_obj { return ref $_[0] eq 'HASH' }
sub is_arr { return ref $_[0] eq 'ARRAY' }

sub unknown_keys {
    my ($h, @known) = @_;
    my %k = map { $_ => 1 } @known;

    return grep { !$k{$_} } sort keys %$h;
}

# --- Anthropic -------------------------------------------------------------

sub anthropic_error {
    my ($status, $type, $message) = @_;

    return http_reply($status, { type => 'error',
                                 error => { type => $type,
                                            message => $message },
                                 request_id => 'req_011CSHoEeqs5C35K2UUqR7Fy' });
}

# a Messages API answer; content is a string (one text block) or blocks
sub anthropic_message {
    my (%o) = @_;
    my $content = $o{content} // 'Hello!';

    $content = [{ type => 'text', text => $content }] unless ref $content;

    return {
        id => $o{id} // 'msg_01XFDUDYJgAACzvnptvVoYEL',
        type => 'message',
        role => 'assistant',
        model => $o{model} // 'claude-3-5-haiku-20241022',
        content => $content,
        stop_reason => exists $o{stop_reason} ? $o{stop_reason} : 'end_turn',
        stop_sequence => $o{stop_sequence},
        usage => $o{usage} // { input_tokens => 25, output_tokens => 12,
                                cache_creation_input_tokens => 0,
                                cache_read_input_tokens => 0 },
    };
}

my $tool_id = qr/^[a-zA-Z0-9_-]+$/;
my %image_types = map { $_ => 1 } qw(image/jpeg image/png image/gif
                                     image/webp);

sub anthropic_check_text {
    my ($b, $where) = @_;

    return "$where: Extra inputs are not permitted"
        if unknown_keys($b, qw(type text cache_control citations));
    return "$where.text: Input should be a valid string"
        unless is_str($b->{text});
    return "messages: text content blocks must be non-empty"
        if $b->{text} eq '';
    return;
}

sub anthropic_check_source {
    my ($s, $where, $doc) = @_;

    return "$where.source: Field required" unless is_obj($s);

    my $t = $s->{type} // '';

    if ($t eq 'base64') {
        return "$where.source: Extra inputs are not permitted"
            if unknown_keys($s, qw(type media_type data));
        return "$where.source.data: Field required" unless is_str($s->{data});
        my $mt = $s->{media_type} // '';
        return "$where.source.media_type: Input should be 'image/jpeg', "
             . "'image/png', 'image/gif' or 'image/webp'"
            unless $doc ? $mt eq 'application/pdf' : $image_types{$mt};
        return;
    }

    if ($t eq 'url') {
        return "$where.source: Extra inputs are not permitted"
            if unknown_keys($s, qw(type url));
        return "$where.source.url: Input should be a valid URL"
            unless is_str($s->{url}) && $s->{url} =~ m{^https?://};
        return;
    }

    return "$where.source.type: Input tag '$t' found using 'type' does not "
         . "match any of the expected tags: 'base64', 'url'";
}

sub anthropic_check_block {
    my ($b, $role, $where) = @_;

    return "$where: Input should be a valid dictionary" unless is_obj($b);

    my $t = $b->{type} // '';

    return anthropic_check_text($b, $where) if $t eq 'text';

    if ($t eq 'image' || $t eq 'document') {
        return "$where: image and document blocks are only allowed in user "
             . "messages" if $role ne 'user';
        return "$where: Extra inputs are not permitted"
            if unknown_keys($b, qw(type source cache_control title context));
        return anthropic_check_source($b->{source}, $where, $t eq 'document');
    }

    if ($t eq 'tool_use') {
        return "$where: tool_use blocks are only allowed in assistant "
             . "messages" if $role ne 'assistant';
        return "$where: Extra inputs are not permitted"
            if unknown_keys($b, qw(type id name input cache_control));
        return "$where.id: String should match pattern '^[a-zA-Z0-9_-]+\$'"
            unless is_str($b->{id}) && $b->{id} =~ $tool_id;
        return "$where.name: Field required" unless is_str($b->{name});
        return "$where.input: Input should be a valid dictionary"
            unless is_obj($b->{input});
        return;
    }

    if ($t eq 'thinking' || $t eq 'redacted_thinking') {
        return "$where: $t blocks are only allowed in assistant messages"
            if $role ne 'assistant';

        if ($t eq 'redacted_thinking') {
            return "$where: Extra inputs are not permitted"
                if unknown_keys($b, qw(type data));
            return "$where.data: Field required"
                unless is_str($b->{data}) && $b->{data} ne '';
            return;
        }

        return "$where: Extra inputs are not permitted"
            if unknown_keys($b, qw(type thinking signature));
        return "$where.thinking: Field required" unless is_str($b->{thinking});
        return "$where.signature: Field required"
            unless is_str($b->{signature});
        return "$where: Invalid `signature` in `thinking` block"
            unless $b->{signature} =~ m{^[A-Za-z0-9+/=_-]+$};
        return;
    }

    if ($t eq 'tool_result') {
        return "$where: tool_result blocks are only allowed in user messages"
            if $role ne 'user';
        return "$where: Extra inputs are not permitted"
            if unknown_keys($b, qw(type tool_use_id content is_error
                                   cache_control));
        return "$where.tool_use_id: String should match pattern "
             . "'^[a-zA-Z0-9_-]+\$'"
            unless is_str($b->{tool_use_id}) && $b->{tool_use_id} =~ $tool_id;

        my $c = $b->{content};

        return if !defined $c || is_str($c);
        return "$where.content: Input should be a valid string or list"
            unless is_arr($c);

        for my $i (0 .. $#$c) {
            my $cb = $c->[$i];
            my $w = "$where.content.$i";
            return "$w: Input should be a valid dictionary" unless is_obj($cb);
            my $e = ($cb->{type} // '') eq 'text'
                    ? anthropic_check_text($cb, $w)
                    : ($cb->{type} // '') eq 'image'
                    ? anthropic_check_block($cb, 'user', $w)
                    : "$w.type: Input should be 'text' or 'image'";
            return $e if $e;
        }

        return;
    }

    return "$where.type: Input tag '$t' found using 'type' does not match "
         . "any of the expected tags";
}

sub anthropic_validate {
    my ($r, $http) = @_;
    my $beta = $http ? $http->{headers}{'anthropic-beta'} // '' : '';

    return "Request body must be a JSON object" unless is_obj($r);

    for my $k (unknown_keys($r, qw(model messages max_tokens system
                                   temperature top_p top_k stop_sequences
                                   stream metadata tools tool_choice thinking
                                   service_tier container mcp_servers
                                   context_management output_config),
                            $beta =~ /\bstructured-outputs-2025-11-13\b/
                            ? 'output_format' : ()))
    {
        return "$k: Extra inputs are not permitted";
    }

    return "model: Field required" unless defined $r->{model};
    return "model: Input should be a valid string" unless is_str($r->{model});
    return "max_tokens: Field required" unless defined $r->{max_tokens};
    return "max_tokens: Input should be a valid integer"
        unless is_int($r->{max_tokens});
    return "max_tokens: Input should be greater than or equal to 1"
        if $r->{max_tokens} < 1;
    return "messages: Field required" unless defined $r->{messages};
    return "messages: Input should be a valid list"
        unless is_arr($r->{messages});
    return "messages: at least one message is required"
        unless @{ $r->{messages} };

    my $ms = $r->{messages};
    my $prev = '';
    my %pending;

    for my $i (0 .. $#$ms) {
        my $m = $ms->[$i];
        my $w = "messages.$i";

        return "$w: Input should be a valid dictionary" unless is_obj($m);
        return "$w: Extra inputs are not permitted"
            if unknown_keys($m, qw(role content));

        my $role = $m->{role} // '';

        return "$w.role: Input should be 'user' or 'assistant'"
            unless $role eq 'user' || $role eq 'assistant';
        return "messages: first message must use the \"user\" role"
            if $i == 0 && $role ne 'user';
        return "messages: roles must alternate between \"user\" and "
             . "\"assistant\", but found multiple \"$role\" roles in a row"
            if $role eq $prev;

        my $c = $m->{content};

        return "$w.content: Field required" unless defined $c;

        if (is_str($c)) {
            return "messages: text content blocks must be non-empty"
                if $c eq '';
            $c = [{ type => 'text', text => $c }];
        }

        return "$w.content: Input should be a valid list" unless is_arr($c);
        return "$w.content: at least one content block is required"
            unless @$c;

        my (%uses, $seen_other);

        for my $j (0 .. $#$c) {
            my $e = anthropic_check_block($c->[$j], $role, "$w.content.$j");
            return $e if $e;

            my $t = $c->[$j]{type};

            if ($t eq 'tool_use') {
                $uses{ $c->[$j]{id} } = 1;

            } elsif ($t eq 'tool_result') {
                my $id = $c->[$j]{tool_use_id};

                return "$w.content.$j: unexpected `tool_use_id` found in "
                     . "`tool_result` blocks: $id. Each `tool_result` block "
                     . "must have a corresponding `tool_use` block in the "
                     . "previous message." unless delete $pending{$id};
                return "$w.content.$j: `tool_result` blocks must come "
                     . "first in the content of a user message"
                    if $seen_other;

            } else {
                $seen_other = 1;
            }
        }

        if (%pending) {
            return "messages." . ($i - 1) . ": `tool_use` ids were found "
                 . "without `tool_result` blocks immediately after: "
                 . join(', ', sort keys %pending) . ". Each `tool_use` block "
                 . "must have a corresponding `tool_result` block in the "
                 . "next message.";
        }

        %pending = %uses;
        $prev = $role;
    }

    my $s = $r->{system};

    if (defined $s && !is_str($s)) {
        return "system: Input should be a valid string or list"
            unless is_arr($s);

        for my $j (0 .. $#$s) {
            return "system.$j.type: Input should be 'text'"
                unless is_obj($s->[$j]) && ($s->[$j]{type} // '') eq 'text';
            my $e = anthropic_check_text($s->[$j], "system.$j");
            return $e if $e;
        }
    }

    for my $k (qw(temperature top_p)) {
        next unless defined $r->{$k};
        return "$k: Input should be a valid number" unless is_num($r->{$k});
        return "$k: Input should be less than or equal to 1"
            if $r->{$k} > 1;
        return "$k: Input should be greater than or equal to 0"
            if $r->{$k} < 0;
    }

    if (defined $r->{stop_sequences}) {
        return "stop_sequences: Input should be a valid list"
            unless is_arr($r->{stop_sequences});
        for (@{ $r->{stop_sequences} }) {
            return "stop_sequences: Input should be a valid string"
                unless is_str($_);
            return "stop_sequences: each stop sequence must contain "
                 . "non-whitespace" unless /\S/;
        }
    }

    return "stream: Input should be a valid boolean"
        if defined $r->{stream} && !is_bool($r->{stream});

    if (defined $r->{metadata}) {
        return "metadata: Extra inputs are not permitted"
            unless is_obj($r->{metadata})
                   && !unknown_keys($r->{metadata}, 'user_id');
    }

    if (defined $r->{tools}) {
        return "tools: Input should be a valid list" unless is_arr($r->{tools});

        for my $i (0 .. $#{ $r->{tools} }) {
            my $t = $r->{tools}[$i];
            return "tools.$i: Extra inputs are not permitted"
                if !is_obj($t)
                   || unknown_keys($t, qw(name description input_schema
                                          cache_control type));
            return "tools.$i.name: String should match pattern "
                 . "'^[a-zA-Z0-9_-]{1,128}\$'"
                unless is_str($t->{name}) && $t->{name} =~ /^[\w-]{1,128}$/;
            return "tools.$i.input_schema: Field required"
                unless is_obj($t->{input_schema});
            return "tools.$i.input_schema.type: Input should be 'object'"
                unless ($t->{input_schema}{type} // '') eq 'object';
            return "tools.$i.description: Input should be a valid string"
                if defined $t->{description} && !is_str($t->{description});
        }
    }

    if (defined $r->{tool_choice}) {
        my $tc = $r->{tool_choice};

        return "tool_choice: Input should be a valid dictionary"
            unless is_obj($tc);
        return "tool_choice may only be specified while providing tools"
            unless $r->{tools};

        my $t = $tc->{type} // '';

        return "tool_choice.type: Input tag '$t' found using 'type' does not "
             . "match any of the expected tags: 'auto', 'any', 'tool', 'none'"
            unless $t =~ /^(auto|any|tool|none)$/;
        return "tool_choice.tool.name: Field required"
            if $t eq 'tool' && !is_str($tc->{name});
        return "tool_choice: Extra inputs are not permitted"
            if unknown_keys($tc, 'type', 'disable_parallel_tool_use',
                            $t eq 'tool' ? 'name' : ());
    }

    my $e = anthropic_check_thinking($r) // anthropic_check_output($r);

    return $e;
}

# extended thinking: the parameter, what it excludes, and the thinking
# block a tool use turn must start with
sub anthropic_check_thinking {
    my ($r) = @_;
    my $th = $r->{thinking};

    return unless defined $th;
    return "thinking: Input should be a valid dictionary" unless is_obj($th);

    my $t = $th->{type} // '';

    return "thinking.type: Input tag '$t' found using 'type' does not match "
         . "any of the expected tags: 'enabled', 'disabled', 'adaptive'"
        unless $t =~ /^(enabled|disabled|adaptive)$/;

    if ($t eq 'enabled') {
        return "thinking.enabled: Extra inputs are not permitted"
            if unknown_keys($th, qw(type budget_tokens));
        return "thinking.enabled.budget_tokens: Field required"
            unless defined $th->{budget_tokens};
        return "thinking.enabled.budget_tokens: Input should be a valid "
             . "integer" unless is_int($th->{budget_tokens});
        return "thinking.enabled.budget_tokens: Input should be greater "
             . "than or equal to 1024" if $th->{budget_tokens} < 1024;
        return "`max_tokens` must be greater than `thinking.budget_tokens`. "
             . "Please consult our documentation at https://docs.claude.com/"
             . "en/docs/build-with-claude/extended-thinking#max-tokens-and-"
             . "context-window-size"
            if $r->{max_tokens} <= $th->{budget_tokens};
    } else {
        return "thinking.$t: Extra inputs are not permitted"
            if unknown_keys($th, 'type');
    }

    return if $t eq 'disabled';

    return "`temperature` may only be set to 1 when thinking is enabled or "
         . "in adaptive mode. Please consult our documentation at "
         . "https://docs.claude.com/en/docs/build-with-claude/extended-"
         . "thinking#feature-compatibility"
        if defined $r->{temperature} && $r->{temperature} != 1;
    return "`top_p` must be greater than or equal to 0.95 or unset when "
         . "thinking is enabled. Please consult our documentation at "
         . "https://docs.claude.com/en/docs/build-with-claude/extended-"
         . "thinking#feature-compatibility"
        if defined $r->{top_p} && $r->{top_p} < 0.95;
    return "`top_k` must be unset when thinking is enabled. Please consult "
         . "our documentation at https://docs.claude.com/en/docs/build-with-"
         . "claude/extended-thinking#feature-compatibility"
        if defined $r->{top_k};
    return "Thinking may not be enabled when tool_choice forces tool use."
        if is_obj($r->{tool_choice})
           && ($r->{tool_choice}{type} // '') =~ /^(any|tool)$/;

    # the last user turn answers tool calls: the assistant turn before it
    # must start with its thinking

    my $ms = $r->{messages};
    my $last = $#$ms;

    if ($last > 0 && $ms->[$last]{role} eq 'user'
        && is_arr($ms->[$last]{content})
        && grep { $_->{type} eq 'tool_result' } @{ $ms->[$last]{content} })
    {
        my $i = $last - 1;
        my $c = $ms->[$i]{content};
        my $first = is_arr($c) ? $c->[0]{type} : 'text';

        return "messages.$i.content.0.type: Expected `thinking` or "
             . "`redacted_thinking`, but found `$first`. When `thinking` is "
             . "enabled, a final `assistant` message must start with a "
             . "thinking block (preceeding the lastmost set of `tool_use` "
             . "and `tool_result` blocks). We recommend you include thinking "
             . "blocks from previous turns. To avoid this requirement, "
             . "disable `thinking`. Please consult our documentation at "
             . "https://docs.claude.com/en/docs/build-with-claude/extended-"
             . "thinking"
            unless $first =~ /^(thinking|redacted_thinking)$/;
    }

    return;
}

# structured output: output_config.format (and the beta's output_format)
sub anthropic_check_output {
    my ($r) = @_;
    my ($f, $w);

    if (defined(my $oc = $r->{output_config})) {
        return "output_config: Input should be a valid dictionary"
            unless is_obj($oc);
        return "output_config: Extra inputs are not permitted"
            if unknown_keys($oc, qw(format effort));
        return "output_config.effort: Input should be 'low', 'medium', "
             . "'high' or 'max'"
            if defined $oc->{effort}
               && !(is_str($oc->{effort})
                    && $oc->{effort} =~ /^(low|medium|high|max)$/);
        ($f, $w) = ($oc->{format}, 'output_config.format');
    }

    if (defined $r->{output_format}) {
        return "output_format and output_config.format cannot both be set"
            if defined $f;
        ($f, $w) = ($r->{output_format}, 'output_format');
    }

    return unless defined $f;
    return "$w: Input should be a valid dictionary" unless is_obj($f);
    return "$w.type: Input tag '" . ($f->{type} // '') . "' found using "
         . "'type' does not match any of the expected tags: 'json_schema'"
        unless ($f->{type} // '') eq 'json_schema';
    return "$w: Extra inputs are not permitted"
        if unknown_keys($f, qw(type schema));
    return "$w.schema: Input should be a valid dictionary"
        unless is_obj($f->{schema});

    my @todo = ($f->{schema});

    while (my $s = shift @todo) {
        next unless is_obj($s);

        return "$w.schema: For 'object' type, 'additionalProperties' must "
             . "be explicitly set to false"
            if ($s->{type} // '') eq 'object'
               && exists $s->{additionalProperties}
               && !(is_bool($s->{additionalProperties})
                    && !$s->{additionalProperties});

        push @todo, (is_obj($s->{properties}) ? values %{ $s->{properties} }
                                              : ()),
                    $s->{items} // (),
                    (is_arr($s->{anyOf}) ? @{ $s->{anyOf} } : ()),
                    (is_obj($s->{'$defs'}) ? values %{ $s->{'$defs'} } : ());
    }

    return;
}

sub anthropic {
    my ($handler) = @_;

    return sub {
        my $http = parse_http(shift);
        my $h = $http->{headers};

        return anthropic_error(404, 'not_found_error', 'Not Found')
            unless $http->{method} eq 'POST' && $http->{path} eq '/v1/messages';
        return anthropic_error(401, 'authentication_error',
                               'x-api-key header is required')
            unless defined $h->{'x-api-key'};
        return anthropic_error(401, 'authentication_error', 'invalid x-api-key')
            unless $h->{'x-api-key'} eq $ANTHROPIC_KEY;
        return anthropic_error(400, 'invalid_request_error',
                               'anthropic-version: header is required')
            unless ($h->{'anthropic-version'} // '') eq '2023-06-01';
        return anthropic_error(400, 'invalid_request_error',
                               'fake: a client header was forwarded')
            if defined $h->{authorization} || defined $h->{cookie};
        return anthropic_error(400, 'invalid_request_error',
                               'fake: the body is incomplete')
            unless ($h->{'content-length'} // -1) == length $http->{body};
        return anthropic_error(400, 'invalid_request_error',
                               'content-type must be application/json')
            unless ($h->{'content-type'} // '') =~ m{^application/json};

        my $r = eval { $json->decode($http->{body}) };

        return anthropic_error(400, 'invalid_request_error',
                               'There was an error parsing the body of your '
                               . 'request. Please check it is valid JSON.')
            unless defined $r;

        my $e = anthropic_validate($r, $http);

        return anthropic_error(400, 'invalid_request_error', $e) if $e;

        my $reply = eval { $handler->($r, $http) };

        if (!defined $reply) {
            (my $msg = $@ || 'no reply') =~ s/\s+$//;
            return anthropic_error(400, 'invalid_request_error', "fake: $msg");
        }

        return ref $reply ? http_reply(200, $reply) : $reply;
    };
}

# --- Gemini ----------------------------------------------------------------

sub gemini_error {
    my ($code, $status, $message) = @_;

    return http_reply($code, { error => { code => $code, message => $message,
                                          status => $status } });
}

sub gemini_invalid {
    return gemini_error(400, 'INVALID_ARGUMENT', $_[0]);
}

# a generateContent answer; text is a string or a list of parts
sub gemini_answer {
    my (%o) = @_;
    my $parts = $o{parts} // [{ text => $o{text} // 'Hello!' }];

    my $candidate = {
        content => { parts => $parts, role => 'model' },
        finishReason => $o{finish} // 'STOP',
        index => 0,
        safetyRatings => [
            { category => 'HARM_CATEGORY_HARASSMENT',
              probability => 'NEGLIGIBLE' },
        ],
    };

    delete $candidate->{content} if $o{no_content};

    return {
        candidates => $o{candidates} // [$candidate],
        usageMetadata => $o{usage} // { promptTokenCount => 21,
                                        candidatesTokenCount => 9,
                                        totalTokenCount => 30 },
        modelVersion => $o{model} // 'gemini-2.0-flash-001',
        responseId => $o{id} // 'mAitaLmkHPPlz7IPvtfUqQ4',
        ($o{feedback} ? (promptFeedback => $o{feedback}) : ()),
    };
}

my %gemini_data_fields = map { $_ => 1 }
    qw(text inlineData fileData functionCall functionResponse executableCode
       codeExecutionResult);

sub gemini_check_part {
    my ($p, $w) = @_;

    return "Invalid value at '$w' (type.googleapis.com/google.ai."
         . "generativelanguage.v1beta.Part)" unless is_obj($p);

    for my $k (unknown_keys($p, keys %gemini_data_fields, qw(thought
                                thoughtSignature videoMetadata)))
    {
        return "Invalid JSON payload received. Unknown name \"$k\" at "
             . "'$w': Cannot find field.";
    }

    my @data = grep { $gemini_data_fields{$_} } keys %$p;

    return "* GenerateContentRequest.$w.data: required oneof field 'data' "
         . "must have one initialized field" unless @data == 1;
    return "Invalid value at '$w.thought_signature' (TYPE_BYTES), "
         . "Base64 decoding failed"
        if defined $p->{thoughtSignature}
           && !(is_str($p->{thoughtSignature})
                && $p->{thoughtSignature} =~ m{^[A-Za-z0-9+/_=-]+$});

    my $d = $data[0];
    my $v = $p->{$d};

    if ($d eq 'text') {
        return "Invalid value at '$w.text' (TYPE_STRING)" unless is_str($v);

    } elsif ($d eq 'inlineData') {
        return "Invalid JSON payload received. Unknown name at '$w.inline_data'"
            if !is_obj($v) || unknown_keys($v, qw(mimeType data));
        return "* GenerateContentRequest.$w.inline_data.mime_type: "
             . "mime_type is not specified" unless is_str($v->{mimeType});
        return "Invalid value at '$w.inline_data.data' (TYPE_BYTES), "
             . "Base64 decoding failed"
            unless is_str($v->{data}) && $v->{data} =~ m{^[A-Za-z0-9+/=]+$};

    } elsif ($d eq 'fileData') {
        return "Invalid JSON payload received. Unknown name at '$w.file_data'"
            if !is_obj($v) || unknown_keys($v, qw(mimeType fileUri));
        return "* GenerateContentRequest.$w.file_data.file_uri: file_uri is "
             . "not specified" unless is_str($v->{fileUri});

    } elsif ($d eq 'functionCall') {
        return "Invalid JSON payload received. Unknown name at "
             . "'$w.function_call'"
            if !is_obj($v) || unknown_keys($v, qw(name args id));
        return "* GenerateContentRequest.$w.function_call.name: name is not "
             . "specified" unless is_str($v->{name});
        return "Invalid value at '$w.function_call.args' "
             . "(type.googleapis.com/google.protobuf.Struct)"
            if defined $v->{args} && !is_obj($v->{args});

    } elsif ($d eq 'functionResponse') {
        return "Invalid JSON payload received. Unknown name at "
             . "'$w.function_response'"
            if !is_obj($v) || unknown_keys($v, qw(name response id));
        return "* GenerateContentRequest.$w.function_response.name: name is "
             . "not specified" unless is_str($v->{name});
        return "Invalid value at '$w.function_response.response' "
             . "(type.googleapis.com/google.protobuf.Struct)"
            unless is_obj($v->{response});
    }

    return;
}

# structured output: a MIME type the API knows, a schema only with JSON
sub gemini_check_output {
    my ($g) = @_;
    my $mt = $g->{responseMimeType};

    return "* GenerateContentRequest.generation_config.response_mime_type: "
         . "allowed mimetypes are `text/plain`, `application/json`, "
         . "`application/xml`, `application/yaml` and `text/x.enum`."
        if defined $mt
           && !(is_str($mt) && $mt =~ m{^(text/plain|application/json|
                                           application/xml|application/yaml|
                                           text/x\.enum)$}x);
    return "* GenerateContentRequest.generation_config.response_schema: "
         . "response_schema and response_json_schema are mutually exclusive"
        if defined $g->{responseSchema} && defined $g->{responseJsonSchema};

    for my $k (qw(responseSchema responseJsonSchema)) {
        next unless defined $g->{$k};
        (my $n = $k) =~ s/([A-Z])/_\l$1/g;
        return "Invalid value at 'generation_config.$n'" unless is_obj($g->{$k});
        return "* GenerateContentRequest.generation_config.response_mime_type:"
             . " response_mime_type must be application/json or text/x.enum "
             . "when $n is set"
            unless ($mt // '') =~ m{^(application/json|text/x\.enum)$};
    }

    return;
}

# thinkingConfig: a budget or a level, in the model's range
sub gemini_check_thinking {
    my ($g, $model) = @_;
    my $t = $g->{thinkingConfig};

    return unless defined $t;
    return "Invalid value at 'generation_config.thinking_config'"
        unless is_obj($t);

    for my $k (unknown_keys($t, qw(includeThoughts thinkingBudget
                                   thinkingLevel)))
    {
        return "Invalid JSON payload received. Unknown name \"$k\" at "
             . "'generation_config.thinking_config': Cannot find field.";
    }

    return "Invalid value at 'generation_config.thinking_config."
         . "include_thoughts' (TYPE_BOOL)"
        if defined $t->{includeThoughts} && !is_bool($t->{includeThoughts});
    return "Invalid value at 'generation_config.thinking_config."
         . "thinking_level' (type.googleapis.com/google.ai.generativelanguage."
         . "v1beta.ThinkingConfig.ThinkingLevel)"
        if defined $t->{thinkingLevel}
           && !(is_str($t->{thinkingLevel})
                && $t->{thinkingLevel} =~ /^(MINIMAL|LOW|MEDIUM|HIGH)$/i);
    return "thinking_budget and thinking_level are not supported together."
        if defined $t->{thinkingBudget} && defined $t->{thinkingLevel};

    my $b = $t->{thinkingBudget};

    return unless defined $b;
    return "Invalid value at 'generation_config.thinking_config."
         . "thinking_budget' (TYPE_INT32)" unless is_int($b);

    my ($min, $max) = ($model // '') =~ /pro/ ? (128, 32768) : (0, 24576);

    return "Budget 0 is invalid. This model only works in thinking mode."
        if $b == 0 && $min > 0;
    return "The thinking budget $b is invalid. Please choose a value between "
         . "$min and $max."
        if $b != -1 && ($b < $min || $b > $max);

    return;
}

sub gemini_validate {
    my ($r, $model) = @_;

    return "Invalid JSON payload received. Expected an object."
        unless is_obj($r);

    for my $k (unknown_keys($r, qw(contents systemInstruction tools toolConfig
                                   generationConfig safetySettings
                                   cachedContent)))
    {
        return "Invalid JSON payload received. Unknown name \"$k\": Cannot "
             . "find field.";
    }

    my $cs = $r->{contents};

    return "* GenerateContentRequest.contents: contents is not specified"
        unless is_arr($cs) && @$cs;

    my ($prev, @calls) = ('');

    for my $i (0 .. $#$cs) {
        my $c = $cs->[$i];
        my $w = "contents[$i]";

        return "Invalid JSON payload received. Unknown name at '$w'"
            if !is_obj($c) || unknown_keys($c, qw(role parts));

        my $role = $c->{role} // 'user';

        return "Please use a valid role: user, model."
            unless is_str($role) && $role =~ /^(user|model)$/;
        return "* GenerateContentRequest.$w.parts: contents.parts must not be "
             . "empty." unless is_arr($c->{parts}) && @{ $c->{parts} };
        return "Please ensure that multiturn requests alternate between user "
             . "and model." if $role eq $prev;

        my (@fc, @fr);

        for my $j (0 .. $#{ $c->{parts} }) {
            my $p = $c->{parts}[$j];
            my $e = gemini_check_part($p, "$w.parts[$j]");
            return $e if $e;
            push @fc, $p->{functionCall}{name} if $p->{functionCall};
            push @fr, $p->{functionResponse}{name} if $p->{functionResponse};
        }

        return "Please ensure that function call turns come from the model."
            if @fc && $role ne 'model';
        return "Please ensure that function response turn comes immediately "
             . "after a function call turn." if @fr && !@calls;

        if (@calls) {
            return "Please ensure that the number of function response parts "
                 . "is equal to the number of function call parts of the "
                 . "function call turn."
                if @fr != @calls;
            return "Please ensure that function response names match the "
                 . "function call names of the function call turn."
                if join(',', sort @fr) ne join(',', sort @calls);
        }

        @calls = @fc;
        $prev = $role;
    }

    if (defined(my $s = $r->{systemInstruction})) {
        return "Invalid value at 'system_instruction'"
            if !is_obj($s) || unknown_keys($s, qw(role parts))
               || !is_arr($s->{parts});
        for my $j (0 .. $#{ $s->{parts} }) {
            my $e = gemini_check_part($s->{parts}[$j],
                                      "system_instruction.parts[$j]");
            return $e if $e;
        }
    }

    if (defined(my $g = $r->{generationConfig})) {
        return "Invalid value at 'generation_config'" unless is_obj($g);

        for my $k (unknown_keys($g, qw(stopSequences responseMimeType
                                       responseSchema responseJsonSchema
                                       responseModalities candidateCount
                                       maxOutputTokens temperature topP topK
                                       seed presencePenalty frequencyPenalty
                                       responseLogprobs logprobs
                                       thinkingConfig mediaResolution)))
        {
            return "Invalid JSON payload received. Unknown name \"$k\" at "
                 . "'generation_config': Cannot find field.";
        }

        for my $k (qw(candidateCount maxOutputTokens topK seed)) {
            return "Invalid value at 'generation_config.$k' (TYPE_INT32)"
                if defined $g->{$k} && !is_int($g->{$k});
        }

        for my $k (qw(temperature topP presencePenalty frequencyPenalty)) {
            return "Invalid value at 'generation_config.$k' (TYPE_FLOAT)"
                if defined $g->{$k} && !is_num($g->{$k});
        }

        return "* GenerateContentRequest.generation_config.temperature: "
             . "temperature must be in the range [0.0, 2.0]"
            if defined $g->{temperature}
               && ($g->{temperature} < 0 || $g->{temperature} > 2);

        my $e = gemini_check_output($g) // gemini_check_thinking($g, $model);
        return $e if $e;

        if (defined $g->{stopSequences}) {
            return "Invalid value at 'generation_config.stop_sequences'"
                unless is_arr($g->{stopSequences})
                       && !grep { !is_str($_) } @{ $g->{stopSequences} };
            return "* GenerateContentRequest.generation_config.stop_sequences:"
                 . " at most 5 stop sequences are allowed"
                if @{ $g->{stopSequences} } > 5;
        }
    }

    if (defined(my $ts = $r->{tools})) {
        return "Invalid value at 'tools'" unless is_arr($ts);

        for my $i (0 .. $#$ts) {
            my $t = $ts->[$i];

            return "Invalid JSON payload received. Unknown name at "
                 . "'tools[$i]'"
                if !is_obj($t) || unknown_keys($t, qw(functionDeclarations
                                                      googleSearch
                                                      codeExecution
                                                      urlContext));

            for my $j (0 .. $#{ $t->{functionDeclarations} // [] }) {
                my $d = $t->{functionDeclarations}[$j];
                my $w = "tools[$i].function_declarations[$j]";

                return "Invalid JSON payload received. Unknown name at '$w'"
                    if !is_obj($d)
                       || unknown_keys($d, qw(name description parameters
                                              parametersJsonSchema response
                                              responseJsonSchema behavior));
                return "* GenerateContentRequest.$w.name: Invalid function "
                     . "name."
                    unless is_str($d->{name})
                           && $d->{name} =~ /^[A-Za-z_][\w.:-]{0,63}$/;
                return "* GenerateContentRequest.$w: parameters and "
                     . "parameters_json_schema are mutually exclusive"
                    if $d->{parameters} && $d->{parametersJsonSchema};
            }
        }
    }

    if (defined(my $tc = $r->{toolConfig})) {
        my $f = is_obj($tc) ? $tc->{functionCallingConfig} : undef;

        return "Invalid value at 'tool_config'"
            if !is_obj($tc) || unknown_keys($tc, 'functionCallingConfig')
               || !is_obj($f)
               || unknown_keys($f, qw(mode allowedFunctionNames));
        return "Invalid value at 'tool_config.function_calling_config.mode'"
            unless ($f->{mode} // '') =~ /^(AUTO|ANY|NONE|VALIDATED)$/;
        return "* GenerateContentRequest.tool_config.function_calling_config."
             . "allowed_function_names: only allowed with mode ANY"
            if $f->{allowedFunctionNames} && $f->{mode} ne 'ANY';
    }

    return;
}

sub gemini {
    my ($handler) = @_;

    return sub {
        my $http = parse_http(shift);
        my $h = $http->{headers};

        my ($model, $method) = $http->{path}
            =~ m{^/v1beta/models/([^/:?]+):(generateContent|streamGenerateContent\?alt=sse)$};

        return gemini_error(404, 'NOT_FOUND',
                            "The requested URL $http->{path} was not found")
            unless $http->{method} eq 'POST' && defined $model;
        return gemini_error(403, 'PERMISSION_DENIED',
                            "Method doesn't allow unregistered callers "
                            . "(callers without established identity). "
                            . "Please use API Key or other form of API "
                            . "consumer identity to call this API.")
            unless defined $h->{'x-goog-api-key'};
        return gemini_invalid('API key not valid. Please pass a valid API key.')
            unless $h->{'x-goog-api-key'} eq $GEMINI_KEY;
        return gemini_invalid('fake: a client header was forwarded')
            if defined $h->{authorization} || defined $h->{cookie}
               || defined $h->{'anthropic-version'};
        return gemini_invalid('fake: the body is incomplete')
            unless ($h->{'content-length'} // -1) == length $http->{body};

        my $r = eval { $json->decode($http->{body}) };

        return gemini_invalid('Invalid JSON payload received.')
            unless defined $r;

        $model =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;

        my $e = gemini_validate($r, $model);

        return gemini_invalid($e) if $e;

        $http->{model} = $model;
        $http->{stream} = $method ne 'generateContent';

        my $reply = eval { $handler->($r, $http) };

        if (!defined $reply) {
            (my $msg = $@ || 'no reply') =~ s/\s+$//;
            return gemini_invalid("fake: $msg");
        }

        return ref $reply ? http_reply(200, $reply) : $reply;
    };
}

# --- checks ------------------------------------------------------------------

# dies unless $got has the JSON value of $want (a structure or JSON text)
sub expect {
    my ($what, $got, $want) = @_;
    my $g = $json->encode($got);
    my $w = $json->encode(ref $want ? $want : $json->decode($want));

    die "$what: got $g\n" unless $g eq $w;

    return 1;
}

# a --- response_body_filters sub: the JSON answer with sorted keys and an
# integer "created" as 0, so that --- response_body can be exact
sub canon {
    my ($body) = @_;
    my $v = eval { $json->decode($body) };

    return "NOT JSON: $body" unless defined $v;

    $v->{created} = is_int($v->{created}) ? 0 : "NOT AN INTEGER"
        if is_obj($v) && exists $v->{created};

    return $json->encode($v) . "\n";
}

# the same for each "data:" line of an SSE stream
sub canon_sse {
    my ($body) = @_;

    $body =~ s{^data: (\{.*\})$}{"data: " . substr(canon($1), 0, -1)}gme;

    return $body;
}

# --- nginx configuration -----------------------------------------------------

# canned answers on $TEST_NGINX_RAND_PORT_3, reached as /_llm/s/NAME
sub statics {
    my $a = $json->encode(anthropic_message(content => 'hello from claude'));
    my $g = $json->encode(gemini_answer(text => 'hello from gemini'));
    my $blocked = $json->encode(gemini_answer(no_content => 1,
                                              finish => 'SAFETY'));
    my $empty = $json->encode(anthropic_message(content => []));

    return <<"END";
    server {
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_3;
        default_type application/json;

        location = /anthropic/ok { return 200 '$a'; }
        location = /anthropic/empty { return 200 '$empty'; }
        location = /anthropic/529 {
            return 529 '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}';
        }
        location = /anthropic/429 {
            return 429 '{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}';
        }
        location = /gemini/ok { return 200 '$g'; }
        location = /gemini/blocked { return 200 '$blocked'; }
        location = /gemini/503 {
            return 503 '{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}';
        }
    }
END
}

# The suites' block preprocessor: the fake providers of LLMFake and the
# statics, providers "claude" (anthropic) and "gem" (gemini) on the tcp
# fake ($TEST_NGINX_RAND_PORT_2), "openai" at /_llm/ok, the block's own
# http_config and config after them, a default request.
sub blocks {
    my $block = shift;

    my $http = LLMFake::fake_providers() . statics() . <<"END";
    llm_provider claude uri=/_llm/claude format=anthropic
                 model=claude-3-5-haiku-latest api_key=$ANTHROPIC_KEY;
    llm_provider gem uri=/_llm/gem format=gemini model=gemini-2.0-flash
                 api_key=$GEMINI_KEY;
    llm_provider openai uri=/_llm/ok;
    llm_provider openai503 uri=/_llm/503;
END

    my $config = LLMFake::llm_locations() . <<'END';
        location /_llm/s/ {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_3/;
        }

        location = /_llm/claude {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/v1/messages;
        }

        location = /_llm/gem {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/v1beta/models/$llm_provider_model:generateContent;
        }
END

    $block->set_value("http_config", $http . ($block->http_config // ''));
    $block->set_value("config", $config . ($block->config // ''));

    if (defined $block->tcp_reply && !defined $block->tcp_listen) {
        $block->set_value("tcp_listen", '$TEST_NGINX_RAND_PORT_2');
    }

    if (defined $block->tcp_reply && !defined $block->tcp_query_auto_timeout) {
        $block->set_value("tcp_query_auto_timeout", "0.25");
    }

    if (!defined $block->more_headers) {
        $block->set_value("more_headers", "Content-Type: application/json\n"
                                          . "Authorization: Bearer sk-client");
    }

    if (!defined $block->request) {
        $block->set_value("request", "POST /chat\n"
            . '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}');
    }
}

1;
