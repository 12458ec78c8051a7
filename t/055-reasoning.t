# Reasoning and structured output through the Chat Completions door to the
# anthropic and gemini formats (README "Provider formats"):
# reasoning_effort as Anthropic's extended thinking and Gemini's
# thinkingConfig, response_format as output_config.format and
# responseJsonSchema, thinking and thoughts back as reasoning_content and
# thinking_blocks, in answers, in streams and from the cache (real
# Redis).  The providers are the strict fakes of t/lib/LLMProviders.pm,
# which reject what the real APIs reject (thinking's rules, a tool use
# turn without its thinking block), and LLMStream's scripted server for
# the cache blocks.

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket;
use JSON::PP;
use LLMProviders;
use LLMRedis;
use LLMStream;
use LLMSchema;

if (!$LLMRedis::Available) {
    plan(skip_all => 'redis-server is not installed (Debian: redis-server)');
}

plan('no_plan');

my $json = JSON::PP->new->utf8->canonical;

# an SSE answer of a strict fake
sub sse_reply {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
         . "Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
         . join('', @_);
}

# the Anthropic events of thinking, a redacted block and text
sub a_thinking_events {
    return (
        sse_event('{"type":"message_start","message":{"id":"msg_t1","type":'
            . '"message","role":"assistant","model":"claude-sonnet-4-5-'
            . '20250929","content":[],"stop_reason":null,"usage":'
            . '{"input_tokens":30,"output_tokens":1}}}', 'message_start'),
        sse_event('{"type":"content_block_start","index":0,"content_block":'
            . '{"type":"thinking","thinking":"","signature":""}}',
            'content_block_start'),
        sse_event('{"type":"content_block_delta","index":0,"delta":{"type":'
            . '"thinking_delta","thinking":"Six times"}}',
            'content_block_delta'),
        sse_event('{"type":"ping"}', 'ping'),
        sse_event('{"type":"content_block_delta","index":0,"delta":{"type":'
            . '"thinking_delta","thinking":" seven is 42."}}',
            'content_block_delta'),
        sse_event('{"type":"content_block_delta","index":0,"delta":{"type":'
            . '"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA"}}',
            'content_block_delta'),
        sse_event('{"type":"content_block_stop","index":0}',
            'content_block_stop'),
        sse_event('{"type":"content_block_start","index":1,"content_block":'
            . '{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"}}',
            'content_block_start'),
        sse_event('{"type":"content_block_stop","index":1}',
            'content_block_stop'),
        sse_event('{"type":"content_block_start","index":2,"content_block":'
            . '{"type":"text","text":""}}', 'content_block_start'),
        sse_event('{"type":"content_block_delta","index":2,"delta":{"type":'
            . '"text_delta","text":"42."}}', 'content_block_delta'),
        sse_event('{"type":"content_block_stop","index":2}',
            'content_block_stop'),
        sse_event('{"type":"message_delta","delta":{"stop_reason":"end_turn",'
            . '"stop_sequence":null},"usage":{"output_tokens":90}}',
            'message_delta'),
        sse_event('{"type":"message_stop"}', 'message_stop'),
    );
}

# Gemini events: two thoughts, then the answer, thoughts counted
sub g_thought_events {
    return (
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":"
        . "\"Six times\",\"thought\":true}],\"role\":\"model\"},\"index\":0}],"
        . "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"g1\"}\r\n\r\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":"
        . "\" seven.\",\"thought\":true}],\"role\":\"model\"},\"index\":0}],"
        . "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"g1\"}\r\n\r\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"42.\"}],"
        . "\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],"
        . "\"usageMetadata\":{\"promptTokenCount\":10,"
        . "\"candidatesTokenCount\":2,\"thoughtsTokenCount\":40,"
        . "\"totalTokenCount\":52},\"modelVersion\":\"gemini-2.5-flash\","
        . "\"responseId\":\"g1\"}\r\n\r\n",
    );
}

