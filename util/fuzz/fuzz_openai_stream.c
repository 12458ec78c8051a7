
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include "ngx_http_llm_fallback_fuzz.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void ngx_http_llm_fallback_fuzz_openai(
    ngx_http_llm_fallback_xlat_stream_t *x, json_t *ev, int rc,
    char *before);


/*
 * OpenAI chunks, one a line, checked and completed in place until one
 * is not usable or is an error; the usable ones are accumulated
 */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                                   rc;
    char                                 *before;
    size_t                                len;
    json_t                               *ev, *c;
    const uint8_t                        *p, *end, *line;
    ngx_http_llm_fallback_xlat_acc_t     *acc;
    ngx_http_llm_fallback_xlat_stream_t   x;

    ngx_http_llm_fallback_fuzz_stream_params(&x, size);
    acc = ngx_http_llm_fallback_fuzz_acc(size);

    p = data;
    end = data + size;

    while ((line = ngx_http_llm_fallback_fuzz_line(&p, end, &len)) != NULL) {
        ev = ngx_http_llm_fallback_fuzz_load(line, len);
        if (ev == NULL) {
            continue;
        }

        before = ngx_http_llm_fallback_fuzz_dump(ev);
        x.reason = NULL;

        rc = ngx_http_llm_fallback_openai_stream(&x, ev);

        if (rc == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_INVALID) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(x.reason != NULL);
            ngx_http_llm_fallback_fuzz_same(ev, before);
            json_decref(ev);
            break;
        }

        if (x.error) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                rc == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK);
            ngx_http_llm_fallback_fuzz_error(json_incref(x.error));
            ngx_http_llm_fallback_fuzz_same(ev, before);
            json_decref(ev);
            break;
        }

        ngx_http_llm_fallback_fuzz_openai(&x, ev, rc, before);

        (void) ngx_http_llm_fallback_xlat_acc_add(acc, ev);

        json_decref(ev);
    }

    c = ngx_http_llm_fallback_xlat_acc_completion(acc);

    if (c) {
        ngx_http_llm_fallback_fuzz_accumulated(c);
        json_decref(c);
    }

    ngx_http_llm_fallback_xlat_acc_free(acc);
    ngx_http_llm_fallback_xlat_stream_free(&x);
    json_decref(x.error);

    return 0;
}


/* a usable chunk: complete, changed only when it says so */

static void
ngx_http_llm_fallback_fuzz_openai(ngx_http_llm_fallback_xlat_stream_t *x,
    json_t *ev, int rc, char *before)
{
    char    *after;
    size_t   i;
    json_t  *choice, *v;

    after = ngx_http_llm_fallback_fuzz_dump(ev);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        (rc == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_OK
         && strcmp(before, after) == 0)
        || (rc == NGX_HTTP_LLM_FALLBACK_XLAT_STREAM_CHANGED
            && strcmp(before, after) != 0));

    free(before);
    free(after);

    v = json_object_get(ev, "id");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v)
                                      && json_string_length(v));
    v = json_object_get(ev, "object");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v)
                                      && json_string_length(v));
    v = json_object_get(ev, "created");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_integer(v)
                                      && json_integer_value(v) > 0);
    v = json_object_get(ev, "model");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v)
                                      && (json_string_length(v)
                                          || x->model == NULL));

    json_array_foreach(json_object_get(ev, "choices"), i, choice) {
        v = json_object_get(json_object_get(choice, "delta"), "content");

        if (json_is_string(v) && json_string_length(v)) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(x->content);
        }

        if (json_is_string(json_object_get(choice, "finish_reason"))) {
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(x->finish_sent);
        }

        /* OpenAI's schema requires it of every choice: null or text */

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            !json_is_object(choice)
            || json_object_get(choice, "finish_reason") != NULL);
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(x->prompt_tokens >= -1
                                      && x->completion_tokens >= -1);
}
