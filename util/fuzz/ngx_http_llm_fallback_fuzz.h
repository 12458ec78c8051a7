
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#ifndef _NGX_HTTP_LLM_FALLBACK_FUZZ_H_INCLUDED_
#define _NGX_HTTP_LLM_FALLBACK_FUZZ_H_INCLUDED_


/*
 * Shared by the libFuzzer harnesses: each harness feeds arbitrary bytes,
 * parsed as JSON, to one pure translator and checks what it promises:
 * the input is not modified, the output is well-formed for its target,
 * nothing leaks (LeakSanitizer) or overflows (ASan, UBSan).  A broken
 * promise aborts, which libFuzzer reports as a crash.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "ngx_http_llm_fallback_translate.h"


#define NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(cond)                               \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__,          \
                    __LINE__, #cond);                                         \
            abort();                                                          \
        }                                                                     \
    } while (0)


typedef json_t *(*ngx_http_llm_fallback_fuzz_response_pt)(json_t *resp,
    ngx_http_llm_fallback_xlat_response_t *x);
typedef json_t *(*ngx_http_llm_fallback_fuzz_error_pt)(json_t *body);
typedef int (*ngx_http_llm_fallback_fuzz_stream_pt)(
    ngx_http_llm_fallback_xlat_stream_t *x, const char *type, json_t *data,
    json_t *out);


/* what a translated stream has shown so far */
typedef struct {
    ngx_http_llm_fallback_xlat_stream_t   x;
    ngx_http_llm_fallback_xlat_acc_t     *acc;
    json_t                               *model;
    size_t                                chunks;
    size_t                                text;
    int                                   started;
    unsigned                              content:1;
    unsigned                              finished:1;
    unsigned                              usage:1;
    unsigned                              acc_small:1;
} ngx_http_llm_fallback_fuzz_stream_t;


static json_t *ngx_http_llm_fallback_fuzz_load(const uint8_t *data,
    size_t size);
static char *ngx_http_llm_fallback_fuzz_dump(json_t *json);
static void ngx_http_llm_fallback_fuzz_same(json_t *in, char *before);
static void ngx_http_llm_fallback_fuzz_round_trip(json_t *out);
static void ngx_http_llm_fallback_fuzz_turns(json_t *turns, const char *key);
static void ngx_http_llm_fallback_fuzz_completion_head(json_t *c);
static void ngx_http_llm_fallback_fuzz_completion(json_t *c,
    ngx_http_llm_fallback_xlat_response_t *x);
static void ngx_http_llm_fallback_fuzz_error(json_t *e);
static void ngx_http_llm_fallback_fuzz_params(
    ngx_http_llm_fallback_xlat_request_t *x, size_t size);
static void ngx_http_llm_fallback_fuzz_response_params(
    ngx_http_llm_fallback_xlat_response_t *x, size_t size);
static int ngx_http_llm_fallback_fuzz_response(const uint8_t *data,
    size_t size, ngx_http_llm_fallback_fuzz_response_pt response,
    ngx_http_llm_fallback_fuzz_error_pt error);
static const uint8_t *ngx_http_llm_fallback_fuzz_line(const uint8_t **p,
    const uint8_t *end, size_t *len);
static void ngx_http_llm_fallback_fuzz_stream_params(
    ngx_http_llm_fallback_xlat_stream_t *x, size_t size);
static ngx_http_llm_fallback_xlat_acc_t *ngx_http_llm_fallback_fuzz_acc(
    size_t size);
static void ngx_http_llm_fallback_fuzz_chunk(
    ngx_http_llm_fallback_fuzz_stream_t *s, json_t *chunk);
static void ngx_http_llm_fallback_fuzz_chunks(
    ngx_http_llm_fallback_fuzz_stream_t *s, json_t *out, size_t n);
static void ngx_http_llm_fallback_fuzz_accumulated(json_t *c);
static int ngx_http_llm_fallback_fuzz_stream(const uint8_t *data,
    size_t size, ngx_http_llm_fallback_fuzz_stream_pt stream);