stream_server(
    athink => [sse_head(), a_thinking_events()],
    athinkerr => [sse_head(), (a_thinking_events())[0 .. 2], 0.2,
                  sse_event('{"type":"error","error":{"type":'
                            . '"overloaded_error","message":"Overloaded"}}',
                            'error')],
    gthink_streamGenerateContent => [sse_head(), g_thought_events()],
);

# an SSE body as one line per event: a choice's delta and finish_reason,
# or the usage, or [DONE]
sub main::deltas {
    my ($body) = @_;
    my @out;

    for my $data ($body =~ /^data: (.*)$/mg) {
        if ($data eq '[DONE]') {
            push @out, $data;
            next;
        }

        my $c = eval { $json->decode($data) };

        if (!defined $c) {
            push @out, "NOT JSON: $data";
            next;
        }

        push @out, $json->encode($c->{error}
                                 ? { error => $c->{error}{message} }
                                 : @{ $c->{choices} // [] }
                                 ? { delta => $c->{choices}[0]{delta},
                                     finish => $c->{choices}[0]{finish_reason} }
                                 : { usage => $c->{usage} });
    }

    return join("\n", @out) . "\n";
}

# LLMProviders::canon, and the ids made for a stream as "chatcmpl-ID"
sub main::canon {
    (my $body = LLMProviders::canon($_[0])) =~ s/"chatcmpl-[0-9a-f]+"/"chatcmpl-ID"/g;
    return $body;
}

# an SSE body as main::deltas has it, a JSON one as main::canon
sub main::view {
    return $_[0] =~ /\Adata: / ? main::deltas($_[0]) : main::canon($_[0]);
}

sub main::chat {
    my ($stream, $provider) = @_;
    return "POST /chat\n" . '{"model":"m","reasoning_effort":"low",'
        . ($stream ? '"stream":true,"stream_options":{"include_usage":true},'
                   : '')
        . '"messages":[{"role":"user","content":"6 x 7?"}]}';
}

no_shuffle();

# every body the module answers with: OpenAI's schemas (t/schema/)
LLMSchema::check_bodies();

add_block_preprocessor(\&LLMProviders::blocks);

add_block_preprocessor(sub {
    my $block = shift;

    LLMRedis::redis_cmd('FLUSHALL');

    $block->set_value("http_config", <<"EOF" . ($block->http_config // ''));
    llm_provider sonnet uri=/_llm/claude format=anthropic
                 model=claude-sonnet-4-5
                 api_key=$LLMProviders::ANTHROPIC_KEY;
    llm_provider flash uri=/_llm/flash format=gemini model=gemini-2.5-flash
                 api_key=$LLMProviders::GEMINI_KEY;
    llm_provider athink uri=/_a/athink format=anthropic api_key=ak;
    llm_provider athinkerr uri=/_a/athinkerr format=anthropic api_key=ak;
    llm_provider gthink uri=/_g/gthink format=gemini model=gemini-2.5-flash;
EOF

    $block->set_value("config", <<'EOF' . ($block->config // ''));
        location = /_llm/flash {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2/v1beta/models/$llm_provider_model:$llm_gemini_method;
        }

        location ~ ^/_a/(\w+)$ {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1;
            proxy_http_version 1.1;
        }

        location ~ ^/_g/(\w+)$ {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_STREAM_PORT/s/$1_$llm_gemini_method;
            proxy_http_version 1.1;
        }
EOF

    $block->set_value("no_error_log", "[error]\n[alert]\n[crit]")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: anthropic: reasoning_effort is thinking; temperature and top_p are not sent with it
max_tokens is the budget's and the default's; the answer's thinking is
reasoning_content, its blocks thinking_blocks, the redacted one too.
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","reasoning_effort":"medium","temperature":0.2,"top_p":0.5,"messages":[{"role":"user","content":"6 x 7?"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('request', $r, q({"model":"claude-sonnet-4-5",
        "messages":[{"role":"user","content":"6 x 7?"}],"max_tokens":8192,
        "thinking":{"type":"enabled","budget_tokens":4096}}));
    LLMProviders::anthropic_message(model => 'claude-sonnet-4-5-20250929',
        content => [
            { type => 'thinking', thinking => 'Six times seven',
              signature => 'EqQBCgIYAhIM1gbcDa9GJwZA' },
            { type => 'redacted_thinking', data => 'EmwKAhgBEgy3va3pzix' },
            { type => 'thinking', thinking => ' is 42.',
              signature => 'ErUBCkYIBhgCIkB' },
            { type => 'text', text => '42.' }]);
})
--- error_code: 200
--- response_body_filters eval
\&LLMProviders::canon
--- response_body
{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"42.","reasoning_content":"Six times seven is 42.","refusal":null,"role":"assistant","thinking_blocks":[{"signature":"EqQBCgIYAhIM1gbcDa9GJwZA","thinking":"Six times seven","type":"thinking"},{"data":"EmwKAhgBEgy3va3pzix","type":"redacted_thinking"},{"signature":"ErUBCkYIBhgCIkB","thinking":" is 42.","type":"thinking"}]}}],"created":0,"id":"msg_01XFDUDYJgAACzvnptvVoYEL","model":"claude-sonnet-4-5-20250929","object":"chat.completion","usage":{"completion_tokens":12,"prompt_tokens":25,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":37}}



=== TEST 2: anthropic: a budget the client's max_tokens cannot hold is cut below it; temperature 1 and top_p 0.95 stay
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","reasoning_effort":"high","max_completion_tokens":3000,"temperature":1,"top_p":0.95,"messages":[{"role":"user","content":"6 x 7?"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('max_tokens', $r->{max_tokens}, 3000);
    LLMProviders::expect('thinking', $r->{thinking},
                         q({"type":"enabled","budget_tokens":2999}));
    LLMProviders::expect('temperature', $r->{temperature}, 1);
    LLMProviders::expect('top_p', $r->{top_p}, 0.95);
    LLMProviders::anthropic_message(content => '42.');
})
--- error_code: 200
--- response_body_like: "content":"42\."



