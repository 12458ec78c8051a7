
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#ifndef _NGX_HTTP_LLM_FALLBACK_TRANSLATE_H_INCLUDED_
#define _NGX_HTTP_LLM_FALLBACK_TRANSLATE_H_INCLUDED_


/*
 * The provider format translators: pure functions of JSON in -> JSON out.
 * They depend on jansson and libc only, never on nginx, so that the
 * fuzz harnesses in util/fuzz/ build them alone; the nginx glue is
 * ngx_http_llm_fallback_format.c.
 *
 * Requests: an OpenAI chat request -> the provider's request; nothing
 * of the input is modified (parts of it may be shared by reference).
 * Responses: the provider's answer -> an OpenAI chat.completion, or
 * NULL when it is not a usable answer.  Errors: the provider's error
 * body -> an OpenAI error object, or NULL when it is not one.
 *
 * The mapping tables (roles, finish reasons) and the helpers that build
 * OpenAI objects are shared with the streaming translation.
 */


#include <stddef.h>
#include <jansson.h>


#define NGX_HTTP_LLM_FALLBACK_XLAT_MAX_DROPPED        16

/* Anthropic requires max_tokens: used without client or provider value */
#define NGX_HTTP_LLM_FALLBACK_ANTHROPIC_MAX_TOKENS    4096

/* Anthropic's least thinking budget (budget_tokens) */
#define NGX_HTTP_LLM_FALLBACK_ANTHROPIC_MIN_BUDGET    1024

/* a neutral first user turn when a conversation starts with the model */
#define NGX_HTTP_LLM_FALLBACK_XLAT_FIRST_TURN         "."

/* Gemini's documented value for function calls made by another model */
#define NGX_HTTP_LLM_FALLBACK_GEMINI_NO_SIGNATURE                            \
    "skip_thought_signature_validator"

/* OpenAI message roles, as the translators see them */
#define NGX_HTTP_LLM_FALLBACK_ROLE_UNKNOWN            0
#define NGX_HTTP_LLM_FALLBACK_ROLE_SYSTEM             1
#define NGX_HTTP_LLM_FALLBACK_ROLE_USER               2
#define NGX_HTTP_LLM_FALLBACK_ROLE_ASSISTANT          3
#define NGX_HTTP_LLM_FALLBACK_ROLE_TOOL               4


typedef struct {
    const char                       *name;
    const char                       *value;
} ngx_http_llm_fallback_xlat_map_t;


typedef struct {
    const char                       *name;
    int                               role;
} ngx_http_llm_fallback_xlat_role_t;


/* a reasoning_effort and the thinking budget a format gives it */
typedef struct {
    const char                       *name;
    json_int_t                        budget;
} ngx_http_llm_fallback_xlat_effort_t;


/* a parsed "data:MIME[;...];base64,DATA" URL */
typedef struct {
    const char                       *mime;
    size_t                            mime_len;
    const char                       *data;
    size_t                            data_len;
} ngx_http_llm_fallback_xlat_data_t;


typedef struct {
    /* in: the model to ask for (Gemini: none, it is in the URL) */
    const char                       *model;
    size_t                            model_len;
    /* in: the provider's default max_tokens, 0 if none */
    json_int_t                        max_tokens;
    /* in: ask the provider for a stream */
    unsigned                          stream:1;

    /* out: what the target cannot express and was not sent */
    const char                       *dropped[
                                        NGX_HTTP_LLM_FALLBACK_XLAT_MAX_DROPPED];
    size_t                            ndropped;
} ngx_http_llm_fallback_xlat_request_t;


typedef struct {
    /* in: the model asked for, reported when the answer names none */
    const char                       *model;
    size_t                            model_len;
    /* in: a unique hex string for ids the provider does not give */
    const char                       *id;
    size_t                            id_len;
    /* in: "created" */
    json_int_t                        created;

    /* out: usage counts, -1 when unknown */
    json_int_t                        prompt_tokens;
    json_int_t                        completion_tokens;
    /* out: why the answer is not usable, when NULL is returned */
    const char                       *reason;
} ngx_http_llm_fallback_xlat_response_t;


/* translate.c: tables and helpers shared by the formats */

extern const ngx_http_llm_fallback_xlat_role_t
    ngx_http_llm_fallback_xlat_roles[];

int ngx_http_llm_fallback_xlat_role(json_t *message);
const char *ngx_http_llm_fallback_xlat_map(
    const ngx_http_llm_fallback_xlat_map_t *map, const char *name,
    const char *dflt);
void ngx_http_llm_fallback_xlat_drop(ngx_http_llm_fallback_xlat_request_t *x,
    const char *what);