static json_t *
ngx_http_llm_fallback_fuzz_load(const uint8_t *data, size_t size)
{
    json_error_t  err;

    return json_loadb((const char *) data, size, 0, &err);
}


static char *
ngx_http_llm_fallback_fuzz_dump(json_t *json)
{
    char  *s;

    s = json_dumps(json, JSON_COMPACT|JSON_SORT_KEYS|JSON_ENCODE_ANY);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s != NULL);

    return s;
}


/* the input was not modified */

static void
ngx_http_llm_fallback_fuzz_same(json_t *in, char *before)
{
    char  *after;

    after = ngx_http_llm_fallback_fuzz_dump(in);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(before, after) == 0);

    free(after);
    free(before);
}


/* a translated request survives serialisation and parsing */

static void
ngx_http_llm_fallback_fuzz_round_trip(json_t *out)
{
    char    *s;
    json_t  *again;

    s = ngx_http_llm_fallback_fuzz_dump(out);
    again = json_loads(s, 0, NULL);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(again));

    json_decref(again);
    free(s);
}


/*
 * turns alternate, none is empty; "content" (Anthropic: a non-empty
 * string or array) or "parts" (Gemini: a non-empty array)
 */

static void
ngx_http_llm_fallback_fuzz_turns(json_t *turns, const char *key)
{
    size_t       i;
    json_t      *t, *c;
    const char  *role, *prev;

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_array(turns));

    prev = NULL;

    json_array_foreach(turns, i, t) {
        role = json_string_value(json_object_get(t, "role"));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(role != NULL);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(prev == NULL
                                          || strcmp(prev, role) != 0);

        c = json_object_get(t, key);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            (json_is_string(c) && json_string_length(c) > 0)
            || (json_is_array(c) && json_array_size(c) > 0));

        prev = role;
    }
}


/* the top of a chat.completion: id, object, created, model, choices */

static void
ngx_http_llm_fallback_fuzz_completion_head(json_t *c)
{
    const char  *s;

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(c));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_string(json_object_get(c, "id")));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_string(json_object_get(c, "model")));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_integer(json_object_get(c, "created")));

    s = json_string_value(json_object_get(c, "object"));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s && strcmp(s, "chat.completion") == 0);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_array_size(json_object_get(c, "choices")) > 0);
}


/* an OpenAI chat.completion, as the module sends and replays it */

static void
ngx_http_llm_fallback_fuzz_completion(json_t *c,
    ngx_http_llm_fallback_xlat_response_t *x)
{
    size_t       i, j;
    json_t      *choice, *m, *content, *calls, *call, *args, *a;
    const char  *s;

    ngx_http_llm_fallback_fuzz_completion_head(c);

    json_array_foreach(json_object_get(c, "choices"), i, choice) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_integer_value(json_object_get(choice, "index"))
            == (json_int_t) i);

        s = json_string_value(json_object_get(choice, "finish_reason"));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s != NULL
                                          && (strcmp(s, "stop") == 0
                                              || strcmp(s, "length") == 0
                                              || strcmp(s, "tool_calls") == 0
                                              || strcmp(s, "content_filter")
                                                 == 0));

        m = json_object_get(choice, "message");
        content = json_object_get(m, "content");
        calls = json_object_get(m, "tool_calls");

        /* what OpenAI's schema requires of a choice and its message */

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_null(json_object_get(choice, "logprobs")));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_null(json_object_get(m, "refusal")));

        s = json_string_value(json_object_get(m, "role"));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s != NULL
                                          && strcmp(s, "assistant") == 0);

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(content)
                                          || json_is_null(content));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            (json_is_string(content) && json_string_length(content))
            || json_array_size(calls) > 0);

        /* reasoning: text, and Anthropic's thinking blocks */

        a = json_object_get(m, "reasoning_content");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(a == NULL
                                          || (json_is_string(a)
                                              && json_string_length(a)));

        a = json_object_get(m, "thinking_blocks");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(a == NULL
                                          || json_array_size(a) > 0);

        json_array_foreach(calls, j, call) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_is_string(json_object_get(call, "id")));

            args = json_object_get(json_object_get(call, "function"),
                                   "arguments");
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(args));

            a = json_loads(json_string_value(args), JSON_DECODE_ANY, NULL);
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(a != NULL);
            json_decref(a);
        }
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(x->prompt_tokens >= -1
                                      && x->completion_tokens >= -1);
}