=== TEST 3: anthropic: a max_tokens below the least budget is raised by it
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","reasoning_effort":"minimal","max_tokens":300,"messages":[{"role":"user","content":"6 x 7?"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('max_tokens', $r->{max_tokens}, 1324);
    LLMProviders::expect('thinking', $r->{thinking},
                         q({"type":"enabled","budget_tokens":1024}));
    LLMProviders::anthropic_message(content => '42.');
})
--- error_code: 200
--- response_body_like: "content":"42\."



=== TEST 4: anthropic: "none" sends no thinking, and temperature stays
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","reasoning_effort":"none","temperature":0.3,"messages":[{"role":"user","content":"a"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    die "thinking sent\n" if exists $r->{thinking};
    LLMProviders::expect('max_tokens', $r->{max_tokens}, 4096);
    LLMProviders::expect('temperature', $r->{temperature}, 0.3);
    LLMProviders::anthropic_message(content => 'ok');
})
--- error_code: 200
--- response_body_like: "content":"ok"



=== TEST 5: anthropic: an unknown effort is not sent
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","reasoning_effort":"extreme","messages":[{"role":"user","content":"a"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    die "thinking sent\n" if exists $r->{thinking};
    LLMProviders::anthropic_message(content => 'ok');
})
--- error_code: 200
--- response_body_like: "content":"ok"



=== TEST 6: anthropic: a forced tool_choice wins over reasoning_effort
Anthropic does not think when tool use is forced (the fake refuses both).
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","reasoning_effort":"high","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required","messages":[{"role":"user","content":"c"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    die "thinking sent\n" if exists $r->{thinking};
    LLMProviders::expect('tool_choice', $r->{tool_choice}, q({"type":"any"}));
    LLMProviders::anthropic_message(content => [{ type => 'tool_use',
        id => 'toolu_1', name => 'f', input => {} }], stop_reason => 'tool_use');
})
--- error_code: 200
--- response_body_like: "finish_reason":"tool_calls"



