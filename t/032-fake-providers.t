# The strict fake providers of t/lib/LLMProviders.pm reject what the real
# APIs reject, so that the format suites prove something: each invalid
# request here must get the API's 400 with the expected message.

use strict;
use warnings;
use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::More;
use JSON::PP;
use LLMProviders;

my $json = JSON::PP->new->utf8->canonical;

sub anthropic_post {
    my ($body, %h) = @_;
    my %headers = ('x-api-key' => $LLMProviders::ANTHROPIC_KEY,
                   'anthropic-version' => '2023-06-01',
                   'content-type' => 'application/json', %h);
    $body = $json->encode($body) if ref $body;

    return "POST /v1/messages HTTP/1.0\r\n"
         . join('', map { "$_: $headers{$_}\r\n" } grep { defined $headers{$_} }
                    sort keys %headers)
         . "Content-Length: " . length($body) . "\r\n\r\n$body";
}

sub gemini_post {
    my ($body, %o) = @_;
    my $path = $o{path} // '/v1beta/models/gemini-2.0-flash:generateContent';
    my %headers = ('x-goog-api-key' => $LLMProviders::GEMINI_KEY,
                   'content-type' => 'application/json', %{ $o{h} // {} });
    $body = $json->encode($body) if ref $body;

    return "POST $path HTTP/1.0\r\n"
         . join('', map { "$_: $headers{$_}\r\n" } grep { defined $headers{$_} }
                    sort keys %headers)
         . "Content-Length: " . length($body) . "\r\n\r\n$body";
}

my $ok = sub { { ok => 1 } };
my $anthropic = LLMProviders::anthropic($ok);
my $gemini = LLMProviders::gemini($ok);

sub answer {
    my ($reply) = @_;
    my ($status) = $reply =~ m{^HTTP/1\.1 (\d+)};
    my ($body) = $reply =~ m{\r\n\r\n(.*)$}s;
    return ($status, $json->decode($body));
}

my $user = { role => 'user', content => 'hi' };
my $valid = { model => 'm', max_tokens => 10, messages => [$user] };

my @anthropic = (
    [ 'valid', $valid, 200 ],
    [ 'no model', { %$valid, model => undef }, qr/^model: Field required/ ],
    [ 'no max_tokens', { model => 'm', messages => [$user] },
      qr/^max_tokens: Field required/ ],
    [ 'max_tokens as a string', { %$valid, max_tokens => '10' },
      qr/valid integer/ ],
    [ 'extra field', { %$valid, n => 1 }, qr/^n: Extra inputs/ ],
    [ 'system role in messages',
      { %$valid, messages => [{ role => 'system', content => 'x' }, $user] },
      qr/role: Input should be 'user' or 'assistant'/ ],
    [ 'two user turns', { %$valid, messages => [$user, $user] },
      qr/roles must alternate/ ],
    [ 'assistant first',
      { %$valid, messages => [{ role => 'assistant', content => 'x' }, $user] },
      qr/first message must use the "user" role/ ],
    [ 'empty text', { %$valid, messages => [{ role => 'user', content => '' }] },
      qr/text content blocks must be non-empty/ ],
    [ 'temperature above 1', { %$valid, temperature => 1.5 },
      qr/less than or equal to 1/ ],
    [ 'blank stop sequence', { %$valid, stop_sequences => ["\n"] },
      qr/non-whitespace/ ],
    [ 'OpenAI image part',
      { %$valid, messages => [{ role => 'user', content => [
          { type => 'image_url', image_url => { url => 'x' } }] }] },
      qr/Input tag 'image_url'/ ],
    [ 'bmp image',
      { %$valid, messages => [{ role => 'user', content => [
          { type => 'image', source => { type => 'base64',
            media_type => 'image/bmp', data => 'Qk0=' } }] }] },
      qr/media_type/ ],
    [ 'tool_use without tool_result',
      { %$valid, messages => [$user,
          { role => 'assistant', content => [{ type => 'tool_use', id => 't1',
            name => 'f', input => {} }] }, $user] },
      qr/`tool_use` ids were found without `tool_result`/ ],
    [ 'tool_result for an unknown call',
      { %$valid, messages => [{ role => 'user', content => [
          { type => 'tool_result', tool_use_id => 'zz' }] }] },
      qr/unexpected `tool_use_id`/ ],
    [ 'tool_result after text',
      { %$valid, messages => [$user,
          { role => 'assistant', content => [{ type => 'tool_use', id => 't1',
            name => 'f', input => {} }] },
          { role => 'user', content => [{ type => 'text', text => 'x' },
            { type => 'tool_result', tool_use_id => 't1' }] }] },
      qr/must come first/ ],
    [ 'tool id with a dot',
      { %$valid, messages => [$user,
          { role => 'assistant', content => [{ type => 'tool_use',
            id => 'a.b', name => 'f', input => {} }] }] },
      qr/should match pattern/ ],
    [ 'OpenAI tool shape', { %$valid, tools => [{ type => 'function',
          function => { name => 'f' } }] }, qr/Extra inputs|name/ ],
    [ 'tool_choice without tools', { %$valid, tool_choice => { type => 'auto' } },
      qr/only be specified while providing tools/ ],
    [ 'OpenAI tool_choice', { %$valid, tools => [{ name => 'f',
          input_schema => { type => 'object' } }], tool_choice => 'required' },
      qr/valid dictionary/ ],
);

for my $t (@anthropic) {
    my ($name, $body, $want) = @$t;
    my ($status, $b) = answer($anthropic->(anthropic_post($body)));

    if (!ref $want) {
        is($status, $want, "anthropic: $name");
        next;
    }

    is($status, 400, "anthropic: $name: 400");
    is($b->{type}, 'error', "anthropic: $name: error shape");
    like($b->{error}{message} // '', $want, "anthropic: $name: message");
}

my ($status, $b) = answer($anthropic->(anthropic_post($valid,
                                           'anthropic-version' => undef)));
is($status, 400, 'anthropic: no anthropic-version');
like($b->{error}{message}, qr/anthropic-version/, 'anthropic: version message');

($status, $b) = answer($anthropic->(anthropic_post($valid, 'x-api-key' => 'x')));
is($status, 401, 'anthropic: wrong key');
is($b->{error}{type}, 'authentication_error', 'anthropic: wrong key type');

($status) = answer($anthropic->(anthropic_post($valid,
                                    authorization => 'Bearer sk-client')));
is($status, 400, 'anthropic: a forwarded client credential');

my $g_user = { role => 'user', parts => [{ text => 'hi' }] };
my $g_valid = { contents => [$g_user] };
my $call = { role => 'model', parts => [{ functionCall => { name => 'f' } }] };

my @gemini = (
    [ 'valid', $g_valid, 200 ],
    [ 'no contents', {}, qr/contents is not specified/ ],
    [ 'unknown field', { %$g_valid, model => 'x' }, qr/Unknown name "model"/ ],
    [ 'snake_case config', { %$g_valid,
          generationConfig => { max_output_tokens => 5 } },
      qr/Unknown name "max_output_tokens"/ ],
    [ 'assistant role', { contents => [{ role => 'assistant',
          parts => [{ text => 'x' }] }] }, qr/valid role/ ],
    [ 'empty parts', { contents => [{ role => 'user', parts => [] }] },
      qr/must not be empty/ ],
    [ 'two user turns', { contents => [$g_user, $g_user] },
      qr/alternate between user and model/ ],
    [ 'two data fields', { contents => [{ role => 'user',
          parts => [{ text => 'x', inlineData => { mimeType => 'a/b',
          data => 'AA==' } }] }] }, qr/oneof field 'data'/ ],
    [ 'unknown part field', { contents => [{ role => 'user',
          parts => [{ image_url => 'x' }] }] }, qr/Unknown name "image_url"/ ],
    [ 'missing function response', { contents => [$g_user, $call,
          $g_user] }, qr/number of function response parts/ ],
    [ 'function response without call', { contents => [{ role => 'user',
          parts => [{ functionResponse => { name => 'f',
          response => {} } }] }] }, qr/immediately after a function call/ ],
    [ 'function response not an object', { contents => [$g_user, $call,
          { role => 'user', parts => [{ functionResponse => { name => 'f',
          response => 'x' } }] }] }, qr/google.protobuf.Struct/ ],
    [ 'temperature above 2', { %$g_valid,
          generationConfig => { temperature => 2.5 } }, qr/range/ ],
    [ 'six stop sequences', { %$g_valid,
          generationConfig => { stopSequences => [1 .. 6] } },
      qr/stop_sequences/ ],
    [ 'allowed names without ANY', { %$g_valid, tools => [{
          functionDeclarations => [{ name => 'f' }] }],
          toolConfig => { functionCallingConfig => { mode => 'AUTO',
          allowedFunctionNames => ['f'] } } }, qr/only allowed with mode ANY/ ],
);

for my $t (@gemini) {
    my ($name, $body, $want) = @$t;
    my ($status, $b) = answer($gemini->(gemini_post($body)));

    if (!ref $want) {
        is($status, $want, "gemini: $name");
        next;
    }

    is($status, 400, "gemini: $name: 400");
    is($b->{error}{status}, 'INVALID_ARGUMENT', "gemini: $name: status");
    like($b->{error}{message} // '', $want, "gemini: $name: message");
}

($status, $b) = answer($gemini->(gemini_post($g_valid,
                                     h => { 'x-goog-api-key' => undef })));
is($status, 403, 'gemini: no key');
is($b->{error}{status}, 'PERMISSION_DENIED', 'gemini: no key status');

($status) = answer($gemini->(gemini_post($g_valid,
                                 path => '/v1beta/models/:generateContent')));
is($status, 404, 'gemini: no model in the URL');

done_testing();