static void
ngx_http_llm_fallback_fuzz_error(json_t *e)
{
    if (e == NULL) {
        return;
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_string(json_object_get(e, "message")));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_string(json_object_get(e, "type")));

    /* OpenAI's schema: "param" and "code" are there, strings or null */

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_null(json_object_get(e, "param")));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_null(json_object_get(e, "code"))
        || json_is_string(json_object_get(e, "code")));

    json_decref(e);
}


/* request parameters varied by the input */

static void
ngx_http_llm_fallback_fuzz_params(ngx_http_llm_fallback_xlat_request_t *x,
    size_t size)
{
    memset(x, 0, sizeof(ngx_http_llm_fallback_xlat_request_t));

    if (size & 1) {
        x->model = "fuzz-model";
        x->model_len = sizeof("fuzz-model") - 1;
    }

    x->max_tokens = (size & 2) ? 1024 : 0;
    x->stream = (size & 4) ? 1 : 0;
}


static void
ngx_http_llm_fallback_fuzz_response_params(
    ngx_http_llm_fallback_xlat_response_t *x, size_t size)
{
    memset(x, 0, sizeof(ngx_http_llm_fallback_xlat_response_t));

    if (size & 1) {
        x->model = "fuzz-model";
        x->model_len = sizeof("fuzz-model") - 1;
    }

    x->id = "0123456789abcdef01234567";
    x->id_len = 24;
    x->created = 1700000000;
}


/* an answer (and, from the same bytes, an error body) of the provider */

static int
ngx_http_llm_fallback_fuzz_response(const uint8_t *data, size_t size,
    ngx_http_llm_fallback_fuzz_response_pt response,
    ngx_http_llm_fallback_fuzz_error_pt error)
{
    char                                   *before;
    json_t                                 *in, *out;
    ngx_http_llm_fallback_xlat_response_t   x;

    in = ngx_http_llm_fallback_fuzz_load(data, size);
    if (in == NULL) {
        return 0;
    }

    before = ngx_http_llm_fallback_fuzz_dump(in);

    ngx_http_llm_fallback_fuzz_response_params(&x, size);

    out = response(in, &x);

    if (out) {
        ngx_http_llm_fallback_fuzz_completion(out, &x);
        json_decref(out);

    } else {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(x.reason != NULL);
    }

    ngx_http_llm_fallback_fuzz_error(error(in));

    ngx_http_llm_fallback_fuzz_same(in, before);
    json_decref(in);

    return 0;
}


/*
 * Streams: the input is a sequence of events, one a line; the
 * Anthropic harness takes a first word before the JSON ("message_start
 * {...}") as the SSE event name.
 */

static const uint8_t *
ngx_http_llm_fallback_fuzz_line(const uint8_t **p, const uint8_t *end,
    size_t *len)
{
    const uint8_t  *line, *nl;

    if (*p >= end) {
        return NULL;
    }

    line = *p;
    nl = memchr(line, '\n', end - line);

    *len = (nl ? nl : end) - line;
    *p = nl ? nl + 1 : end;

    return line;
}


static void
ngx_http_llm_fallback_fuzz_stream_params(
    ngx_http_llm_fallback_xlat_stream_t *x, size_t size)
{
    memset(x, 0, sizeof(ngx_http_llm_fallback_xlat_stream_t));

    if (size & 1) {
        x->model = "fuzz-model";
        x->model_len = sizeof("fuzz-model") - 1;
    }

    x->id = "chatcmpl-0123456789abcdef01234567";
    x->id_len = sizeof("chatcmpl-0123456789abcdef01234567") - 1;
    x->created = 1700000000;
    x->include_usage = (size & 2) ? 1 : 0;
    x->prompt_tokens = -1;
    x->completion_tokens = -1;
}


