
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


/*
 * A Messages request, checked and translated into the canonical request:
 * either an error that says which field, or a chat request that the
 * chat door and every provider format take: roles that alternate, tool
 * messages right after the assistant turn that called them, tool call
 * arguments that are JSON objects.
 */


#include "ngx_http_llm_fallback_fuzz_messages.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ngx_http_llm_fallback_fuzz_canonical(json_t *out,
    ngx_http_llm_fallback_msg_request_t *x);
static void ngx_http_llm_fallback_fuzz_canonical_content(json_t *m,
    const char *role);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                                 *before;
    size_t                                i;
    json_t                               *in, *out, *again;
    ngx_http_llm_fallback_msg_request_t   x, y;

    in = ngx_http_llm_fallback_fuzz_load(data, size);
    if (in == NULL) {
        return 0;
    }

    before = ngx_http_llm_fallback_fuzz_dump(in);

    memset(&x, 0, sizeof(ngx_http_llm_fallback_msg_request_t));
    x.count_tokens = (size & 1) ? 1 : 0;

    out = ngx_http_llm_fallback_msg_request(in, &x);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        x.ndropped <= NGX_HTTP_LLM_FALLBACK_MSG_MAX_DROPPED);

    for (i = 0; i < x.ndropped; i++) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(x.dropped[i] != NULL
                                          && x.dropped[i][0] != '\0');
    }

    /* the same answer twice */

    memset(&y, 0, sizeof(ngx_http_llm_fallback_msg_request_t));
    y.count_tokens = x.count_tokens;

    again = ngx_http_llm_fallback_msg_request(in, &y);

    if (out) {
        ngx_http_llm_fallback_fuzz_canonical(out, &x);
        ngx_http_llm_fallback_fuzz_round_trip(out);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_equal(out, again));
        json_decref(out);

    } else {
        /* no memory is not a case here: an error names what is wrong */
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(x.error[0] != '\0');
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            memchr(x.error, '\0', sizeof(x.error)) != NULL);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(again == NULL);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(x.error, y.error) == 0);
    }

    json_decref(again);

    ngx_http_llm_fallback_fuzz_same(in, before);
    json_decref(in);

    return 0;
}


static void
ngx_http_llm_fallback_fuzz_canonical(json_t *out,
    ngx_http_llm_fallback_msg_request_t *x)
{
    size_t       i, j;
    json_t      *ms, *m, *calls, *call, *v, *answered, *tool, *args;
    const char  *role, *prev;

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(out));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_string(json_object_get(out, "model")));

    v = json_object_get(out, "max_tokens");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        (v == NULL && x->count_tokens)
        || (json_is_integer(v) && json_integer_value(v) >= 1));

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        x->stream == (json_is_true(json_object_get(out, "stream")) ? 1 : 0));

    ms = json_object_get(out, "messages");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_array_size(ms) > 0);

    prev = NULL;
    calls = NULL;
    answered = json_object();
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(answered != NULL);

    json_array_foreach(ms, i, m) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(m));

        role = json_string_value(json_object_get(m, "role"));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(role != NULL);

        ngx_http_llm_fallback_fuzz_canonical_content(m, role);

        if (strcmp(role, "system") == 0) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(i == 0);

        } else if (strcmp(role, "tool") == 0) {

            /* right after the assistant turn that made the call, once */

            v = json_object_get(m, "tool_call_id");
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v));
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                prev && (strcmp(prev, "assistant") == 0
                         || strcmp(prev, "tool") == 0));
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_object_get(answered, json_string_value(v)) == NULL);

            json_array_foreach(calls, j, call) {
                if (json_equal(json_object_get(call, "id"), v)) {
                    break;
                }
            }

            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(j < json_array_size(calls));
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_object_set_new(answered, json_string_value(v),
                                    json_true())
                == 0);

        } else if (strcmp(role, "assistant") == 0) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(prev != NULL
                                              && strcmp(prev, "assistant")
                                                 != 0);
            calls = json_object_get(m, "tool_calls");
            json_object_clear(answered);

            json_array_foreach(calls, j, call) {
                NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                    json_is_string(json_object_get(call, "id")));
                NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                    json_is_string(json_object_get(json_object_get(call,
                                                   "function"), "name")));

                v = json_object_get(json_object_get(call, "function"),
                                    "arguments");
                NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v));

                args = json_loads(json_string_value(v), 0, NULL);
                NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(args));
                json_decref(args);
            }

        } else {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(role, "user") == 0);
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(prev == NULL
                                              || strcmp(prev, "user") != 0);
            calls = NULL;
        }

        prev = role;
    }

    json_decref(answered);

    json_array_foreach(json_object_get(out, "tools"), i, tool) {
        v = json_object_get(tool, "function");

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_string(json_object_get(v, "name")));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_object(json_object_get(v, "parameters")));
    }

    /* a tool_choice only with tools */

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_object_get(out, "tool_choice") == NULL
        || json_array_size(json_object_get(out, "tools")) > 0);
}


/* content as OpenAI's schema has it for the role */

static void
ngx_http_llm_fallback_fuzz_canonical_content(json_t *m, const char *role)
{
    size_t       i;
    json_t      *c, *p;
    const char  *type;

    c = json_object_get(m, "content");

    if (strcmp(role, "assistant") == 0) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_string(c)
            || (json_is_null(c)
                && json_array_size(json_object_get(m, "tool_calls"))));
        return;
    }

    if (json_is_string(c)) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(role, "tool") == 0
                                          || json_string_length(c) > 0);
        return;
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_array_size(c) > 0);

    json_array_foreach(c, i, p) {
        type = json_string_value(json_object_get(p, "type"));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(type != NULL);

        if (strcmp(type, "text") == 0) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_string_length(json_object_get(p, "text")) > 0);
            continue;
        }

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(role, "user") == 0);

        if (strcmp(type, "image_url") == 0) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_is_string(json_object_get(json_object_get(p,
                                               "image_url"), "url")));
            continue;
        }

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(type, "file") == 0);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_string(json_object_get(json_object_get(p, "file"),
                                           "file_data")));
    }
}