=== TEST 7: anthropic: a tool use turn goes back with its thinking blocks first
The fake rejects a tool use turn without its thinking when thinking is
on, as Anthropic does.
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","reasoning_effort":"low","tools":[{"type":"function","function":{"name":"mul","parameters":{"type":"object","properties":{"a":{"type":"integer"}}}}}],"messages":[{"role":"user","content":"6 x 7?"},{"role":"assistant","content":null,"reasoning_content":"I should multiply.","thinking_blocks":[{"type":"thinking","thinking":"I should multiply.","signature":"EqQBCgIYAhIM1gbcDa9GJwZA"},{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"}],"tool_calls":[{"id":"toolu_01A","type":"function","function":{"name":"mul","arguments":"{\"a\":6}"}}]},{"role":"tool","tool_call_id":"toolu_01A","content":"42"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('messages', $r->{messages}, q([
        {"role":"user","content":"6 x 7?"},
        {"role":"assistant","content":[
            {"type":"thinking","thinking":"I should multiply.",
             "signature":"EqQBCgIYAhIM1gbcDa9GJwZA"},
            {"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"},
            {"type":"tool_use","id":"toolu_01A","name":"mul",
             "input":{"a":6}}]},
        {"role":"user","content":[{"type":"tool_result",
            "tool_use_id":"toolu_01A","content":"42"}]}]));
    LLMProviders::anthropic_message(content => 'It is 42.');
})
--- error_code: 200
--- response_body_like: "content":"It is 42\."



=== TEST 8: anthropic: the fake refuses a tool use turn that lost its thinking
reasoning_content alone has no signature: it is not sent, and Anthropic
refuses the turn, a 400 relayed in OpenAI's shape.
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","reasoning_effort":"low","tools":[{"type":"function","function":{"name":"mul"}}],"messages":[{"role":"user","content":"6 x 7?"},{"role":"assistant","content":null,"reasoning_content":"I should multiply.","tool_calls":[{"id":"toolu_01A","type":"function","function":{"name":"mul","arguments":"{}"}}]},{"role":"tool","tool_call_id":"toolu_01A","content":"42"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub { LLMProviders::anthropic_message() })
--- error_code: 400
--- response_body_like: Expected `thinking` or `redacted_thinking`, but found `tool_use`
--- no_error_log
[alert]



=== TEST 9: anthropic: without reasoning_effort, thinking blocks of the history are still sent
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Hello.","reasoning_content":"Greet back.","thinking_blocks":[{"type":"thinking","thinking":"Greet back.","signature":"EqQBCgIY"}]},{"role":"assistant","content":"More?","reasoning_content":"no signature"},{"role":"user","content":"bye"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('messages', $r->{messages}, q([
        {"role":"user","content":"hi"},
        {"role":"assistant","content":[
            {"type":"thinking","thinking":"Greet back.","signature":"EqQBCgIY"},
            {"type":"text","text":"Hello."},{"type":"text","text":"More?"}]},
        {"role":"user","content":"bye"}]));
    LLMProviders::anthropic_message(content => 'Bye.');
})
--- error_code: 200
--- response_body_like: "content":"Bye\."



=== TEST 10: anthropic: response_format json_schema is output_config.format
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","response_format":{"type":"json_schema","json_schema":{"name":"answer","strict":true,"schema":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}}},"messages":[{"role":"user","content":"6 x 7?"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('output_config', $r->{output_config},
        q({"format":{"type":"json_schema","schema":{"type":"object",
           "properties":{"n":{"type":"integer"}},"required":["n"],
           "additionalProperties":false}}}));
    LLMProviders::anthropic_message(content => '{"n":42}');
})
--- error_code: 200
--- response_body_like: "content":"\{\\"n\\":42\}"



