# Client input: method, content type, JSON and field validation, each with
# an OpenAI-shaped error and a precise "param".

use FindBin;
BEGIN { push @INC, "$FindBin::Bin/lib" }
use Test::Nginx::Socket 'no_plan';
use LLMFake;
use LLMSchema;

no_shuffle();

# every body the module answers with: OpenAI's schemas (t/schema/)
LLMSchema::check_bodies();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", LLMFake::fake_providers()
                      . "    llm_provider ok uri=/_llm/ok;\n");

    $block->set_value("config", LLMFake::llm_locations()
                      . "    location /chat { llm_fallback_chain ok; }\n"
                      . ($block->config // ''));

    if (!defined $block->error_code) {
        $block->set_value("error_code", 400);
    }

    if (!defined $block->no_error_log) {
        $block->set_value("no_error_log", "[error]\n[alert]\n");
    }
});

run_tests();

__DATA__

=== TEST 1: GET is 405 with Allow: POST
--- request
GET /chat
--- error_code: 405
--- response_headers
Allow: POST
Content-Type: application/json
--- response_body chomp
{"error":{"message":"Only POST is allowed on this endpoint.","type":"invalid_request_error","param":null,"code":null}}



=== TEST 2: HEAD is 405 too
--- request
HEAD /chat
--- error_code: 405
--- response_headers
Allow: POST
--- response_body



=== TEST 3: a non-JSON content type is 415
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: text/plain
--- error_code: 415
--- response_body_like: ^\{"error":\{"message":"Unsupported Content-Type[^"]*","type":"invalid_request_error","param":null,"code":null\}\}$



=== TEST 4: JSON content types with parameters and +json are accepted
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: Application/JSON; charset=utf-8
--- error_code: 200
--- response_body_like: hello from ok



=== TEST 5: an empty body
--- request
POST /chat
--- more_headers
Content-Type: application/json
--- response_body_like: "message":"The request body is empty



=== TEST 6: a body that is not JSON
--- request
POST /chat
{"messages": [
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"error":\{"message":"We could not parse the JSON body of your request: [^"]+","type":"invalid_request_error","param":null,"code":null\}\}$



=== TEST 7: a JSON array is not a request
--- request
POST /chat
[1,2,3]
--- more_headers
Content-Type: application/json
--- response_body_like: "message":"The request body must be a JSON object."



=== TEST 8: messages is required
--- request
POST /chat
{"model":"gpt-4o"}
--- more_headers
Content-Type: application/json
--- response_body chomp
{"error":{"message":"Missing required parameter: 'messages'.","type":"invalid_request_error","param":"messages","code":null}}



=== TEST 9: messages must not be empty
--- request
POST /chat
{"messages":[]}
--- more_headers
Content-Type: application/json
--- response_body_like: "param":"messages"



=== TEST 10: messages must be an array
--- request
POST /chat
{"messages":"hi"}
--- more_headers
Content-Type: application/json
--- response_body_like: "message":"Invalid type for 'messages': expected an array.","type":"invalid_request_error","param":"messages"



=== TEST 11: a message must be an object
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"},42]}
--- more_headers
Content-Type: application/json
--- response_body_like: "param":"messages\[1\]"



=== TEST 12: a message needs a role
--- request
POST /chat
{"messages":[{"content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "message":"Missing required parameter: 'messages\[0\].role'.",.*"param":"messages\[0\].role"



=== TEST 13: the role must be a string
--- request
POST /chat
{"messages":[{"role":1,"content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "param":"messages\[0\].role"



=== TEST 14: content must be a string, parts or null
--- request
POST /chat
{"messages":[{"role":"user","content":"hi"},{"role":"user","content":{"a":1}}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "message":"Invalid type for 'messages\[1\].content': expected a string, an array of content parts or null.",.*"param":"messages\[1\].content"



=== TEST 15: content parts are objects with a type
--- request
POST /chat
{"messages":[{"role":"user","content":[{"type":"text","text":"a"},"b"]}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "param":"messages\[0\].content"



=== TEST 16: array content and null content are fine
--- request
POST /chat
{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}]}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body_like: hello from ok



=== TEST 17: model must be a string
--- request
POST /chat
{"model":4,"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_body chomp
{"error":{"message":"Invalid type for 'model': expected a string.","type":"invalid_request_error","param":"model","code":null}}



=== TEST 18: stream must be a boolean
--- request
POST /chat
{"stream":"yes","messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "param":"stream"



=== TEST 19: temperature must be a number
--- request
POST /chat
{"temperature":"hot","messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "message":"Invalid type for 'temperature': expected a number.",.*"param":"temperature"



=== TEST 20: an integer temperature is a number
--- request
POST /chat
{"temperature":1,"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body_like: hello from ok



=== TEST 21: max_tokens must be an integer
--- request
POST /chat
{"max_tokens":1.5,"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "message":"Invalid type for 'max_tokens': expected an integer.",.*"param":"max_tokens"



=== TEST 22: max_tokens must be positive
--- request
POST /chat
{"max_tokens":0,"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "param":"max_tokens"



=== TEST 23: max_completion_tokens must be an integer
--- request
POST /chat
{"max_completion_tokens":"10","messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "param":"max_completion_tokens"



=== TEST 24: tools must be an array
--- request
POST /chat
{"tools":{},"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "message":"Invalid type for 'tools': expected an array.",.*"param":"tools"



=== TEST 25: stream_options.include_usage must be a boolean
--- request
POST /chat
{"stream":true,"stream_options":{"include_usage":1},"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Content-Type: application/json
--- response_body_like: "param":"stream_options.include_usage"



=== TEST 26: a body over client_max_body_size is a 413 in the OpenAI error shape
--- config
    location /small {
        client_max_body_size 1k;
        llm_fallback_chain ok;
    }
--- request eval
"POST /small\n" . '{"messages":[{"role":"user","content":"' . ('x' x 2000) . '"}]}'
--- more_headers
Content-Type: application/json
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"error":\{"message":"The request body is larger than this endpoint accepts \(client_max_body_size 1024 bytes\)\.","type":"invalid_request_error","param":null,"code":"request_too_large"\}\}$
--- error_log
client intended to send too large body
--- no_error_log
[alert]