int ngx_http_llm_fallback_xlat_data_url(const char *url, size_t len,
    ngx_http_llm_fallback_xlat_data_t *data);
int ngx_http_llm_fallback_xlat_http_url(const char *url, size_t len);
const char *ngx_http_llm_fallback_xlat_url_mime(const char *url, size_t len);
json_int_t ngx_http_llm_fallback_xlat_max_tokens(json_t *req);
json_int_t ngx_http_llm_fallback_xlat_effort(
    const ngx_http_llm_fallback_xlat_effort_t *efforts, json_t *effort);
json_int_t ngx_http_llm_fallback_xlat_count(json_t *v);
json_t *ngx_http_llm_fallback_xlat_join(json_t *strings);
json_t *ngx_http_llm_fallback_xlat_stop(json_t *stop, int blank_ok,
    ngx_http_llm_fallback_xlat_request_t *x);
json_t *ngx_http_llm_fallback_xlat_arguments(json_t *call);
json_t *ngx_http_llm_fallback_xlat_tool_call(const char *id, size_t id_len,
    const char *name, size_t name_len, json_t *args);
json_t *ngx_http_llm_fallback_xlat_call_id(
    ngx_http_llm_fallback_xlat_response_t *x, size_t n);
json_t *ngx_http_llm_fallback_xlat_usage(json_int_t prompt,
    json_int_t completion, json_int_t total, json_int_t cached,
    json_int_t reasoning);
json_t *ngx_http_llm_fallback_xlat_completion(
    ngx_http_llm_fallback_xlat_response_t *x, json_t *id, json_t *model,
    json_t *choices, json_t *usage);
json_t *ngx_http_llm_fallback_xlat_error(json_t *type, json_t *message,
    json_t *code);
json_t *ngx_http_llm_fallback_xlat_error_code(json_t *code);

/* anthropic.c: the Messages API */

extern const ngx_http_llm_fallback_xlat_map_t
    ngx_http_llm_fallback_anthropic_finish[];

json_t *ngx_http_llm_fallback_anthropic_request(json_t *req,
    ngx_http_llm_fallback_xlat_request_t *x);
json_t *ngx_http_llm_fallback_anthropic_response(json_t *resp,
    ngx_http_llm_fallback_xlat_response_t *x);
json_t *ngx_http_llm_fallback_anthropic_error(json_t *body);
json_t *ngx_http_llm_fallback_anthropic_usage(json_t *usage,
    ngx_http_llm_fallback_xlat_response_t *x);

/* gemini.c: generateContent */

extern const ngx_http_llm_fallback_xlat_map_t
    ngx_http_llm_fallback_gemini_finish[];

json_t *ngx_http_llm_fallback_gemini_request(json_t *req,
    ngx_http_llm_fallback_xlat_request_t *x);
json_t *ngx_http_llm_fallback_gemini_response(json_t *resp,
    ngx_http_llm_fallback_xlat_response_t *x);
json_t *ngx_http_llm_fallback_gemini_error(json_t *body);
json_t *ngx_http_llm_fallback_gemini_usage(json_t *usage,
    ngx_http_llm_fallback_xlat_response_t *x);
json_t *ngx_http_llm_fallback_gemini_call(json_t *part, size_t n,
    ngx_http_llm_fallback_xlat_response_t *x);


/*
 * Streaming: one provider event in, zero or more OpenAI
 * chat.completion.chunk objects appended to "out" (a JSON array).
 * The caller keeps one state per attempt: zeroed, the "in" fields set,
 * and prompt_tokens and completion_tokens set to -1 (unknown); the
 * translators keep what they need between events in the rest.
 * Return 0 when the event was understood (it may produce nothing, as a
 * ping does), -1 when it is not a usable event (x->reason says why);
 * "out" is then as it was before the call, but the state is not: the
 * attempt cannot go on.
 *
 * Reasoning: a delta's "reasoning_content" is thinking text (Anthropic's
 * thinking_delta, Gemini's thought parts); its "thinking_blocks" is one
 * block: {"type":"thinking","thinking":"","signature":S} ends the thinking
 * block whose text came in the reasoning_content since the previous
 * block (Anthropic's signature_delta), {"type":"redacted_thinking",
 * "data":D} comes whole.
 *
 * The chunks of one stream: each has x->id, x->created and one model
 * (the provider's, else x->model); the first carries the role; a tool
 * call index is either the next one, in a chunk that starts the call
 * (id, type, function name, and its arguments so far: "" for Anthropic,
 * all of them for Gemini), or one started before, with more arguments;
 * one chunk at most has a finish_reason, and only the usage chunk
 * ("choices": [], once) may follow it.  An event that would add content
 * after the finish is not usable.
 */