=== TEST 11: anthropic: response_format json_object is not sent
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request
POST /chat
{"model":"m","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"6 x 7?"}]}
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    die "output_config sent\n" if exists $r->{output_config};
    LLMProviders::anthropic_message(content => '{"n": 42}');
})
--- error_code: 200
--- response_body_like: "content":"\{\\"n\\": 42\}"



=== TEST 12: anthropic: a stream's thinking is reasoning_content, its signature a thinking block
--- config
    location /chat { llm_fallback_chain sonnet; }
--- request eval
main::chat(1)
--- tcp_reply eval
LLMProviders::anthropic(sub {
    my ($r) = @_;
    LLMProviders::expect('thinking', $r->{thinking},
                         q({"type":"enabled","budget_tokens":1024}));
    die "not a stream\n" unless $r->{stream};
    main::sse_reply(main::a_thinking_events());
})
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
--- response_body_filters eval
\&main::deltas
--- response_body
{"delta":{"content":"","role":"assistant"},"finish":null}
{"delta":{"reasoning_content":"Six times"},"finish":null}
{"delta":{"reasoning_content":" seven is 42."},"finish":null}
{"delta":{"thinking_blocks":[{"signature":"EqQBCgIYAhIM1gbcDa9GJwZA","thinking":"","type":"thinking"}]},"finish":null}
{"delta":{"thinking_blocks":[{"data":"EmwKAhgBEgy3va3pzix","type":"redacted_thinking"}]},"finish":null}
{"delta":{"content":"42."},"finish":null}
{"delta":{},"finish":"stop"}
{"usage":{"completion_tokens":90,"prompt_tokens":30,"total_tokens":120}}
[DONE]



=== TEST 13: anthropic: thinking alone commits the stream; an error after it is relayed
--- config
    location /chat { llm_fallback_chain athinkerr openai; }
--- request eval
main::chat(1)
--- error_code: 200
--- response_headers
X-LLM-Provider: athinkerr
--- response_body_filters eval
\&main::deltas
--- response_body
{"delta":{"content":"","role":"assistant"},"finish":null}
{"delta":{"reasoning_content":"Six times"},"finish":null}
{"error":"Overloaded"}
[DONE]
--- error_log
stream failed after its first content
--- no_error_log
[alert]



=== TEST 14: gemini: reasoning_effort is thinkingConfig; thoughts are reasoning_content, their tokens reasoning_tokens
--- config
    location /chat { llm_fallback_chain flash; }
--- request
POST /chat
{"model":"m","reasoning_effort":"high","max_tokens":30000,"messages":[{"role":"user","content":"6 x 7?"}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r, $http) = @_;
    LLMProviders::expect('generationConfig', $r->{generationConfig},
        q({"maxOutputTokens":30000,"thinkingConfig":{"thinkingBudget":24576,
           "includeThoughts":true}}));
    LLMProviders::expect('model', $http->{model}, '"gemini-2.5-flash"');
    LLMProviders::gemini_answer(model => 'gemini-2.5-flash',
        parts => [{ text => 'Six times seven', thought => JSON::PP::true },
                  { text => ' is 42.', thought => JSON::PP::true },
                  { text => '42.' }],
        usage => { promptTokenCount => 10, candidatesTokenCount => 2,
                   thoughtsTokenCount => 40, totalTokenCount => 52 });
})
--- error_code: 200
--- response_body_filters eval
\&LLMProviders::canon
--- response_body
{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"42.","reasoning_content":"Six times seven is 42.","refusal":null,"role":"assistant"}}],"created":0,"id":"mAitaLmkHPPlz7IPvtfUqQ4","model":"gemini-2.5-flash","object":"chat.completion","usage":{"completion_tokens":42,"completion_tokens_details":{"reasoning_tokens":40},"prompt_tokens":10,"total_tokens":52}}



=== TEST 15: gemini: "none" turns thinking off
--- config
    location /chat { llm_fallback_chain flash; }
--- request
POST /chat
{"model":"m","reasoning_effort":"none","messages":[{"role":"user","content":"a"}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('generationConfig', $r->{generationConfig},
                         q({"thinkingConfig":{"thinkingBudget":0}}));
    LLMProviders::gemini_answer(text => 'ok');
})
--- error_code: 200
--- response_body_like: "content":"ok"



