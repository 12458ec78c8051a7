
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


/*
 * chat.completion.chunk objects, one a line, as Anthropic's events, then
 * the end: every event is a [NAME, DATA] pair that Anthropic's grammar
 * allows where it comes (message_start first, content blocks opened
 * and closed in turn, deltas of the open block's kind, the signature
 * last in its thinking block, message_delta and message_stop last,
 * once); a chunk that is not one adds nothing; the text given is the
 * text of the chunks, and each tool call index has one tool_use block;
 * a chunk after the end, and a second end, add nothing.
 */


#include "ngx_http_llm_fallback_fuzz_messages.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t ngx_http_llm_fallback_fuzz_chunk_text(json_t *chunk);
static size_t ngx_http_llm_fallback_fuzz_chunk_tools(json_t *chunk,
    unsigned char *seen);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                                   rc;
    size_t                                len, n, text, tools;
    unsigned char                         seen[
                                        NGX_HTTP_LLM_FALLBACK_MSG_MAX_TOOLS];
    json_t                               *out, *chunk, *stops, *last;
    const uint8_t                        *p, *end, *line;
    ngx_http_llm_fallback_fuzz_events_t   e;
    ngx_http_llm_fallback_msg_stream_t    s;

    stops = json_pack("[s,s]", "STOP", "\n\n");
    out = json_array();

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(stops != NULL && out != NULL);

    memset(&s, 0, sizeof(ngx_http_llm_fallback_msg_stream_t));

    s.stop_sequences = (size & 1) ? stops : NULL;
    s.id = "0123456789abcdef01234567";
    s.id_len = 24;

    if (size & 2) {
        s.model = "fuzz-model";
        s.model_len = sizeof("fuzz-model") - 1;
    }

    ngx_http_llm_fallback_fuzz_events_init(&e);

    p = data;
    end = data + size;
    text = 0;
    tools = 0;
    last = NULL;
    memset(seen, 0, sizeof(seen));

    while ((line = ngx_http_llm_fallback_fuzz_line(&p, end, &len)) != NULL) {
        chunk = ngx_http_llm_fallback_fuzz_load(line, len);
        if (chunk == NULL) {
            continue;
        }

        n = json_array_size(out);

        rc = ngx_http_llm_fallback_msg_stream(&s, chunk, out);

        if (rc == 0) {
            text += ngx_http_llm_fallback_fuzz_chunk_text(chunk);
            tools += ngx_http_llm_fallback_fuzz_chunk_tools(chunk, seen);
            ngx_http_llm_fallback_fuzz_events(&e, out, n);

        } else {
            /* no memory is not a case here: a chunk that is not one */

            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(rc == -1);
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_array_size(out) == n);
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
                !json_is_object(chunk)
                || !json_is_array(json_object_get(chunk, "choices")));
        }

        json_decref(last);
        last = chunk;
    }

    n = json_array_size(out);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        ngx_http_llm_fallback_msg_stream_end(&s, out) == 0);

    ngx_http_llm_fallback_fuzz_events(&e, out, n);
    ngx_http_llm_fallback_fuzz_events_done(&e);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(e.text == text);

    /* one tool_use block a tool call */

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(e.tools == tools);

    /* nothing after the end */

    n = json_array_size(out);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        ngx_http_llm_fallback_msg_stream_end(&s, out) == 0);

    if (last) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            ngx_http_llm_fallback_msg_stream(&s, last, out) == 0
            || !json_is_object(last));
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_array_size(out) == n);

    free(ngx_http_llm_fallback_fuzz_dump(out));

    ngx_http_llm_fallback_fuzz_events_free(&e);
    ngx_http_llm_fallback_msg_stream_free(&s);

    json_decref(last);
    json_decref(out);
    json_decref(stops);

    return 0;
}


/* the text a chunk gives: its first choice's content and refusal */

static size_t
ngx_http_llm_fallback_fuzz_chunk_text(json_t *chunk)
{
    size_t   n;
    json_t  *delta, *v;

    delta = json_object_get(json_array_get(json_object_get(chunk, "choices"),
                                           0),
                            "delta");

    if (!json_is_object(delta)) {
        return 0;
    }

    n = 0;

    v = json_object_get(delta, "content");
    n += json_is_string(v) ? json_string_length(v) : 0;

    v = json_object_get(delta, "refusal");
    n += json_is_string(v) ? json_string_length(v) : 0;

    return n;
}


/* the tool call indexes a chunk starts (0 to MAX_TOOLS - 1, as told) */

static size_t
ngx_http_llm_fallback_fuzz_chunk_tools(json_t *chunk, unsigned char *seen)
{
    size_t       i, n;
    json_t      *delta, *call, *v;
    json_int_t   k;

    delta = json_object_get(json_array_get(json_object_get(chunk, "choices"),
                                           0),
                            "delta");

    if (!json_is_object(delta)) {
        return 0;
    }

    n = 0;

    json_array_foreach(json_object_get(delta, "tool_calls"), i, call) {
        v = json_object_get(call, "index");
        k = json_is_integer(v) ? json_integer_value(v) : (json_int_t) i;

        if (k >= 0 && k < NGX_HTTP_LLM_FALLBACK_MSG_MAX_TOOLS && !seen[k]) {
            seen[k] = 1;
            n++;
        }
    }

    return n;
}