/* an accumulator that now and then is too small */

static ngx_http_llm_fallback_xlat_acc_t *
ngx_http_llm_fallback_fuzz_acc(size_t size)
{
    ngx_http_llm_fallback_xlat_acc_t  *acc;

    acc = ngx_http_llm_fallback_xlat_acc_create((size & 4) ? 24 : 1 << 24);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(acc != NULL);

    return acc;
}


/*
 * a translated chunk keeps the promises of ngx_http_llm_fallback_xlat_
 * stream.c: the caller's id and created, one model, the role first, tool
 * call indexes in order, nothing but usage after the finish, nothing
 * after usage
 */

static void
ngx_http_llm_fallback_fuzz_chunk(ngx_http_llm_fallback_fuzz_stream_t *s,
    json_t *chunk)
{
    json_t      *choices, *choice, *delta, *v, *calls, *call, *fn, *u;
    const char  *str, *key;
    json_int_t   k;

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(chunk));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!s->usage);

    str = json_string_value(json_object_get(chunk, "id"));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(str && strcmp(str, s->x.id) == 0);

    str = json_string_value(json_object_get(chunk, "object"));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(str
                                      && strcmp(str, "chat.completion.chunk")
                                         == 0);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_integer_value(json_object_get(chunk, "created"))
        == s->x.created);

    v = json_object_get(chunk, "model");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v));

    if (s->model == NULL) {
        s->model = json_incref(v);
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_equal(s->model, v));

    choices = json_object_get(chunk, "choices");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_array(choices));

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        ngx_http_llm_fallback_xlat_acc_add(s->acc, chunk) == 0
        || s->acc_small || s->started >= 128);

    if (json_array_size(choices) == 0) {

        /* the usage chunk */

        u = json_object_get(chunk, "usage");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s->x.include_usage);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_integer_value(json_object_get(u, "total_tokens"))
            == json_integer_value(json_object_get(u, "prompt_tokens"))
               + json_integer_value(json_object_get(u, "completion_tokens")));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_integer_value(json_object_get(u, "prompt_tokens")) >= 0
            && json_integer_value(json_object_get(u, "completion_tokens"))
               >= 0);

        s->usage = 1;
        s->chunks++;
        return;
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_array_size(choices) == 1);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!s->finished);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_object_get(chunk, "usage") == NULL);

    choice = json_array_get(choices, 0);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_integer(json_object_get(choice, "index"))
        && json_integer_value(json_object_get(choice, "index")) == 0);

    delta = json_object_get(choice, "delta");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(delta));

    /* the role is in the first chunk, and only there */

    str = json_string_value(json_object_get(delta, "role"));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT((s->chunks == 0) == (str != NULL));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(str == NULL
                                      || strcmp(str, "assistant") == 0);

    json_object_foreach(delta, key, v) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            strcmp(key, "role") == 0
            || strcmp(key, "content") == 0
            || strcmp(key, "reasoning_content") == 0
            || strcmp(key, "thinking_blocks") == 0
            || strcmp(key, "tool_calls") == 0);
    }

    /* reasoning: text, or one thinking block (see translate.h) */

    v = json_object_get(delta, "reasoning_content");

    if (v) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v)
                                          && json_string_length(v));
        s->content = 1;
    }

    v = json_object_get(delta, "thinking_blocks");

    if (v) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_array_size(v) == 1);

        v = json_array_get(v, 0);
        str = json_string_value(json_object_get(v, "type"));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(str != NULL);

        if (strcmp(str, "thinking") == 0) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_string_length(json_object_get(v, "signature")) > 0
                && json_is_string(json_object_get(v, "thinking"))
                && json_string_length(json_object_get(v, "thinking")) == 0);

        } else {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                strcmp(str, "redacted_thinking") == 0
                && json_string_length(json_object_get(v, "data")) > 0);
        }

        s->content = 1;
    }

    v = json_object_get(delta, "content");

    if (v) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v));

        if (json_string_length(v)) {
            s->content = 1;
            s->text += json_string_length(v);
        }
    }

    calls = json_object_get(delta, "tool_calls");

    if (calls) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_array_size(calls) == 1);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_object_get(delta, "content") == NULL);

        call = json_array_get(calls, 0);
        fn = json_object_get(call, "function");

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_integer(json_object_get(call, "index")));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_string(json_object_get(fn, "arguments")));

        k = json_integer_value(json_object_get(call, "index"));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(k >= 0 && k <= s->started);

        if (k == s->started) {
            /* the start of a call */

            v = json_object_get(call, "id");
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v)
                                              && json_string_length(v));
            v = json_object_get(fn, "name");
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v)
                                              && json_string_length(v));
            str = json_string_value(json_object_get(call, "type"));
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(str
                                              && strcmp(str, "function")
                                                 == 0);
            s->started++;

        } else {
            /* more arguments of a call started */

            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_object_size(call) == 2
                                              && json_object_size(fn) == 1);
        }

        s->content = 1;
    }

    v = json_object_get(choice, "finish_reason");

    if (!json_is_null(v)) {
        str = json_string_value(v);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(str != NULL
                                          && (strcmp(str, "stop") == 0
                                              || strcmp(str, "length") == 0
                                              || strcmp(str, "tool_calls") == 0
                                              || strcmp(str, "content_filter")
                                                 == 0));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_object_get(delta, "content") == NULL && calls == NULL
            && json_object_get(delta, "reasoning_content") == NULL
            && json_object_get(delta, "thinking_blocks") == NULL);

        s->finished = 1;
    }

    s->chunks++;
}