=== TEST 16: gemini: an unknown effort is not sent
--- config
    location /chat { llm_fallback_chain flash; }
--- request
POST /chat
{"model":"m","reasoning_effort":"extreme","messages":[{"role":"user","content":"a"}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    die "generationConfig sent\n" if exists $r->{generationConfig};
    LLMProviders::gemini_answer(text => 'ok');
})
--- error_code: 200
--- response_body_like: "content":"ok"



=== TEST 17: gemini: response_format json_schema as responseMimeType and responseJsonSchema
--- config
    location /chat { llm_fallback_chain flash; }
--- request
POST /chat
{"model":"m","response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object","properties":{"n":{"type":"integer"}}}}},"messages":[{"role":"user","content":"a"}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('generationConfig', $r->{generationConfig},
        q({"responseMimeType":"application/json","responseJsonSchema":
           {"type":"object","properties":{"n":{"type":"integer"}}}}));
    LLMProviders::gemini_answer(text => '{"n":42}');
})
--- error_code: 200
--- response_body_like: "content":"\{\\"n\\":42\}"



=== TEST 18: gemini: response_format json_object as responseMimeType
--- config
    location /chat { llm_fallback_chain flash; }
--- request
POST /chat
{"model":"m","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"b"}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('generationConfig', $r->{generationConfig},
                         q({"responseMimeType":"application/json"}));
    LLMProviders::gemini_answer(text => '{"n":42}');
})
--- error_code: 200
--- response_body_like: "content":"\{\\"n\\":42\}"



=== TEST 19: gemini: a history's reasoning is not sent, a call's thought signature is
--- config
    location /chat { llm_fallback_chain flash; }
--- request
POST /chat
{"model":"m","reasoning_effort":"low","messages":[{"role":"user","content":"6 x 7?"},{"role":"assistant","content":null,"reasoning_content":"Multiply.","tool_calls":[{"id":"c1","type":"function","function":{"name":"mul","arguments":"{}"},"extra_content":{"google":{"thought_signature":"CiQBVKhc"}}}]},{"role":"tool","tool_call_id":"c1","content":"42"}]}
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r) = @_;
    LLMProviders::expect('contents', $r->{contents}, q([
        {"role":"user","parts":[{"text":"6 x 7?"}]},
        {"role":"model","parts":[{"functionCall":{"name":"mul","args":{}},
                                  "thoughtSignature":"CiQBVKhc"}]},
        {"role":"user","parts":[{"functionResponse":{"name":"mul",
                                  "response":{"output":"42"}}}]}]));
    LLMProviders::gemini_answer(text => '42.');
})
--- error_code: 200
--- response_body_like: "content":"42\."



=== TEST 20: gemini: a stream's thoughts are reasoning_content deltas, their tokens reasoning_tokens
--- config
    location /chat { llm_fallback_chain flash; }
--- request eval
main::chat(1)
--- tcp_reply eval
LLMProviders::gemini(sub {
    my ($r, $http) = @_;
    die "not a stream\n" unless $http->{stream};
    LLMProviders::expect('thinkingConfig',
                         $r->{generationConfig}{thinkingConfig},
                         q({"thinkingBudget":1024,"includeThoughts":true}));
    main::sse_reply(main::g_thought_events());
})
--- error_code: 200
--- response_body_filters eval
\&main::deltas
--- response_body
{"delta":{"reasoning_content":"Six times","role":"assistant"},"finish":null}
{"delta":{"reasoning_content":" seven."},"finish":null}
{"delta":{"content":"42."},"finish":null}
{"delta":{},"finish":"stop"}
{"usage":{"completion_tokens":42,"completion_tokens_details":{"reasoning_tokens":40},"prompt_tokens":10,"total_tokens":52}}
[DONE]



