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
my $thinking = { %$valid, max_tokens => 4096,
                 thinking => { type => 'enabled', budget_tokens => 2048 } };
my $use = { type => 'tool_use', id => 't1', name => 'f', input => {} };
my $think_use = { role => 'assistant', content => [{ type => 'thinking',
                  thinking => 'I should call f.', signature => 'EqQBCgIYAh' },
                  $use] };
my $result = { role => 'user', content => [{ type => 'tool_result',
               tool_use_id => 't1', content => '42' }] };
my $format = { format => { type => 'json_schema', schema => {
               type => 'object', properties => { a => { type => 'string' } },
               required => ['a'], additionalProperties => JSON::PP::false } } };

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

    # extended thinking
    [ 'thinking', $thinking, 200 ],
    [ 'thinking disabled', { %$valid, thinking => { type => 'disabled' } },
      200 ],
    [ 'thinking with temperature 1 and top_p 0.95',
      { %$thinking, temperature => 1, top_p => 0.95 }, 200 ],
    [ 'a tool use turn that starts with its thinking',
      { %$thinking, messages => [$user, $think_use, $result] }, 200 ],
    [ 'a redacted_thinking block first', { %$thinking, messages => [$user,
          { role => 'assistant', content => [{ type => 'redacted_thinking',
            data => 'EmwKAhgBEgy3va3pzix' }, $use] }, $result] }, 200 ],
    [ 'thinking blocks without thinking', { %$valid,
          messages => [$user, $think_use, $result] }, 200 ],
    [ 'budget below 1024', { %$thinking, thinking => { type => 'enabled',
          budget_tokens => 1000 } }, qr/greater than or equal to 1024/ ],
    [ 'budget not below max_tokens', { %$thinking, max_tokens => 2048 },
      qr/`max_tokens` must be greater than `thinking.budget_tokens`/ ],
    [ 'thinking without a budget', { %$thinking,
          thinking => { type => 'enabled' } }, qr/budget_tokens: Field/ ],
    [ 'thinking with temperature', { %$thinking, temperature => 0.5 },
      qr/`temperature` may only be set to 1/ ],
    [ 'thinking with top_p 0.9', { %$thinking, top_p => 0.9 },
      qr/`top_p` must be greater than or equal to 0.95/ ],
    [ 'thinking with top_k', { %$thinking, top_k => 5 },
      qr/`top_k` must be unset/ ],
    [ 'thinking with a forced tool', { %$thinking, tools => [{ name => 'f',
          input_schema => { type => 'object' } }],
          tool_choice => { type => 'any' } }, qr/forces tool use/ ],
    [ 'a tool use turn without its thinking', { %$thinking,
          messages => [$user, { role => 'assistant', content => [$use] },
                       $result] },
      qr/^messages\.1\.content\.0\.type: Expected `thinking`/ ],
    [ 'a thinking block without a signature', { %$valid,
          messages => [$user, { role => 'assistant', content => [
            { type => 'thinking', thinking => 'x' }] }, $user] },
      qr/signature: Field required/ ],
    [ 'a thinking block in a user turn', { %$valid,
          messages => [{ role => 'user', content => [{ type => 'thinking',
            thinking => 'x', signature => 'c2ln' }] }] },
      qr/only allowed in assistant messages/ ],

    # structured output
    [ 'output_config.format', { %$valid, output_config => $format }, 200 ],
    [ 'output_format without the beta header',
      { %$valid, output_format => $format->{format} },
      qr/^output_format: Extra inputs/ ],
    [ 'a format without a schema', { %$valid, output_config => {
          format => { type => 'json_schema' } } },
      qr/format\.schema: Input should be a valid dictionary/ ],
    [ 'a json_object format', { %$valid, output_config => {
          format => { type => 'json_object' } } },
      qr/expected tags: 'json_schema'/ ],
    [ 'a schema that allows more properties', { %$valid, output_config => {
          format => { type => 'json_schema', schema => { type => 'object',
            properties => { a => { type => 'object',
            additionalProperties => JSON::PP::true } } } } } },
      qr/'additionalProperties' must be explicitly set to false/ ],
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

($status) = answer($anthropic->(anthropic_post(
                        { %$valid, output_format => $format->{format} },
                        'anthropic-beta' => 'structured-outputs-2025-11-13')));
is($status, 200, 'anthropic: output_format with the beta header');

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

    # thinking and structured output
    [ 'thinkingConfig', { %$g_valid, generationConfig => { thinkingConfig => {
          thinkingBudget => 1024, includeThoughts => JSON::PP::true } } },
      200 ],
    [ 'thinking off', { %$g_valid, generationConfig => { thinkingConfig => {
          thinkingBudget => 0 } } }, 200 ],
    [ 'a thought part in the history', { contents => [$g_user,
          { role => 'model', parts => [{ text => 'hmm',
            thought => JSON::PP::true }, { text => 'ok' }] }, $g_user] },
      200 ],
    [ 'a JSON schema', { %$g_valid, generationConfig => {
          responseMimeType => 'application/json',
          responseJsonSchema => { type => 'object' } } }, 200 ],
    [ 'an OpenAPI schema', { %$g_valid, generationConfig => {
          responseMimeType => 'application/json',
          responseSchema => { type => 'OBJECT' } } }, 200 ],
    [ 'a budget out of range', { %$g_valid, generationConfig => {
          thinkingConfig => { thinkingBudget => 30000 } } },
      qr/thinking budget 30000 is invalid/ ],
    [ 'a budget and a level', { %$g_valid, generationConfig => {
          thinkingConfig => { thinkingBudget => 1024,
                              thinkingLevel => 'LOW' } } },
      qr/not supported together/ ],
    [ 'snake_case thinking config', { %$g_valid, generationConfig => {
          thinkingConfig => { thinking_budget => 1024 } } },
      qr/Unknown name "thinking_budget"/ ],
    [ 'includeThoughts as a string', { %$g_valid, generationConfig => {
          thinkingConfig => { includeThoughts => 'yes' } } }, qr/TYPE_BOOL/ ],
    [ 'a schema without the JSON MIME type', { %$g_valid, generationConfig => {
          responseJsonSchema => { type => 'object' } } },
      qr/response_mime_type must be application\/json/ ],
    [ 'both schemas', { %$g_valid, generationConfig => {
          responseMimeType => 'application/json',
          responseSchema => { type => 'OBJECT' },
          responseJsonSchema => { type => 'object' } } },
      qr/mutually exclusive/ ],
    [ 'an unknown MIME type', { %$g_valid, generationConfig => {
          responseMimeType => 'application/json5' } }, qr/allowed mimetypes/ ],
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

($status) = answer($gemini->(gemini_post($g_valid,
                path => '/v1beta/models/gemini-2.5-flash:streamGenerateContent'
                        . '?alt=sse')));
is($status, 200, 'gemini: a stream');

($status, $b) = answer($gemini->(gemini_post({ %$g_valid, generationConfig => {
                    thinkingConfig => { thinkingBudget => 0 } } },
                path => '/v1beta/models/gemini-2.5-pro:generateContent')));
is($status, 400, 'gemini: thinking off for a pro model');
like($b->{error}{message}, qr/only works in thinking mode/,
     'gemini: thinking off for a pro model: message');

done_testing();
