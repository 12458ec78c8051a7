
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


/*
 * A chat.completion as an Anthropic message, and as the events of a
 * stream that replays it (a cache HIT): the message is well-formed, the
 * events keep Anthropic's grammar and give back the same content blocks,
 * stop reason and id.
 */


#include "ngx_http_llm_fallback_fuzz_messages.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                                    rc;
    char                                  *before;
    size_t                                 i;
    json_t                                *in, *msg, *out, *b, *input, *v;
    json_t                                *stops;
    const char                            *type;
    ngx_http_llm_fallback_fuzz_events_t    e;
    ngx_http_llm_fallback_msg_response_t   x;

    in = ngx_http_llm_fallback_fuzz_load(data, size);
    if (in == NULL) {
        return 0;
    }

    before = ngx_http_llm_fallback_fuzz_dump(in);

    stops = json_pack("[s,s]", "STOP", "\n\n");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(stops != NULL);

    memset(&x, 0, sizeof(ngx_http_llm_fallback_msg_response_t));

    x.stop_sequences = (size & 1) ? stops : NULL;
    x.id = "0123456789abcdef01234567";
    x.id_len = 24;

    if (size & 2) {
        x.model = "fuzz-model";
        x.model_len = sizeof("fuzz-model") - 1;
    }

    msg = ngx_http_llm_fallback_msg_response(in, &x);

    out = json_array();
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(out != NULL);

    rc = ngx_http_llm_fallback_msg_replay(in, &x, out);

    if (msg == NULL) {
        /* no memory is not a case here: no choice to answer with */

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!json_is_object(
            json_array_get(json_object_get(in, "choices"), 0)));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(rc == -1);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_array_size(out) == 0);

        goto done;
    }

    ngx_http_llm_fallback_fuzz_message(msg);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(rc == 0);

    ngx_http_llm_fallback_fuzz_events_init(&e);
    ngx_http_llm_fallback_fuzz_events(&e, out, 0);
    ngx_http_llm_fallback_fuzz_events_done(&e);

    /* the events give the message back */

    json_array_foreach(e.blocks, i, b) {
        type = json_string_value(json_object_get(b, "type"));

        if (strcmp(type, "tool_use") == 0) {
            v = json_object_get(b, "partial");
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v));

            input = json_loads(json_string_value(v), 0, NULL);
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(input));

            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_object_set_new(b, "input", input) == 0);
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                json_object_del(b, "partial") == 0);
        }
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_equal(e.blocks, json_object_get(msg, "content")));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_equal(e.stop_reason, json_object_get(msg, "stop_reason")));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_equal(json_object_get(json_object_get(json_array_get(
                       json_array_get(out, 0), 1), "message"), "id"),
                   json_object_get(msg, "id")));

    ngx_http_llm_fallback_fuzz_events_free(&e);
    json_decref(msg);

done:

    /* the error types, from the same bytes */

    type = ngx_http_llm_fallback_msg_error_type((unsigned) (size * 7) % 700);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(type != NULL && type[0] != '\0');

    json_decref(out);
    json_decref(stops);

    ngx_http_llm_fallback_fuzz_same(in, before);
    json_decref(in);

    return 0;
}
