
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


static json_t *ngx_http_llm_fallback_fuzz_load(const uint8_t *data,
    size_t size);
static char *ngx_http_llm_fallback_fuzz_dump(json_t *json);
static void ngx_http_llm_fallback_fuzz_same(json_t *in, char *before);
static void ngx_http_llm_fallback_fuzz_round_trip(json_t *out);
static void ngx_http_llm_fallback_fuzz_turns(json_t *turns, const char *key);
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


/* an OpenAI chat.completion, as the module sends and replays it */

static void
ngx_http_llm_fallback_fuzz_completion(json_t *c,
    ngx_http_llm_fallback_xlat_response_t *x)
{
    size_t       i, j;
    json_t      *choice, *m, *content, *calls, *call, *args, *a;
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

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(content)
                                          || json_is_null(content));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            (json_is_string(content) && json_string_length(content))
            || json_array_size(calls) > 0);

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


#endif /* _NGX_HTTP_LLM_FALLBACK_FUZZ_H_INCLUDED_ */