/* the chunks a translator appended to "out" from the n-th on */

static void
ngx_http_llm_fallback_fuzz_chunks(ngx_http_llm_fallback_fuzz_stream_t *s,
    json_t *out, size_t n)
{
    for ( /* void */ ; n < json_array_size(out); n++) {
        ngx_http_llm_fallback_fuzz_chunk(s, json_array_get(out, n));
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s->x.ntools == s->started);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s->x.content == s->content);
}


/* the accumulated chat.completion */

static void
ngx_http_llm_fallback_fuzz_accumulated(json_t *c)
{
    char        *dump;
    size_t       i, j;
    json_t      *choice, *m, *content, *calls, *call, *fn, *v;
    json_int_t   prev;

    ngx_http_llm_fallback_fuzz_completion_head(c);

    v = json_object_get(c, "usage");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(v == NULL || json_is_object(v));

    prev = -1;

    json_array_foreach(json_object_get(c, "choices"), i, choice) {
        v = json_object_get(choice, "index");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_integer(v)
                                          && json_integer_value(v) > prev);
        prev = json_integer_value(v);

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_string(json_object_get(choice, "finish_reason")));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_null(json_object_get(choice, "logprobs")));

        m = json_object_get(choice, "message");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_string(json_object_get(m, "role")));

        content = json_object_get(m, "content");
        calls = json_object_get(m, "tool_calls");
        v = json_object_get(m, "refusal");

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(content)
                                          || json_is_null(content));
        /* "refusal" is always there (OpenAI's schema): null or text */

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_null(v)
                                          || (json_is_string(v)
                                              && json_string_length(v)));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(calls == NULL
                                          || json_array_size(calls) > 0);

        v = json_object_get(m, "reasoning_content");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(v == NULL
                                          || (json_is_string(v)
                                              && json_string_length(v)));

        json_array_foreach(json_object_get(m, "thinking_blocks"), j, fn) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_is_string(json_object_get(fn, "type")));
        }

        v = json_object_get(m, "refusal");

        /* null only in place of text, never for nothing at all */

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_string(content)
            ? (json_string_length(content) > 0
               || (calls == NULL && json_is_null(v)))
            : (calls != NULL || json_is_string(v)));

        json_array_foreach(calls, j, call) {
            fn = json_object_get(call, "function");

            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_is_string(json_object_get(call, "id")));
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_is_string(json_object_get(call, "type")));
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_is_string(json_object_get(fn, "name")));
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_is_string(json_object_get(fn, "arguments")));
        }
    }

    dump = ngx_http_llm_fallback_fuzz_dump(c);
    free(dump);
}


