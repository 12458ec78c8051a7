
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


/*
 * Streaming: Anthropic Messages events and Gemini streamGenerateContent
 * responses to OpenAI chat.completion.chunk objects, the checks of
 * OpenAI chunks, and the accumulator that folds a stream's chunks back
 * into one chat.completion.  Pure: jansson and libc only (see
 * ngx_http_llm_fallback_translate.h).
 *
 * The chunks of one stream keep these promises: every chunk has the
 * caller's id, "created" and one model; the first carries the role; a
 * tool call index is either the next one (the chunk then starts the
 * call: id, type, name) or one already started (arguments only); at
 * most one chunk has a finish_reason and nothing but the usage chunk
 * follows it; the usage chunk ("choices": []) comes last, at most once.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "ngx_http_llm_fallback_translate.h"


#define NGX_HTTP_LLM_FALLBACK_XLAT_ACC_CHOICES  16
#define NGX_HTTP_LLM_FALLBACK_XLAT_ACC_TOOLS    128
#define NGX_HTTP_LLM_FALLBACK_XLAT_ACC_MIN      64

#define NGX_HTTP_LLM_FALLBACK_XLAT_CHUNK_ID     "chatcmpl-"


typedef json_t *(*ngx_http_llm_fallback_xlat_usage_pt)(json_t *usage,
    ngx_http_llm_fallback_xlat_response_t *x);


/* a growable byte buffer: appending is amortised O(1) */
typedef struct {
    char                                   *data;
    size_t                                  len;
    size_t                                  size;
} ngx_http_llm_fallback_xlat_buf_t;


typedef struct {
    /* the first non-empty string given, references */
    json_t                                 *id;
    json_t                                 *type;
    json_t                                 *name;
    /* Gemini's thought signature, as Google's own OpenAI API has it */
    json_t                                 *extra;
    ngx_http_llm_fallback_xlat_buf_t        arguments;
    unsigned                                seen:1;
} ngx_http_llm_fallback_xlat_acc_tool_t;


typedef struct {
    json_t                                 *role;     /* references */
    json_t                                 *finish;
    json_t                                 *blocks;   /* thinking_blocks */
    ngx_http_llm_fallback_xlat_buf_t        content;
    ngx_http_llm_fallback_xlat_buf_t        refusal;
    ngx_http_llm_fallback_xlat_buf_t        reasoning;
    /* the reasoning of the thinking block not yet ended starts here */
    size_t                                  mark;
    ngx_http_llm_fallback_xlat_acc_tool_t  *tools;    /* by their index */
    size_t                                  ntools;   /* slots */
    unsigned                                seen:1;
} ngx_http_llm_fallback_xlat_acc_choice_t;


struct ngx_http_llm_fallback_xlat_acc_s {
    size_t                                   max;
    size_t                                   total;
    json_t                                  *id;      /* references */
    json_t                                  *model;
    json_t                                  *usage;
    json_int_t                               created;
    unsigned                                 created_set:1;
    unsigned                                 failed:1;
    ngx_http_llm_fallback_xlat_acc_choice_t  choices[
                                        NGX_HTTP_LLM_FALLBACK_XLAT_ACC_CHOICES];
};


static int ngx_http_llm_fallback_xlat_stream_chunk(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out, const char *key,
    json_t *value, const char *finish);
static int ngx_http_llm_fallback_xlat_stream_text(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out, json_t *text);
static int ngx_http_llm_fallback_xlat_stream_reasoning(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out, json_t *text);
static int ngx_http_llm_fallback_xlat_stream_thinking(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out, json_t *block);
static int ngx_http_llm_fallback_xlat_stream_tool(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out, int k,
    json_t *call);
static json_t *ngx_http_llm_fallback_xlat_stream_head(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *choices);
static int ngx_http_llm_fallback_xlat_stream_finish(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out);
static int ngx_http_llm_fallback_xlat_stream_counts(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *usage,
    ngx_http_llm_fallback_xlat_usage_pt count);
static void ngx_http_llm_fallback_xlat_stream_keep(json_t **ref, json_t *v);
static int ngx_http_llm_fallback_xlat_stream_error(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *error);
static int ngx_http_llm_fallback_xlat_stream_undo(json_t *out, size_t n,
    int rc);
static int ngx_http_llm_fallback_anthropic_stream_event(
    ngx_http_llm_fallback_xlat_stream_t *x, const char *type, json_t *data,
    json_t *out);
static int ngx_http_llm_fallback_anthropic_stream_start(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out);
static int ngx_http_llm_fallback_anthropic_stream_block(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out);
static int ngx_http_llm_fallback_anthropic_stream_delta(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out);
static int ngx_http_llm_fallback_anthropic_stream_stop(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out);
static int ngx_http_llm_fallback_anthropic_stream_message(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out);
static void ngx_http_llm_fallback_anthropic_stream_usage(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *usage);
static int ngx_http_llm_fallback_gemini_stream_event(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out);
static int ngx_http_llm_fallback_gemini_stream_parts(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *candidate, json_t *out);
static int ngx_http_llm_fallback_gemini_stream_call(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *part, json_t *out);
static int ngx_http_llm_fallback_xlat_acc_choice(
    ngx_http_llm_fallback_xlat_acc_t *acc, json_t *choice);
static int ngx_http_llm_fallback_xlat_acc_tool(
    ngx_http_llm_fallback_xlat_acc_t *acc,
    ngx_http_llm_fallback_xlat_acc_choice_t *c, json_t *call, size_t pos);
static int ngx_http_llm_fallback_xlat_acc_block(
    ngx_http_llm_fallback_xlat_acc_t *acc,
    ngx_http_llm_fallback_xlat_acc_choice_t *c, json_t *block);
static int ngx_http_llm_fallback_xlat_acc_keep(
    ngx_http_llm_fallback_xlat_acc_t *acc, json_t **ref, json_t *v);
static int ngx_http_llm_fallback_xlat_acc_append(
    ngx_http_llm_fallback_xlat_acc_t *acc,
    ngx_http_llm_fallback_xlat_buf_t *buf, json_t *v);