#define NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK          0
#define NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID    -1
/* openai only: the event was changed in place, serialise it again */
#define NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_CHANGED     1


typedef struct {
    /* in: the model asked for, reported when the provider names none */
    const char                       *model;
    size_t                            model_len;
    /* in: "chatcmpl-..." for every chunk when the provider gives none */
    const char                       *id;
    size_t                            id_len;
    /* in: "created" */
    json_int_t                        created;
    /* in: the client asked for stream_options.include_usage */
    unsigned                          include_usage:1;

    /*
     * state between events, owned by the translators, zero at start:
     * the provider's message id (for logs) and the model every chunk
     * reports (references); the open Anthropic tool_use block's tool
     * index + 1, and whether it had arguments (else it gets "{}")
     */
    json_t                           *provider_id;
    json_t                           *provider_model;
    int                               block_tool;
    int                               block_args;
    int                               ntools;
    int                               role_sent;
    int                               usage_sent;
    int                               finish_sent;
    /* the reasoning tokens of the provider's usage, when known */
    json_int_t                        reasoning_tokens;
    unsigned                          reasoning_known:1;

    /* out: usage counts, -1 when unknown */
    json_int_t                        prompt_tokens;
    json_int_t                        completion_tokens;
    /*
     * out: a chunk with content, a refusal, reasoning (reasoning_content,
     * thinking_blocks) or a tool call delta was made
     */
    unsigned                          content:1;
    /* out: the provider ended its stream (message_stop, finishReason,
     * OpenAI "[DONE]" is seen by the caller) */
    unsigned                          done:1;
    /* out: an in-band error, as an OpenAI error object (a new reference,
     * the caller releases it; a later error does not replace it) */
    json_t                           *error;
    /* out: why the last event is not usable */
    const char                       *reason;
} ngx_http_llm_fallback_xlat_stream_t;


/* Anthropic: "type" is the SSE event name (or NULL: data's "type") */
int ngx_http_llm_fallback_anthropic_stream(
    ngx_http_llm_fallback_xlat_stream_t *x, const char *type, json_t *data,
    json_t *out);

/* Gemini: each event is a GenerateContentResponse */
int ngx_http_llm_fallback_gemini_stream(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out);

/*
 * OpenAI: a chat.completion.chunk, checked and completed in place (id,
 * object, created, model when missing); nothing is appended to "out".
 * Detects {"error": ...}, content and tool call deltas, usage.
 */
int ngx_http_llm_fallback_openai_stream(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data);

/*
 * The end of a translated stream: the chunks still owed to the client
 * (the usage chunk for include_usage, a finish chunk never sent), once.
 */
int ngx_http_llm_fallback_xlat_stream_end(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out);

/* releases the references the state holds (not x->error) */
void ngx_http_llm_fallback_xlat_stream_free(
    ngx_http_llm_fallback_xlat_stream_t *x);


/*
 * A stream's chunks gathered back into one chat.completion, for the
 * cache; "max" bounds the bytes of text it keeps, past which it gives
 * up (add returns -1 and completion returns NULL from then on).
 * Appending is amortised O(1): long streams do not cost O(n^2).
 */

typedef struct ngx_http_llm_fallback_xlat_acc_s
    ngx_http_llm_fallback_xlat_acc_t;

ngx_http_llm_fallback_xlat_acc_t *ngx_http_llm_fallback_xlat_acc_create(
    size_t max);
int ngx_http_llm_fallback_xlat_acc_add(ngx_http_llm_fallback_xlat_acc_t *acc,
    json_t *chunk);
/* a new reference: id, object "chat.completion", created, model,
 * choices[{index, message{role, content, reasoning_content?,
 * thinking_blocks?, tool_calls?, refusal?}, logprobs, finish_reason}],
 * usage when a chunk carried it; a thinking block of a delta whose
 * "thinking" is empty gets the reasoning_content since the previous
 * block, one with its text is kept as it is; id, created
 * and model are the first ones given; NULL when it gave up, when no
 * chunk had a choice, or when a choice has no finish_reason (the stream
 * did not end).  Only choices 0 to 15 are kept.  "content" is null when
 * there are tool calls or a refusal and no text. */
json_t *ngx_http_llm_fallback_xlat_acc_completion(
    ngx_http_llm_fallback_xlat_acc_t *acc);
void ngx_http_llm_fallback_xlat_acc_free(
    ngx_http_llm_fallback_xlat_acc_t *acc);


#endif /* _NGX_HTTP_LLM_FALLBACK_TRANSLATE_H_INCLUDED_ */