/*
 * a translated stream (Anthropic, Gemini): every event in order, until
 * one is not usable or is an error, as the module does; then the end,
 * twice (the second adds nothing), and the accumulated completion
 */

static int
ngx_http_llm_fallback_fuzz_stream(const uint8_t *data, size_t size,
    ngx_http_llm_fallback_fuzz_stream_pt stream)
{
    int                                   rc, ended;
    char                                  name[64];
    size_t                                len, n;
    json_t                               *out, *ev, *c, *m;
    const char                           *type;
    const uint8_t                        *p, *end, *line, *sp;
    ngx_http_llm_fallback_fuzz_stream_t   s;

    memset(&s, 0, sizeof(ngx_http_llm_fallback_fuzz_stream_t));

    ngx_http_llm_fallback_fuzz_stream_params(&s.x, size);
    s.acc = ngx_http_llm_fallback_fuzz_acc(size);
    s.acc_small = (size & 4) ? 1 : 0;

    out = json_array();
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(out != NULL);

    p = data;
    end = data + size;
    ended = 1;

    while ((line = ngx_http_llm_fallback_fuzz_line(&p, end, &len)) != NULL) {
        type = NULL;

        if (len && line[0] != '{' && line[0] != '[') {
            sp = memchr(line, ' ', len);

            if (sp && (size_t) (sp - line) < sizeof(name)) {
                memcpy(name, line, sp - line);
                name[sp - line] = '\0';
                type = name;

                len -= sp + 1 - line;
                line = sp + 1;
            }
        }

        ev = ngx_http_llm_fallback_fuzz_load(line, len);
        if (ev == NULL) {
            continue;
        }

        n = json_array_size(out);
        s.x.reason = NULL;

        rc = stream(&s.x, type, ev, out);

        json_decref(ev);

        if (rc != NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                rc == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID);
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s.x.reason != NULL);
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_array_size(out) == n);
            ended = 0;
            break;
        }

        ngx_http_llm_fallback_fuzz_chunks(&s, out, n);

        if (s.x.error) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_is_string(json_object_get(s.x.error, "message")));
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_is_string(json_object_get(s.x.error, "type")));
            ended = 0;
            break;
        }
    }

    if (ended) {
        n = json_array_size(out);

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            ngx_http_llm_fallback_xlat_stream_end(&s.x, out)
            == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK);

        ngx_http_llm_fallback_fuzz_chunks(&s, out, n);

        n = json_array_size(out);

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            ngx_http_llm_fallback_xlat_stream_end(&s.x, out)
            == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_array_size(out) == n);

        /* what is owed was given */

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!s.content || s.finished);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            s.usage == (s.x.include_usage && s.x.prompt_tokens >= 0
                        && s.x.completion_tokens >= 0));
    }

    c = ngx_http_llm_fallback_xlat_acc_completion(s.acc);

    if (ended && s.finished && !s.acc_small && s.started <= 128) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(c != NULL);
    }

    if (c) {
        ngx_http_llm_fallback_fuzz_accumulated(c);

        /* the text and the calls made are the ones kept */

        m = json_object_get(json_array_get(json_object_get(c, "choices"), 0),
                            "message");

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_string_length(json_object_get(m, "content")) == s.text);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_array_size(json_object_get(m, "tool_calls"))
            == (size_t) s.started);

        json_decref(c);
    }

    ngx_http_llm_fallback_xlat_acc_free(s.acc);
    ngx_http_llm_fallback_xlat_stream_free(&s.x);
    json_decref(s.x.error);
    json_decref(s.model);
    json_decref(out);

    return 0;
}


#endif /* _NGX_HTTP_LLM_FALLBACK_FUZZ_H_INCLUDED_ */