=== TEST 21: cache: an Anthropic stream is stored with its reasoning; a HIT gives it back, as JSON and as chunks
--- config
    location /chat {
        llm_fallback_chain athink;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(1), main::chat(0), main::chat(1)]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: HIT", "X-LLM-Cache: HIT"]
--- response_body_filters eval
\&main::view
--- response_body eval
[<<'MISS', <<'JSON', <<'SSE']
{"delta":{"content":"","role":"assistant"},"finish":null}
{"delta":{"reasoning_content":"Six times"},"finish":null}
{"delta":{"reasoning_content":" seven is 42."},"finish":null}
{"delta":{"thinking_blocks":[{"signature":"EqQBCgIYAhIM1gbcDa9GJwZA","thinking":"","type":"thinking"}]},"finish":null}
{"delta":{"thinking_blocks":[{"data":"EmwKAhgBEgy3va3pzix","type":"redacted_thinking"}]},"finish":null}
{"delta":{"content":"42."},"finish":null}
{"delta":{},"finish":"stop"}
{"usage":{"completion_tokens":90,"prompt_tokens":30,"total_tokens":120}}
[DONE]
MISS
{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"42.","reasoning_content":"Six times seven is 42.","refusal":null,"role":"assistant","thinking_blocks":[{"signature":"EqQBCgIYAhIM1gbcDa9GJwZA","thinking":"Six times seven is 42.","type":"thinking"},{"data":"EmwKAhgBEgy3va3pzix","type":"redacted_thinking"}]}}],"created":0,"id":"chatcmpl-ID","model":"claude-sonnet-4-5-20250929","object":"chat.completion","usage":{"completion_tokens":90,"prompt_tokens":30,"total_tokens":120}}
JSON
{"delta":{"reasoning_content":"Six times seven is 42.","role":"assistant"},"finish":null}
{"delta":{"thinking_blocks":[{"signature":"EqQBCgIYAhIM1gbcDa9GJwZA","thinking":"","type":"thinking"}]},"finish":null}
{"delta":{"thinking_blocks":[{"data":"EmwKAhgBEgy3va3pzix","type":"redacted_thinking"}]},"finish":null}
{"delta":{"content":"42.","refusal":null},"finish":null}
{"delta":{},"finish":"stop"}
{"usage":{"completion_tokens":90,"prompt_tokens":30,"total_tokens":120}}
[DONE]
SSE



=== TEST 22: cache: a Gemini stream's thoughts come back from the cache, with their tokens
--- config
    location /chat {
        llm_fallback_chain gthink;
        llm_cache redis=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    }
--- request eval
[main::chat(1), main::chat(0), main::chat(1)]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-LLM-Cache: MISS", "X-LLM-Cache: HIT", "X-LLM-Cache: HIT"]
--- response_body_filters eval
\&main::view
--- response_body eval
[<<'MISS', <<'JSON', <<'SSE']
{"delta":{"reasoning_content":"Six times","role":"assistant"},"finish":null}
{"delta":{"reasoning_content":" seven."},"finish":null}
{"delta":{"content":"42."},"finish":null}
{"delta":{},"finish":"stop"}
{"usage":{"completion_tokens":42,"completion_tokens_details":{"reasoning_tokens":40},"prompt_tokens":10,"total_tokens":52}}
[DONE]
MISS
{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"42.","reasoning_content":"Six times seven.","refusal":null,"role":"assistant"}}],"created":0,"id":"chatcmpl-ID","model":"gemini-2.5-flash","object":"chat.completion","usage":{"completion_tokens":42,"completion_tokens_details":{"reasoning_tokens":40},"prompt_tokens":10,"total_tokens":52}}
JSON
{"delta":{"reasoning_content":"Six times seven.","role":"assistant"},"finish":null}
{"delta":{"content":"42.","refusal":null},"finish":null}
{"delta":{},"finish":"stop"}
{"usage":{"completion_tokens":42,"completion_tokens_details":{"reasoning_tokens":40},"prompt_tokens":10,"total_tokens":52}}
[DONE]
SSE