static json_t *ngx_http_llm_fallback_xlat_acc_message(
    ngx_http_llm_fallback_xlat_acc_choice_t *c);
static json_t *ngx_http_llm_fallback_xlat_acc_tools(
    ngx_http_llm_fallback_xlat_acc_choice_t *c);
static json_t *ngx_http_llm_fallback_xlat_acc_string(json_t *v,
    const char *dflt);
static json_t *ngx_http_llm_fallback_xlat_acc_text(
    ngx_http_llm_fallback_xlat_buf_t *buf);


/* Anthropic: one SSE event of the Messages API */

int
ngx_http_llm_fallback_anthropic_stream(ngx_http_llm_fallback_xlat_stream_t *x,
    const char *type, json_t *data, json_t *out)
{
    size_t  n;

    n = json_array_size(out);

    return ngx_http_llm_fallback_xlat_stream_undo(out, n,
               ngx_http_llm_fallback_anthropic_stream_event(x, type, data,
                                                            out));
}


static int
ngx_http_llm_fallback_anthropic_stream_event(
    ngx_http_llm_fallback_xlat_stream_t *x, const char *type, json_t *data,
    json_t *out)
{
    const char  *t;

    if (!json_is_object(data)) {
        x->reason = "not a JSON object";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    /* data's "type" wins over the SSE event name */

    t = json_string_value(json_object_get(data, "type"));

    if (t == NULL) {
        t = type;
    }

    if (t == NULL) {
        x->reason = "an event without a type";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    if (strcmp(t, "content_block_delta") == 0) {
        return ngx_http_llm_fallback_anthropic_stream_delta(x, data, out);
    }

    if (strcmp(t, "content_block_start") == 0) {
        return ngx_http_llm_fallback_anthropic_stream_block(x, data, out);
    }

    if (strcmp(t, "content_block_stop") == 0) {
        return ngx_http_llm_fallback_anthropic_stream_stop(x, out);
    }

    if (strcmp(t, "message_start") == 0) {
        return ngx_http_llm_fallback_anthropic_stream_start(x, data, out);
    }

    if (strcmp(t, "message_delta") == 0) {
        return ngx_http_llm_fallback_anthropic_stream_message(x, data, out);
    }

    if (strcmp(t, "message_stop") == 0) {
        x->done = 1;
        return ngx_http_llm_fallback_xlat_stream_finish(x, out);
    }

    if (strcmp(t, "error") == 0) {
        return ngx_http_llm_fallback_xlat_stream_error(x,
                   ngx_http_llm_fallback_anthropic_error(data));
    }

    /* "ping", and the event types Anthropic may add */

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
}


/* message_start: the role chunk; the model and the input tokens */

static int
ngx_http_llm_fallback_anthropic_stream_start(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out)
{
    json_t  *message;

    message = json_object_get(data, "message");

    ngx_http_llm_fallback_xlat_stream_keep(&x->provider_id,
                                           json_object_get(message, "id"));
    ngx_http_llm_fallback_xlat_stream_keep(&x->provider_model,
                                           json_object_get(message,
                                                           "model"));

    ngx_http_llm_fallback_anthropic_stream_usage(x,
        json_object_get(message, "usage"));

    if (x->role_sent) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    return ngx_http_llm_fallback_xlat_stream_chunk(x, out, "content",
                                                   json_string(""), NULL);
}


/*
 * content_block_start: text or thinking that comes with the block, a
 * redacted_thinking block, the start of a tool call; server tool blocks
 * are not part of OpenAI
 */

static int
ngx_http_llm_fallback_anthropic_stream_block(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out)
{
    json_t      *block, *v, *id, *name;
    const char  *type;

    block = json_object_get(data, "content_block");

    if (!json_is_object(block)) {
        x->reason = "a content_block_start without a content block";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    /* a tool block left open ends here */

    if (ngx_http_llm_fallback_anthropic_stream_stop(x, out)
        != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    type = json_string_value(json_object_get(block, "type"));

    if (type == NULL) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    if (strcmp(type, "text") == 0) {
        v = json_object_get(block, "text");

        if (!json_is_string(v)) {
            return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
        }

        return ngx_http_llm_fallback_xlat_stream_text(x, out, v);
    }

    if (strcmp(type, "thinking") == 0) {
        v = json_object_get(block, "thinking");

        if (!json_is_string(v)) {
            return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
        }

        return ngx_http_llm_fallback_xlat_stream_reasoning(x, out, v);
    }

    if (strcmp(type, "redacted_thinking") == 0) {
        v = json_object_get(block, "data");

        if (!json_is_string(v) || json_string_length(v) == 0) {
            x->reason = "a redacted_thinking block without data";
            return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
        }

        return ngx_http_llm_fallback_xlat_stream_thinking(x, out,
                   json_pack("{s:s,s:O}", "type", "redacted_thinking",
                             "data", v));
    }

    if (strcmp(type, "tool_use") != 0) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    id = json_object_get(block, "id");
    name = json_object_get(block, "name");

    if (!json_is_string(id) || json_string_length(id) == 0
        || !json_is_string(name) || json_string_length(name) == 0)
    {
        x->reason = "a tool_use block without an id or a name";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    /* the arguments follow in input_json_delta events */

    if (ngx_http_llm_fallback_xlat_stream_tool(x, out, x->ntools,
            json_pack("{s:O,s:s,s:{s:O,s:s}}",
                      "id", id,
                      "type", "function",
                      "function",
                      "name", name,
                      "arguments", ""))
        != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    x->block_tool = ++x->ntools;
    x->block_args = 0;
    x->content = 1;

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
}


/*
 * content_block_delta: text, tool arguments, thinking (reasoning_content)
 * and the signature that ends a thinking block (thinking_blocks)
 */

static int
ngx_http_llm_fallback_anthropic_stream_delta(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out)
{
    json_t      *delta, *v;
    const char  *type;

    delta = json_object_get(data, "delta");

    if (!json_is_object(delta)) {
        x->reason = "a content_block_delta without a delta";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    type = json_string_value(json_object_get(delta, "type"));

    if (type == NULL) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    if (strcmp(type, "text_delta") == 0) {
        v = json_object_get(delta, "text");

        if (!json_is_string(v)) {
            x->reason = "a text_delta without text";
            return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
        }

        return ngx_http_llm_fallback_xlat_stream_text(x, out, v);
    }

    if (strcmp(type, "thinking_delta") == 0) {
        v = json_object_get(delta, "thinking");

        if (!json_is_string(v)) {
            x->reason = "a thinking_delta without thinking";
            return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
        }

        return ngx_http_llm_fallback_xlat_stream_reasoning(x, out, v);
    }

    if (strcmp(type, "signature_delta") == 0) {
        v = json_object_get(delta, "signature");

        if (!json_is_string(v) || json_string_length(v) == 0) {
            x->reason = "a signature_delta without a signature";
            return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
        }

        return ngx_http_llm_fallback_xlat_stream_thinking(x, out,
                   json_pack("{s:s,s:s,s:O}", "type", "thinking",
                             "thinking", "", "signature", v));
    }

    if (strcmp(type, "input_json_delta") != 0) {
        /* citations_delta */
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    v = json_object_get(delta, "partial_json");

    if (x->block_tool == 0 || !json_is_string(v)) {
        x->reason = "an input_json_delta outside a tool_use block";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    if (json_string_length(v) == 0) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    x->block_args = 1;

    return ngx_http_llm_fallback_xlat_stream_tool(x, out, x->block_tool - 1,
               json_pack("{s:{s:O}}", "function", "arguments", v));
}


/*
 * content_block_stop, or anything else that ends a tool block: a call
 * that got no arguments gets "{}", as a non-stream answer has it
 */

static int
ngx_http_llm_fallback_anthropic_stream_stop(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out)
{
    int  k;

    if (x->block_tool == 0) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    k = x->block_tool - 1;
    x->block_tool = 0;

    if (x->block_args) {
        x->block_args = 0;
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    return ngx_http_llm_fallback_xlat_stream_tool(x, out, k,
               json_pack("{s:{s:s}}", "function", "arguments", "{}"));
}


/* message_delta: the stop reason and the output tokens */

static int
ngx_http_llm_fallback_anthropic_stream_message(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out)
{
    const char  *reason;

    if (ngx_http_llm_fallback_anthropic_stream_stop(x, out)
        != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    ngx_http_llm_fallback_anthropic_stream_usage(x,
        json_object_get(data, "usage"));

    reason = json_string_value(json_object_get(json_object_get(data, "delta"),
                                               "stop_reason"));

    if (reason == NULL || x->finish_sent) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    return ngx_http_llm_fallback_xlat_stream_chunk(x, out, NULL, NULL,
               ngx_http_llm_fallback_xlat_map(
                   ngx_http_llm_fallback_anthropic_finish, reason,
                   x->ntools ? "tool_calls" : "stop"));
}


/*
 * usage of message_start (input and output) or message_delta (the
 * output, newer versions also the input): the counts are cumulative
 */

static void
ngx_http_llm_fallback_anthropic_stream_usage(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *usage)
{
    json_int_t  n;

    if (ngx_http_llm_fallback_xlat_stream_counts(x, usage,
            ngx_http_llm_fallback_anthropic_usage))
    {
        return;
    }

    n = ngx_http_llm_fallback_xlat_count(json_object_get(usage,
                                                         "output_tokens"));
    if (n >= 0) {
        x->completion_tokens = n;
    }
}


/* Gemini: one GenerateContentResponse of streamGenerateContent */

int
ngx_http_llm_fallback_gemini_stream(ngx_http_llm_fallback_xlat_stream_t *x,
    json_t *data, json_t *out)
{
    size_t  n;

    n = json_array_size(out);

    return ngx_http_llm_fallback_xlat_stream_undo(out, n,
               ngx_http_llm_fallback_gemini_stream_event(x, data, out));
}


static int
ngx_http_llm_fallback_gemini_stream_event(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *data, json_t *out)
{
    json_t      *usage, *candidate;
    const char  *reason, *finish;

    /* gemini_error also takes the [{"error": ...}] of a JSON array */

    if (json_object_get(data, "error")
        || json_object_get(json_array_get(data, 0), "error"))
    {
        return ngx_http_llm_fallback_xlat_stream_error(x,
                   ngx_http_llm_fallback_gemini_error(data));
    }

    if (!json_is_object(data)) {
        x->reason = "not a JSON object";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    ngx_http_llm_fallback_xlat_stream_keep(&x->provider_id,
                                           json_object_get(data,
                                                           "responseId"));
    ngx_http_llm_fallback_xlat_stream_keep(&x->provider_model,
                                           json_object_get(data,
                                                           "modelVersion"));

    /* the counts are of the whole answer so far: the last one wins */

    usage = json_object_get(data, "usageMetadata");

    if (usage) {
        (void) ngx_http_llm_fallback_xlat_stream_counts(x, usage,
                   ngx_http_llm_fallback_gemini_usage);
    }

    candidate = json_array_get(json_object_get(data, "candidates"), 0);

    if (!json_is_object(candidate)) {

        if (json_object_get(json_object_get(data, "promptFeedback"),
                            "blockReason"))
        {
            x->reason = "the prompt was blocked";
            return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
        }

        if (usage == NULL) {
            x->reason = "no candidates";
            return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
        }

        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    if (ngx_http_llm_fallback_gemini_stream_parts(x, candidate, out)
        != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    reason = json_string_value(json_object_get(candidate, "finishReason"));

    if (reason == NULL) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    x->done = 1;

    if (x->finish_sent) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    finish = ngx_http_llm_fallback_xlat_map(
                 ngx_http_llm_fallback_gemini_finish, reason, "stop");

    /* Gemini says STOP after function calls, OpenAI "tool_calls" */

    if (x->ntools && strcmp(finish, "stop") == 0) {
        finish = "tool_calls";
    }

    return ngx_http_llm_fallback_xlat_stream_chunk(x, out, NULL, NULL, finish);
}


/* a candidate's parts: text, thoughts (reasoning) and function calls */

static int
ngx_http_llm_fallback_gemini_stream_parts(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *candidate, json_t *out)
{
    size_t   i;
    json_t  *parts, *part, *v;

    parts = json_object_get(json_object_get(candidate, "content"), "parts");

    json_array_foreach(parts, i, part) {

        v = json_object_get(part, "text");

        if (json_is_true(json_object_get(part, "thought"))) {

            if (json_is_string(v)
                && ngx_http_llm_fallback_xlat_stream_reasoning(x, out, v)
                   != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
            {
                return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
            }

            continue;
        }

        if (json_is_string(v)) {

            if (ngx_http_llm_fallback_xlat_stream_text(x, out, v)
                != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
            {
                return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
            }

            continue;
        }

        if (json_is_string(json_object_get(json_object_get(part,
                                                           "functionCall"),
                                           "name"))
            && ngx_http_llm_fallback_gemini_stream_call(x, part, out)
               != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
        {
            return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
        }
    }

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
}


/*
 * a function call comes whole: its start chunk carries the arguments;
 * the id made for it is "call_<hex of x->id>_<k>"
 */

static int
ngx_http_llm_fallback_gemini_stream_call(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *part, json_t *out)
{
    size_t                                 skip;
    ngx_http_llm_fallback_xlat_response_t  r;

    skip = sizeof(NGX_HTTP_LLM_FALLBACK_XLAT_CHUNK_ID) - 1;

    memset(&r, 0, sizeof(ngx_http_llm_fallback_xlat_response_t));

    r.id = x->id;
    r.id_len = x->id_len;

    if (x->id && x->id_len > skip
        && memcmp(x->id, NGX_HTTP_LLM_FALLBACK_XLAT_CHUNK_ID, skip) == 0)
    {
        r.id += skip;
        r.id_len -= skip;
    }

    if (ngx_http_llm_fallback_xlat_stream_tool(x, out, x->ntools,
            ngx_http_llm_fallback_gemini_call(part, x->ntools, &r))
        != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    x->ntools++;
    x->content = 1;

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
}


/* OpenAI: a chunk checked, and completed in place */

int
ngx_http_llm_fallback_openai_stream(ngx_http_llm_fallback_xlat_stream_t *x,
    json_t *data)
{
    int          changed;
    size_t       i;
    json_t      *error, *choices, *choice, *delta, *usage, *v;
    json_int_t   n;

    if (!json_is_object(data)) {
        x->reason = "not a JSON object";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    error = json_object_get(data, "error");

    if (json_is_object(error)
        && json_is_string(json_object_get(error, "message")))
    {
        return ngx_http_llm_fallback_xlat_stream_error(x,
                   ngx_http_llm_fallback_xlat_error(
                       json_object_get(error, "type"),
                       json_object_get(error, "message"),
                       json_object_get(error, "code")));
    }

    choices = json_object_get(data, "choices");
    usage = json_object_get(data, "usage");

    if (!json_is_array(choices) && !json_is_object(usage)) {
        x->reason = "no \"choices\" array";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    json_array_foreach(choices, i, choice) {
        delta = json_object_get(choice, "delta");

        v = json_object_get(delta, "content");

        if (json_is_string(v) && json_string_length(v)) {
            x->content = 1;
        }

        v = json_object_get(delta, "refusal");

        if (json_is_string(v) && json_string_length(v)) {
            x->content = 1;
        }

        v = json_object_get(delta, "reasoning_content");

        if (json_is_string(v) && json_string_length(v)) {
            x->content = 1;
        }

        if (json_array_size(json_object_get(delta, "tool_calls"))
            || json_array_size(json_object_get(delta, "thinking_blocks")))
        {
            x->content = 1;
        }

        if (json_is_string(json_object_get(choice, "finish_reason"))) {
            x->finish_sent = 1;
        }
    }

    n = ngx_http_llm_fallback_xlat_count(json_object_get(usage,
                                                         "prompt_tokens"));
    if (n >= 0) {
        x->prompt_tokens = n;
    }

    n = ngx_http_llm_fallback_xlat_count(json_object_get(usage,
                                                         "completion_tokens"));
    if (n >= 0) {
        x->completion_tokens = n;
    }

    /* what some servers leave out or empty (Azure's first chunk) */

    changed = 0;

    /* an empty string is replaced only by one that is not empty */

    v = json_object_get(data, "id");

    if (!json_is_string(v) || (json_string_length(v) == 0 && x->id_len)) {
        if (json_object_set_new(data, "id",
                                json_stringn(x->id ? x->id : "", x->id_len))
            != 0)
        {
            goto failed;
        }

        changed = 1;
    }

    v = json_object_get(data, "object");

    if (!json_is_string(v) || json_string_length(v) == 0) {
        if (json_object_set_new(data, "object",
                                json_string("chat.completion.chunk"))
            != 0)
        {
            goto failed;
        }

        changed = 1;
    }

    v = json_object_get(data, "created");

    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        if (json_object_set_new(data, "created",
                                json_integer(x->created))
            != 0)
        {
            goto failed;
        }

        changed = 1;
    }

    v = json_object_get(data, "model");

    if (!json_is_string(v) || (json_string_length(v) == 0 && x->model_len)) {
        if (json_object_set_new(data, "model",
                                json_stringn(x->model ? x->model : "",
                                             x->model_len))
            != 0)
        {
            goto failed;
        }

        changed = 1;
    }

    /* OpenAI's schema requires "finish_reason" (null until the end) */

    json_array_foreach(choices, i, choice) {
        if (json_is_object(choice)
            && json_object_get(choice, "finish_reason") == NULL)
        {
            if (json_object_set_new(choice, "finish_reason", json_null())
                != 0)
            {
                goto failed;
            }

            changed = 1;
        }
    }

    return changed ? NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_CHANGED
                   : NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;

failed:

    x->reason = "out of memory";

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
}


/* the end of an Anthropic or Gemini stream */

int
ngx_http_llm_fallback_xlat_stream_end(ngx_http_llm_fallback_xlat_stream_t *x,
    json_t *out)
{
    size_t  n;

    n = json_array_size(out);

    return ngx_http_llm_fallback_xlat_stream_undo(out, n,
               ngx_http_llm_fallback_xlat_stream_finish(x, out));
}


/*
 * what is owed at the end (message_stop, or the end of the stream): an
 * open tool block closed, a finish chunk when there was content but no
 * finish reason, the usage chunk; each at most once
 */

static int
ngx_http_llm_fallback_xlat_stream_finish(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out)
{
    json_t  *chunk;

    if (ngx_http_llm_fallback_anthropic_stream_stop(x, out)
        != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    if (x->content && !x->finish_sent
        && ngx_http_llm_fallback_xlat_stream_chunk(x, out, NULL, NULL,
                                                   x->ntools ? "tool_calls"
                                                             : "stop")
           != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    if (!x->include_usage || x->usage_sent || x->prompt_tokens < 0
        || x->completion_tokens < 0)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    chunk = ngx_http_llm_fallback_xlat_stream_head(x, json_array());

    if (chunk == NULL) {
        goto failed;
    }

    if (json_object_set_new(chunk, "usage",
            ngx_http_llm_fallback_xlat_usage(x->prompt_tokens,
                                             x->completion_tokens,
                                             x->prompt_tokens
                                             + x->completion_tokens,
                                             -1,
                                             x->reasoning_known
                                             ? x->reasoning_tokens : -1))
        != 0)
    {
        json_decref(chunk);
        goto failed;
    }

    if (json_array_append_new(out, chunk) != 0) {
        goto failed;
    }

    x->usage_sent = 1;

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;

failed:

    x->reason = "out of memory";

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
}


void
ngx_http_llm_fallback_xlat_stream_free(ngx_http_llm_fallback_xlat_stream_t *x)
{
    json_decref(x->provider_id);
    json_decref(x->provider_model);

    x->provider_id = NULL;
    x->provider_model = NULL;
}


/*
 * a chunk with one choice appended to "out": a delta of "key": "value"
 * (the reference is taken; no key: an empty delta) and a finish reason
 * or null; the first chunk carries the role
 */

static int
ngx_http_llm_fallback_xlat_stream_chunk(ngx_http_llm_fallback_xlat_stream_t *x,
    json_t *out, const char *key, json_t *value, const char *finish)
{
    json_t  *delta, *chunk;

    if (x->usage_sent || x->finish_sent) {
        json_decref(value);
        x->reason = "content after the end of the answer";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    delta = json_object();

    if (delta == NULL) {
        json_decref(value);
        goto failed;
    }

    if (!x->role_sent
        && json_object_set_new(delta, "role", json_string("assistant")) != 0)
    {
        json_decref(value);
        json_decref(delta);
        goto failed;
    }

    if (key && json_object_set_new(delta, key, value) != 0) {
        json_decref(delta);
        goto failed;
    }

    chunk = ngx_http_llm_fallback_xlat_stream_head(x,
                json_pack("[{s:i,s:o,s:s?}]",
                          "index", 0,
                          "delta", delta,
                          "finish_reason", finish));

    if (json_array_append_new(out, chunk) != 0) {
        goto failed;
    }

    x->role_sent = 1;

    if (finish) {
        x->finish_sent = 1;
    }

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;

failed:

    x->reason = "out of memory";

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
}


/* a content delta of a string (borrowed), unless it is empty */

static int
ngx_http_llm_fallback_xlat_stream_text(ngx_http_llm_fallback_xlat_stream_t *x,
    json_t *out, json_t *text)
{
    if (json_string_length(text) == 0) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    if (ngx_http_llm_fallback_xlat_stream_chunk(x, out, "content",
                                                json_incref(text), NULL)
        != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    x->content = 1;

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
}


/* a reasoning_content delta of a string (borrowed), unless it is empty */

static int
ngx_http_llm_fallback_xlat_stream_reasoning(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out, json_t *text)
{
    if (json_string_length(text) == 0) {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
    }

    if (ngx_http_llm_fallback_xlat_stream_chunk(x, out, "reasoning_content",
                                                json_incref(text), NULL)
        != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    x->content = 1;

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
}


/* a thinking_blocks delta of one block (taken) */

static int
ngx_http_llm_fallback_xlat_stream_thinking(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *out, json_t *block)
{
    if (block == NULL) {
        x->reason = "out of memory";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    if (ngx_http_llm_fallback_xlat_stream_chunk(x, out, "thinking_blocks",
                                                json_pack("[o]", block), NULL)
        != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK)
    {
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    x->content = 1;

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
}


/* a tool_calls delta: "call" (taken) gets the index k in front */

static int
ngx_http_llm_fallback_xlat_stream_tool(ngx_http_llm_fallback_xlat_stream_t *x,
    json_t *out, int k, json_t *call)
{
    json_t  *tool;

    tool = json_pack("{s:i}", "index", k);

    if (call == NULL || tool == NULL || json_object_update(tool, call) != 0) {
        json_decref(call);
        json_decref(tool);
        x->reason = "out of memory";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    json_decref(call);

    return ngx_http_llm_fallback_xlat_stream_chunk(x, out, "tool_calls",
                                                   json_pack("[o]", tool),
                                                   NULL);
}


/*
 * id, object, created, model around "choices" (taken); the model of the
 * first chunk, the provider's or else the one asked for, stays
 */

static json_t *
ngx_http_llm_fallback_xlat_stream_head(ngx_http_llm_fallback_xlat_stream_t *x,
    json_t *choices)
{
    if (x->provider_model == NULL) {
        x->provider_model = json_stringn(x->model ? x->model : "",
                                         x->model_len);
    }

    return json_pack("{s:s%,s:s,s:I,s:O,s:o}",
                     "id", x->id ? x->id : "", x->id_len,
                     "object", "chat.completion.chunk",
                     "created", x->created,
                     "model", x->provider_model,
                     "choices", choices);
}


/* the counts of a provider usage object, 1 when it had them */

static int
ngx_http_llm_fallback_xlat_stream_counts(ngx_http_llm_fallback_xlat_stream_t *x,
    json_t *usage, ngx_http_llm_fallback_xlat_usage_pt count)
{
    json_t                                 *u;
    json_int_t                              n;
    ngx_http_llm_fallback_xlat_response_t   r;

    memset(&r, 0, sizeof(ngx_http_llm_fallback_xlat_response_t));

    r.prompt_tokens = -1;
    r.completion_tokens = -1;

    u = count(usage, &r);

    n = ngx_http_llm_fallback_xlat_count(
            json_object_get(json_object_get(u, "completion_tokens_details"),
                            "reasoning_tokens"));

    json_decref(u);

    if (r.prompt_tokens < 0 || r.completion_tokens < 0) {
        return 0;
    }

    x->prompt_tokens = r.prompt_tokens;
    x->completion_tokens = r.completion_tokens;

    if (n >= 0) {
        x->reasoning_tokens = n;
        x->reasoning_known = 1;
    }

    return 1;
}


/* the first non-empty string given is kept */

static void
ngx_http_llm_fallback_xlat_stream_keep(json_t **ref, json_t *v)
{
    if (*ref == NULL && json_is_string(v) && json_string_length(v)) {
        *ref = json_incref(v);
    }
}


/*
 * an in-band error (taken; NULL: the event was not a usable error); the
 * first one is kept, it is the caller's
 */

static int
ngx_http_llm_fallback_xlat_stream_error(ngx_http_llm_fallback_xlat_stream_t *x,
    json_t *error)
{
    if (error == NULL) {
        x->reason = "an error event without an error message";
        return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID;
    }

    if (x->error) {
        json_decref(error);

    } else {
        x->error = error;
    }

    return NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK;
}


/* an event that is not usable leaves "out" as it was */

static int
ngx_http_llm_fallback_xlat_stream_undo(json_t *out, size_t n, int rc)
{
    if (rc == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID) {
        while (json_array_size(out) > n) {
            json_array_remove(out, json_array_size(out) - 1);
        }
    }

    return rc;
}


/* the accumulator */

ngx_http_llm_fallback_xlat_acc_t *
ngx_http_llm_fallback_xlat_acc_create(size_t max)
{
    ngx_http_llm_fallback_xlat_acc_t  *acc;

    acc = calloc(1, sizeof(ngx_http_llm_fallback_xlat_acc_t));
    if (acc == NULL) {
        return NULL;
    }

    acc->max = max;

    return acc;
}


int
ngx_http_llm_fallback_xlat_acc_add(ngx_http_llm_fallback_xlat_acc_t *acc,
    json_t *chunk)
{
    size_t   i;
    json_t  *v, *choice;

    if (acc->failed) {
        return -1;
    }

    if (!json_is_object(chunk)) {
        goto failed;
    }

    if (ngx_http_llm_fallback_xlat_acc_keep(acc, &acc->id,
                                            json_object_get(chunk, "id"))
        != 0
        || ngx_http_llm_fallback_xlat_acc_keep(acc, &acc->model,
                                               json_object_get(chunk,
                                                               "model"))
           != 0)
    {
        goto failed;
    }

    v = json_object_get(chunk, "created");

    if (!acc->created_set && json_is_integer(v)) {
        acc->created = json_integer_value(v);
        acc->created_set = 1;
    }

    v = json_object_get(chunk, "usage");

    if (json_is_object(v)) {
        json_decref(acc->usage);
        acc->usage = json_incref(v);
    }

    json_array_foreach(json_object_get(chunk, "choices"), i, choice) {
        if (ngx_http_llm_fallback_xlat_acc_choice(acc, choice) != 0) {
            goto failed;
        }
    }

    return 0;

failed:

    acc->failed = 1;

    return -1;
}


/* one choice of a chunk; indexes past the cap are left out */

static int
ngx_http_llm_fallback_xlat_acc_choice(ngx_http_llm_fallback_xlat_acc_t *acc,
    json_t *choice)
{
    size_t                                    i;
    json_t                                   *v, *delta, *call;
    json_int_t                                n;
    ngx_http_llm_fallback_xlat_acc_choice_t  *c;

    v = json_object_get(choice, "index");
    n = json_is_integer(v) ? json_integer_value(v) : 0;

    if (n < 0 || n >= NGX_HTTP_LLM_FALLBACK_XLAT_ACC_CHOICES) {
        return 0;
    }

    c = &acc->choices[n];
    c->seen = 1;

    delta = json_object_get(choice, "delta");

    if (ngx_http_llm_fallback_xlat_acc_keep(acc, &c->role,
                                            json_object_get(delta, "role"))
        != 0
        || ngx_http_llm_fallback_xlat_acc_append(acc, &c->content,
               json_object_get(delta, "content"))
           != 0
        || ngx_http_llm_fallback_xlat_acc_append(acc, &c->refusal,
               json_object_get(delta, "refusal"))
           != 0
        || ngx_http_llm_fallback_xlat_acc_append(acc, &c->reasoning,
               json_object_get(delta, "reasoning_content"))
           != 0)
    {
        return -1;
    }

    json_array_foreach(json_object_get(delta, "thinking_blocks"), i, v) {
        if (ngx_http_llm_fallback_xlat_acc_block(acc, c, v) != 0) {
            return -1;
        }
    }

    json_array_foreach(json_object_get(delta, "tool_calls"), i, call) {
        if (ngx_http_llm_fallback_xlat_acc_tool(acc, c, call, i) != 0) {
            return -1;
        }
    }

    v = json_object_get(choice, "finish_reason");

    if (json_is_string(v)) {
        json_decref(c->finish);
        c->finish = json_incref(v);
    }

    return 0;
}


/*
 * a thinking block of a delta: one without its text gets the reasoning
 * since the previous block (a stream's signature_delta), one with it is
 * kept as it is (a replayed answer); its bytes are counted
 */

static int
ngx_http_llm_fallback_xlat_acc_block(ngx_http_llm_fallback_xlat_acc_t *acc,
    ngx_http_llm_fallback_xlat_acc_choice_t *c, json_t *block)
{
    size_t       len;
    json_t      *b, *text, *sig, *data;
    const char  *type;

    type = json_string_value(json_object_get(block, "type"));
    text = json_object_get(block, "thinking");
    sig = json_object_get(block, "signature");
    data = json_object_get(block, "data");

    if (type && strcmp(type, "thinking") == 0 && json_is_string(sig)) {

        if (json_is_string(text) && json_string_length(text)) {
            text = json_incref(text);

        } else {
            text = json_stringn(c->reasoning.data
                                ? c->reasoning.data + c->mark : "",
                                c->reasoning.len - c->mark);
        }

        c->mark = c->reasoning.len;

        if (text == NULL) {
            return -1;
        }

        b = json_pack("{s:s,s:o,s:O}",
                      "type", "thinking",
                      "thinking", text,
                      "signature", sig);

        len = json_string_length(json_object_get(b, "thinking"))
              + json_string_length(sig);

    } else if (type && strcmp(type, "redacted_thinking") == 0
               && json_is_string(data))
    {
        b = json_pack("{s:s,s:O}", "type", "redacted_thinking", "data", data);
        len = json_string_length(data);

    } else {
        return 0;
    }

    if (b == NULL || len > acc->max - acc->total) {
        json_decref(b);
        return -1;
    }

    acc->total += len;

    if (c->blocks == NULL) {
        c->blocks = json_array();

        if (c->blocks == NULL) {
            json_decref(b);
            return -1;
        }
    }

    return json_array_append_new(c->blocks, b);
}


/* a tool call delta, by its index (else its place in the delta) */

static int
ngx_http_llm_fallback_xlat_acc_tool(ngx_http_llm_fallback_xlat_acc_t *acc,
    ngx_http_llm_fallback_xlat_acc_choice_t *c, json_t *call, size_t pos)
{
    size_t                                  size;
    json_t                                 *v, *fn;
    json_int_t                              k;
    ngx_http_llm_fallback_xlat_acc_tool_t  *t;

    if (!json_is_object(call)) {
        return 0;
    }

    v = json_object_get(call, "index");
    k = json_is_integer(v) ? json_integer_value(v) : (json_int_t) pos;

    if (k < 0 || k >= NGX_HTTP_LLM_FALLBACK_XLAT_ACC_TOOLS) {
        return -1;
    }

    if ((size_t) k >= c->ntools) {
        size = c->ntools ? c->ntools * 2 : 4;

        if (size <= (size_t) k) {
            size = (size_t) k + 1;
        }

        t = realloc(c->tools,
                    size * sizeof(ngx_http_llm_fallback_xlat_acc_tool_t));
        if (t == NULL) {
            return -1;
        }

        memset(t + c->ntools, 0,
               sizeof(ngx_http_llm_fallback_xlat_acc_tool_t)
               * (size - c->ntools));

        c->tools = t;
        c->ntools = size;
    }

    t = &c->tools[k];
    t->seen = 1;

    fn = json_object_get(call, "function");
    v = json_object_get(call, "extra_content");

    if (t->extra == NULL && json_is_object(v)) {
        t->extra = json_incref(v);
    }

    if (ngx_http_llm_fallback_xlat_acc_keep(acc, &t->id,
                                            json_object_get(call, "id"))
        != 0
        || ngx_http_llm_fallback_xlat_acc_keep(acc, &t->type,
                                               json_object_get(call, "type"))
           != 0
        || ngx_http_llm_fallback_xlat_acc_keep(acc, &t->name,
                                               json_object_get(fn, "name"))
           != 0)
    {
        return -1;
    }

    return ngx_http_llm_fallback_xlat_acc_append(acc, &t->arguments,
               json_object_get(fn, "arguments"));
}


/* the first non-empty string given is kept, its bytes counted */

static int
ngx_http_llm_fallback_xlat_acc_keep(ngx_http_llm_fallback_xlat_acc_t *acc,
    json_t **ref, json_t *v)
{
    size_t  len;

    if (*ref || !json_is_string(v)) {
        return 0;
    }

    len = json_string_length(v);

    if (len == 0) {
        return 0;
    }

    if (len > acc->max - acc->total) {
        return -1;
    }

    acc->total += len;
    *ref = json_incref(v);

    return 0;
}


/* a string appended (anything else is left out), its bytes counted */

static int
ngx_http_llm_fallback_xlat_acc_append(ngx_http_llm_fallback_xlat_acc_t *acc,
    ngx_http_llm_fallback_xlat_buf_t *buf, json_t *v)
{
    char    *p;
    size_t   len, size;

    len = json_string_length(v);

    if (len == 0) {
        return 0;
    }

    if (len > acc->max - acc->total) {
        return -1;
    }

    acc->total += len;

    if (buf->size - buf->len < len) {
        size = (buf->size > SIZE_MAX / 2) ? SIZE_MAX : buf->size * 2;

        if (size < buf->len + len) {
            size = buf->len + len;
        }

        if (size < NGX_HTTP_LLM_FALLBACK_XLAT_ACC_MIN) {
            size = NGX_HTTP_LLM_FALLBACK_XLAT_ACC_MIN;
        }

        p = realloc(buf->data, size);
        if (p == NULL) {
            return -1;
        }

        buf->data = p;
        buf->size = size;
    }

    memcpy(buf->data + buf->len, json_string_value(v), len);
    buf->len += len;

    return 0;
}


/*
 * the chat.completion, or NULL: the accumulator gave up, no chunk had a
 * choice, or a choice has no finish_reason (the stream did not end)
 */

json_t *
ngx_http_llm_fallback_xlat_acc_completion(
    ngx_http_llm_fallback_xlat_acc_t *acc)
{
    size_t                                    i;
    json_t                                   *choices, *choice, *c;
    ngx_http_llm_fallback_xlat_acc_choice_t  *ch;

    if (acc->failed) {
        return NULL;
    }

    choices = json_array();
    if (choices == NULL) {
        return NULL;
    }

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_XLAT_ACC_CHOICES; i++) {
        ch = &acc->choices[i];

        if (!ch->seen) {
            continue;
        }

        if (ch->finish == NULL) {
            goto failed;
        }

        choice = json_pack("{s:I,s:o,s:n,s:O}",
                           "index", (json_int_t) i,
                           "message",
                           ngx_http_llm_fallback_xlat_acc_message(ch),
                           "logprobs",
                           "finish_reason", ch->finish);

        if (json_array_append_new(choices, choice) != 0) {
            goto failed;
        }
    }

    if (json_array_size(choices) == 0) {
        goto failed;
    }

    c = json_pack("{s:o,s:s,s:I,s:o,s:o}",
                  "id", ngx_http_llm_fallback_xlat_acc_string(acc->id, ""),
                  "object", "chat.completion",
                  "created", acc->created,
                  "model",
                  ngx_http_llm_fallback_xlat_acc_string(acc->model, ""),
                  "choices", choices);

    if (c && acc->usage
        && json_object_set(c, "usage", acc->usage) != 0)
    {
        json_decref(c);
        return NULL;
    }

    return c;

failed:

    json_decref(choices);

    return NULL;
}


/*
 * {"role", "content", "refusal", "reasoning_content"?, "thinking_blocks"?,
 * "tool_calls"?}: "content" is null when
 * there are tool calls or a refusal but no text; "refusal" (OpenAI's
 * schema requires it) is null when there is none
 */

static json_t *
ngx_http_llm_fallback_xlat_acc_message(
    ngx_http_llm_fallback_xlat_acc_choice_t *c)
{
    json_t  *m, *content, *calls;

    calls = ngx_http_llm_fallback_xlat_acc_tools(c);
    if (calls == NULL) {
        return NULL;
    }

    if (c->content.len) {
        content = ngx_http_llm_fallback_xlat_acc_text(&c->content);

    } else if (json_array_size(calls) || c->refusal.len) {
        content = json_null();

    } else {
        content = json_string("");
    }

    m = json_pack("{s:o,s:o,s:o}",
                  "role",
                  ngx_http_llm_fallback_xlat_acc_string(c->role, "assistant"),
                  "content", content,
                  "refusal",
                  c->refusal.len
                  ? ngx_http_llm_fallback_xlat_acc_text(&c->refusal)
                  : json_null());

    if (m == NULL) {
        json_decref(calls);
        return NULL;
    }

    if (c->reasoning.len
        && json_object_set_new(m, "reasoning_content",
                               ngx_http_llm_fallback_xlat_acc_text(
                                   &c->reasoning))
           != 0)
    {
        goto failed;
    }

    if (json_array_size(c->blocks)
        && json_object_set(m, "thinking_blocks", c->blocks) != 0)
    {
        goto failed;
    }

    if (json_array_size(calls)
        && json_object_set(m, "tool_calls", calls) != 0)
    {
        goto failed;
    }

    json_decref(calls);

    return m;

failed:

    json_decref(calls);
    json_decref(m);

    return NULL;
}


/* the tool calls in the order of their indexes */

static json_t *
ngx_http_llm_fallback_xlat_acc_tools(ngx_http_llm_fallback_xlat_acc_choice_t *c)
{
    size_t                                  i;
    json_t                                 *calls, *call;
    ngx_http_llm_fallback_xlat_acc_tool_t  *t;

    calls = json_array();
    if (calls == NULL) {
        return NULL;
    }

    for (i = 0; i < c->ntools; i++) {
        t = &c->tools[i];

        if (!t->seen) {
            continue;
        }

        call = json_pack("{s:o,s:o,s:{s:o,s:o}}",
                         "id", ngx_http_llm_fallback_xlat_acc_string(t->id, ""),
                         "type",
                         ngx_http_llm_fallback_xlat_acc_string(t->type,
                                                               "function"),
                         "function",
                         "name",
                         ngx_http_llm_fallback_xlat_acc_string(t->name, ""),
                         "arguments",
                         ngx_http_llm_fallback_xlat_acc_text(&t->arguments));

        if (t->extra && call
            && json_object_set(call, "extra_content", t->extra) != 0)
        {
            json_decref(call);
            call = NULL;
        }

        if (json_array_append_new(calls, call) != 0) {
            json_decref(calls);
            return NULL;
        }
    }

    return calls;
}


/* a new reference to a kept string, or to a default */

static json_t *
ngx_http_llm_fallback_xlat_acc_string(json_t *v, const char *dflt)
{
    return v ? json_incref(v) : json_string(dflt);
}


static json_t *
ngx_http_llm_fallback_xlat_acc_text(ngx_http_llm_fallback_xlat_buf_t *buf)
{
    return json_stringn(buf->data ? buf->data : "", buf->len);
}


void
ngx_http_llm_fallback_xlat_acc_free(ngx_http_llm_fallback_xlat_acc_t *acc)
{
    size_t                                    i, j;
    ngx_http_llm_fallback_xlat_acc_tool_t    *t;
    ngx_http_llm_fallback_xlat_acc_choice_t  *c;

    if (acc == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_XLAT_ACC_CHOICES; i++) {
        c = &acc->choices[i];

        for (j = 0; j < c->ntools; j++) {
            t = &c->tools[j];

            json_decref(t->id);
            json_decref(t->type);
            json_decref(t->name);
            json_decref(t->extra);
            free(t->arguments.data);
        }

        json_decref(c->role);
        json_decref(c->finish);
        json_decref(c->blocks);
        free(c->content.data);
        free(c->refusal.data);
        free(c->reasoning.data);
        free(c->tools);
    }

    json_decref(acc->id);
    json_decref(acc->model);
    json_decref(acc->usage);

    free(acc);
}
