
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


/*
 * The Anthropic Messages front door's translators: Messages requests
 * checked and translated into the canonical request (an OpenAI chat
 * request), chat.completion answers and chat.completion.chunk streams
 * translated back into Anthropic messages and events.  Pure: jansson
 * and libc only (see ngx_http_llm_fallback_messages.h).
 *
 * Request, field by field (what is not listed is kept out and named in
 * x->dropped):
 *
 *   model, max_tokens, temperature, top_p     as they are
 *   system                 a first "system" message (string, text parts)
 *   user text, image       content parts: text, image_url (base64 as a
 *                          data: URL, or the url)
 *   document               PDF data as a file part (file_data), a text
 *                          source as a text part; url sources dropped
 *   tool_result            "tool" messages before the rest of the turn;
 *                          their images go to the user turn; is_error
 *                          dropped
 *   assistant text         "content" (the texts of a turn joined)
 *   tool_use               "tool_calls" (the input as JSON text)
 *   thinking               dropped: no other format takes them back
 *   redacted_thinking      (to an anthropic provider the body goes as is)
 *   tools                  function tools; server tools ("type") dropped
 *   tool_choice            auto, required, {"type":"function",...}, none;
 *                          disable_parallel_tool_use: parallel_tool_calls
 *   stop_sequences         stop
 *   metadata.user_id       user
 *   thinking               reasoning_effort: budget < 4096 low, < 16384
 *                          medium, else high
 *   stream                 stream, stream_options.include_usage
 *   top_k, cache_control, citations, unknown keys: dropped
 *
 * Consecutive turns of one role are merged, as Anthropic does.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "ngx_http_llm_fallback_translate.h"
#include "ngx_http_llm_fallback_messages.h"


/* bytes of an id, a model or a tag copied into ids and errors */
#define NGX_HTTP_LLM_FALLBACK_MSG_ID_MAX        64
#define NGX_HTTP_LLM_FALLBACK_MSG_TAG_MAX       64
/* "messages.N.content.N", and ".content.N" more in a tool_result */
#define NGX_HTTP_LLM_FALLBACK_MSG_WHERE_LEN     64
#define NGX_HTTP_LLM_FALLBACK_MSG_INNER_LEN     96

#define NGX_HTTP_LLM_FALLBACK_MSG_USER          1
#define NGX_HTTP_LLM_FALLBACK_MSG_ASSISTANT     2

/* the kinds of a stream's content blocks */
#define NGX_HTTP_LLM_FALLBACK_MSG_TEXT          1
#define NGX_HTTP_LLM_FALLBACK_MSG_THINKING      2
#define NGX_HTTP_LLM_FALLBACK_MSG_TOOL          3

#define NGX_HTTP_LLM_FALLBACK_MSG_MIN_BUDGET    1024
#define NGX_HTTP_LLM_FALLBACK_MSG_LOW_BUDGET    4096
#define NGX_HTTP_LLM_FALLBACK_MSG_HIGH_BUDGET   16384

#define NGX_HTTP_LLM_FALLBACK_MSG_BLOCK_TAGS                                 \
    "'text', 'image', 'document', 'tool_use', 'tool_result', 'thinking', "   \
    "'redacted_thinking', 'server_tool_use', 'web_search_tool_result'"


/* the turn being gathered: one role, one or more messages */
typedef struct {
    ngx_http_llm_fallback_msg_request_t  *x;
    int                                   role;
    /* the index of the last assistant message, for errors */
    size_t                                asked;
    /* the canonical messages made */
    json_t                               *out;
    /* tool_use ids of the last assistant turn not yet answered */
    json_t                               *pending;
    /* tool_use ids of the assistant turn gathered */
    json_t                               *uses;
    /* user: tool messages and content parts; assistant: texts */
    json_t                               *results;
    json_t                               *parts;
    json_t                               *calls;
    json_t                               *reasoning;
    json_t                               *thinking;
} ngx_http_llm_fallback_msg_turn_t;


static int ngx_http_llm_fallback_msg_error(
    ngx_http_llm_fallback_msg_request_t *x, const char *fmt, ...);
static void ngx_http_llm_fallback_msg_drop(
    ngx_http_llm_fallback_msg_request_t *x, const char *what);
static int ngx_http_llm_fallback_msg_integer(json_t *v, json_int_t *n);
static int ngx_http_llm_fallback_msg_blank(const char *s, size_t len);
static int ngx_http_llm_fallback_msg_id_ok(const char *s, size_t len);
static int ngx_http_llm_fallback_msg_printable(const char *s);
static json_t *ngx_http_llm_fallback_msg_string(
    ngx_http_llm_fallback_msg_request_t *x, json_t *obj, const char *key,
    const char *where);
static int ngx_http_llm_fallback_msg_top(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x, json_int_t *max);
static int ngx_http_llm_fallback_msg_messages(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x);
static int ngx_http_llm_fallback_msg_message(
    ngx_http_llm_fallback_msg_turn_t *t, json_t *m, size_t i);
static int ngx_http_llm_fallback_msg_block(
    ngx_http_llm_fallback_msg_turn_t *t, json_t *b, const char *where);
static int ngx_http_llm_fallback_msg_text(
    ngx_http_llm_fallback_msg_request_t *x, json_t *b, const char *where,
    json_t **text);
static int ngx_http_llm_fallback_msg_source(
    ngx_http_llm_fallback_msg_request_t *x, json_t *b, const char *where,
    int doc, json_t **part);
static int ngx_http_llm_fallback_msg_tool_use(
    ngx_http_llm_fallback_msg_turn_t *t, json_t *b, const char *where);
static int ngx_http_llm_fallback_msg_tool_result(
    ngx_http_llm_fallback_msg_turn_t *t, json_t *b, const char *where);
static int ngx_http_llm_fallback_msg_thinking(
    ngx_http_llm_fallback_msg_turn_t *t, json_t *b, const char *type,
    const char *where);
static int ngx_http_llm_fallback_msg_flush(
    ngx_http_llm_fallback_msg_turn_t *t);
static int ngx_http_llm_fallback_msg_flush_user(
    ngx_http_llm_fallback_msg_turn_t *t);
static int ngx_http_llm_fallback_msg_flush_assistant(
    ngx_http_llm_fallback_msg_turn_t *t);
static json_t *ngx_http_llm_fallback_msg_collapse(json_t *parts);
static void ngx_http_llm_fallback_msg_turn_free(
    ngx_http_llm_fallback_msg_turn_t *t);
static int ngx_http_llm_fallback_msg_system(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x);
static int ngx_http_llm_fallback_msg_sampling(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x);
static int ngx_http_llm_fallback_msg_stop_sequences(json_t *req,
    json_t *out, ngx_http_llm_fallback_msg_request_t *x);
static int ngx_http_llm_fallback_msg_metadata(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x);
static int ngx_http_llm_fallback_msg_tools(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x);
static int ngx_http_llm_fallback_msg_tool_choice(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x);
static int ngx_http_llm_fallback_msg_think(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x, json_int_t max);
static json_t *ngx_http_llm_fallback_msg_data_url(const char *mime,
    size_t mime_len, json_t *data);

static json_t *ngx_http_llm_fallback_msg_id(json_t *id, const char *uid,
    size_t uid_len);
static json_t *ngx_http_llm_fallback_msg_model(json_t *model,
    const char *dflt, size_t dflt_len);
static json_t *ngx_http_llm_fallback_msg_tool_id(json_t *id,
    const char *uid, size_t uid_len, size_t n);
static json_t *ngx_http_llm_fallback_msg_matched(json_t *choice,
    json_t *stop_sequences);
static const char *ngx_http_llm_fallback_msg_stop_reason(
    const char *finish, int tools, json_t *matched, json_t **sequence);
static void ngx_http_llm_fallback_msg_counts(json_t *usage,
    json_int_t *in, json_int_t *out, json_int_t *cached);
static int ngx_http_llm_fallback_msg_thinking_blocks(json_t *message,
    json_t *content);
static int ngx_http_llm_fallback_msg_texts(json_t *message,
    json_t *content);
static int ngx_http_llm_fallback_msg_tool_uses(json_t *message,
    json_t *content, ngx_http_llm_fallback_msg_response_t *x);
static int ngx_http_llm_fallback_msg_tool_block(json_t *call,
    json_t *content, size_t n, ngx_http_llm_fallback_msg_response_t *x);

static json_t *ngx_http_llm_fallback_msg_start_event(json_t *id,
    json_t *model, json_int_t in, json_int_t cached);
static json_t *ngx_http_llm_fallback_msg_delta_event(const char *reason,
    json_t *sequence, json_int_t in, json_int_t out, json_int_t cached);
static int ngx_http_llm_fallback_msg_event(json_t *out, const char *name,
    json_t *data);
static int ngx_http_llm_fallback_msg_block_event(json_t *out,
    const char *name, int index, const char *key, json_t *value);
static void ngx_http_llm_fallback_msg_undo(json_t *out, size_t n);
static void ngx_http_llm_fallback_msg_keep(json_t **ref, json_t *v);
static int ngx_http_llm_fallback_msg_stream_start(
    ngx_http_llm_fallback_msg_stream_t *s, json_t *chunk, json_t *out);
static int ngx_http_llm_fallback_msg_stream_open(
    ngx_http_llm_fallback_msg_stream_t *s, json_t *out, int kind,
    json_t *block);
static int ngx_http_llm_fallback_msg_stream_close(
    ngx_http_llm_fallback_msg_stream_t *s, json_t *out);
static int ngx_http_llm_fallback_msg_stream_delta(
    ngx_http_llm_fallback_msg_stream_t *s, json_t *out, const char *type,
    const char *key, json_t *value);
static int ngx_http_llm_fallback_msg_stream_thinking(
    ngx_http_llm_fallback_msg_stream_t *s, json_t *out, json_t *text);
static int ngx_http_llm_fallback_msg_stream_blocks(
    ngx_http_llm_fallback_msg_stream_t *s, json_t *out, json_t *blocks,
    int texts);
static int ngx_http_llm_fallback_msg_stream_text(
    ngx_http_llm_fallback_msg_stream_t *s, json_t *out, json_t *text);
static int ngx_http_llm_fallback_msg_stream_tools(
    ngx_http_llm_fallback_msg_stream_t *s, json_t *out, json_t *calls);
static int ngx_http_llm_fallback_msg_replay_block(json_t *out, int index,
    json_t *b);


/* the sampling parameters in [0, 1] */
static const char  *ngx_http_llm_fallback_msg_ranged[] = {
    "temperature", "top_p", NULL
};


/* ------------------------------------------------------------ request */


json_t *
ngx_http_llm_fallback_msg_request(json_t *req,
    ngx_http_llm_fallback_msg_request_t *x)
{
    json_t      *out, *v;
    const char  *key;
    json_int_t   max;

    x->stream = 0;
    x->error[0] = '\0';
    x->ndropped = 0;

    if (!json_is_object(req)) {
        ngx_http_llm_fallback_msg_error(x, "Request body must be a JSON "
                                           "object");
        return NULL;
    }

    out = json_object();
    if (out == NULL) {
        return NULL;
    }

    if (ngx_http_llm_fallback_msg_top(req, out, x, &max) != 0
        || ngx_http_llm_fallback_msg_messages(req, out, x) != 0
        || ngx_http_llm_fallback_msg_system(req, out, x) != 0
        || ngx_http_llm_fallback_msg_sampling(req, out, x) != 0
        || ngx_http_llm_fallback_msg_stop_sequences(req, out, x) != 0)
    {
        goto failed;
    }

    v = json_object_get(req, "stream");

    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            ngx_http_llm_fallback_msg_error(x, "stream: Input should be a "
                                               "valid boolean");
            goto failed;
        }

        if (json_is_true(v)) {
            x->stream = 1;

            if (json_object_set_new(out, "stream", json_true()) != 0
                || json_object_set_new(out, "stream_options",
                                       json_pack("{s:b}",
                                                 "include_usage", 1))
                   != 0)
            {
                goto failed;
            }
        }
    }

    if (ngx_http_llm_fallback_msg_metadata(req, out, x) != 0
        || ngx_http_llm_fallback_msg_tools(req, out, x) != 0
        || ngx_http_llm_fallback_msg_tool_choice(req, out, x) != 0
        || ngx_http_llm_fallback_msg_think(req, out, x, max) != 0)
    {
        goto failed;
    }

    json_object_foreach(req, key, v) {
        if (strcmp(key, "model") == 0
            || strcmp(key, "max_tokens") == 0
            || strcmp(key, "messages") == 0
            || strcmp(key, "system") == 0
            || strcmp(key, "temperature") == 0
            || strcmp(key, "top_p") == 0
            || strcmp(key, "stop_sequences") == 0
            || strcmp(key, "stream") == 0
            || strcmp(key, "metadata") == 0
            || strcmp(key, "tools") == 0
            || strcmp(key, "tool_choice") == 0
            || strcmp(key, "thinking") == 0
            || json_is_null(v))
        {
            continue;
        }

        /*
         * top_k and what only the Messages API knows, by name when the
         * name is fit for a log line
         */

        ngx_http_llm_fallback_msg_drop(x,
                                   ngx_http_llm_fallback_msg_printable(key)
                                   ? key : "other keys");
    }

    return out;

failed:

    json_decref(out);
    return NULL;
}


static int
ngx_http_llm_fallback_msg_error(ngx_http_llm_fallback_msg_request_t *x,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(x->error, NGX_HTTP_LLM_FALLBACK_MSG_ERROR_LEN, fmt, args);
    va_end(args);

    if (x->error[0] == '\0') {
        /* an error is never empty: empty means no memory */
        snprintf(x->error, NGX_HTTP_LLM_FALLBACK_MSG_ERROR_LEN,
                 "invalid request");
    }

    return -1;
}


static void
ngx_http_llm_fallback_msg_drop(ngx_http_llm_fallback_msg_request_t *x,
    const char *what)
{
    size_t  i;

    for (i = 0; i < x->ndropped; i++) {
        if (x->dropped[i] == what || strcmp(x->dropped[i], what) == 0) {
            return;
        }
    }

    if (x->ndropped < NGX_HTTP_LLM_FALLBACK_MSG_MAX_DROPPED) {
        x->dropped[x->ndropped++] = what;
    }
}


/* an integer, or a real without a fraction (as Anthropic takes 1.0) */

static int
ngx_http_llm_fallback_msg_integer(json_t *v, json_int_t *n)
{
    double  d;

    if (json_is_integer(v)) {
        *n = json_integer_value(v);
        return 0;
    }

    if (!json_is_real(v)) {
        return -1;
    }

    d = json_real_value(v);

    if (d != d || d < -9.0e15 || d > 9.0e15 || d != (double) (json_int_t) d)
    {
        return -1;
    }

    *n = (json_int_t) d;

    return 0;
}


static int
ngx_http_llm_fallback_msg_blank(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n'
            && s[i] != '\f' && s[i] != '\v')
        {
            return 0;
        }
    }

    return 1;
}


/* ^[a-zA-Z0-9_-]+$ */

static int
ngx_http_llm_fallback_msg_id_ok(const char *s, size_t len)
{
    size_t  i;

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* a short non-empty name of printable ASCII */

static int
ngx_http_llm_fallback_msg_printable(const char *s)
{
    size_t  i;

    for (i = 0; s[i]; i++) {
        if (i == NGX_HTTP_LLM_FALLBACK_MSG_TAG_MAX
            || s[i] <= ' ' || s[i] > '~')
        {
            return 0;
        }
    }

    return i > 0;
}


/* a required string member (borrowed), or NULL with the error set */

static json_t *
ngx_http_llm_fallback_msg_string(ngx_http_llm_fallback_msg_request_t *x,
    json_t *obj, const char *key, const char *where)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v)) {
        ngx_http_llm_fallback_msg_error(x, "%s%s%s: Field required",
                                        where, *where ? "." : "", key);
        return NULL;
    }

    if (!json_is_string(v)) {
        ngx_http_llm_fallback_msg_error(x, "%s%s%s: Input should be a valid "
                                        "string",
                                        where, *where ? "." : "", key);
        return NULL;
    }

    return v;
}


/* model and max_tokens */

static int
ngx_http_llm_fallback_msg_top(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x, json_int_t *max)
{
    json_t  *v;

    *max = 0;

    v = ngx_http_llm_fallback_msg_string(x, req, "model", "");
    if (v == NULL) {
        return -1;
    }

    if (json_object_set(out, "model", v) != 0) {
        x->error[0] = '\0';
        return -1;
    }

    v = json_object_get(req, "max_tokens");

    if (v == NULL || json_is_null(v)) {
        if (x->count_tokens) {
            return 0;
        }

        return ngx_http_llm_fallback_msg_error(x, "max_tokens: Field "
                                                  "required");
    }

    if (ngx_http_llm_fallback_msg_integer(v, max) != 0) {
        return ngx_http_llm_fallback_msg_error(x, "max_tokens: Input should "
                                                  "be a valid integer");
    }

    if (*max < 1) {
        return ngx_http_llm_fallback_msg_error(x, "max_tokens: Input should "
                                                  "be greater than or equal "
                                                  "to 1");
    }

    if (json_object_set_new(out, "max_tokens", json_integer(*max)) != 0) {
        x->error[0] = '\0';
        return -1;
    }

    return 0;
}


static int
ngx_http_llm_fallback_msg_messages(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x)
{
    int                                rc;
    size_t                             i;
    json_t                            *ms, *m;
    ngx_http_llm_fallback_msg_turn_t   t;

    ms = json_object_get(req, "messages");

    if (ms == NULL || json_is_null(ms)) {
        return ngx_http_llm_fallback_msg_error(x, "messages: Field required");
    }

    if (!json_is_array(ms)) {
        return ngx_http_llm_fallback_msg_error(x, "messages: Input should be "
                                                  "a valid list");
    }

    if (json_array_size(ms) == 0) {
        return ngx_http_llm_fallback_msg_error(x, "messages: at least one "
                                                  "message is required");
    }

    memset(&t, 0, sizeof(ngx_http_llm_fallback_msg_turn_t));

    t.x = x;
    t.out = json_array();
    t.pending = json_object();
    t.uses = json_object();

    if (t.out == NULL || t.pending == NULL || t.uses == NULL) {
        goto failed;
    }

    json_array_foreach(ms, i, m) {
        if (ngx_http_llm_fallback_msg_message(&t, m, i) != 0) {
            goto failed;
        }
    }

    if (ngx_http_llm_fallback_msg_flush(&t) != 0) {
        goto failed;
    }

    rc = json_object_set(out, "messages", t.out);

    ngx_http_llm_fallback_msg_turn_free(&t);

    if (rc != 0) {
        x->error[0] = '\0';
        return -1;
    }

    return 0;

failed:

    ngx_http_llm_fallback_msg_turn_free(&t);
    return -1;
}


/* one message: checked, its blocks added to the turn of its role */

static int
ngx_http_llm_fallback_msg_message(ngx_http_llm_fallback_msg_turn_t *t,
    json_t *m, size_t i)
{
    int          role;
    char         where[NGX_HTTP_LLM_FALLBACK_MSG_WHERE_LEN];
    size_t       j;
    json_t      *c, *b, *text;
    const char  *r;

    if (!json_is_object(m)) {
        return ngx_http_llm_fallback_msg_error(t->x, "messages.%zu: Input "
                                               "should be a valid dictionary",
                                               i);
    }

    c = json_object_get(m, "role");

    if (c == NULL || json_is_null(c)) {
        return ngx_http_llm_fallback_msg_error(t->x, "messages.%zu.role: "
                                               "Field required", i);
    }

    r = json_string_value(c);

    if (r && strcmp(r, "user") == 0) {
        role = NGX_HTTP_LLM_FALLBACK_MSG_USER;

    } else if (r && strcmp(r, "assistant") == 0) {
        role = NGX_HTTP_LLM_FALLBACK_MSG_ASSISTANT;

    } else {
        return ngx_http_llm_fallback_msg_error(t->x, "messages.%zu.role: "
                                               "Input should be 'user' or "
                                               "'assistant'", i);
    }

    if (i == 0 && role != NGX_HTTP_LLM_FALLBACK_MSG_USER) {
        return ngx_http_llm_fallback_msg_error(t->x, "messages: first message "
                                               "must use the \"user\" role");
    }

    c = json_object_get(m, "content");

    if (c == NULL || json_is_null(c)) {
        return ngx_http_llm_fallback_msg_error(t->x, "messages.%zu.content: "
                                               "Field required", i);
    }

    if (json_is_string(c)) {
        if (json_string_length(c) == 0) {
            return ngx_http_llm_fallback_msg_error(t->x, "messages: text "
                                                   "content blocks must be "
                                                   "non-empty");
        }

    } else if (!json_is_array(c)) {
        return ngx_http_llm_fallback_msg_error(t->x, "messages.%zu.content: "
                                               "Input should be a valid list",
                                               i);

    } else if (json_array_size(c) == 0) {
        return ngx_http_llm_fallback_msg_error(t->x, "messages.%zu.content: "
                                               "at least one content block "
                                               "is required", i);
    }

    /* consecutive turns of one role are one turn */

    if (role != t->role) {
        if (ngx_http_llm_fallback_msg_flush(t) != 0) {
            return -1;
        }

        t->role = role;
        t->results = json_array();
        t->parts = json_array();
        t->calls = json_array();
        t->reasoning = json_array();
        t->thinking = json_array();

        if (t->results == NULL || t->parts == NULL || t->calls == NULL
            || t->reasoning == NULL || t->thinking == NULL)
        {
            t->x->error[0] = '\0';
            return -1;
        }
    }

    if (role == NGX_HTTP_LLM_FALLBACK_MSG_ASSISTANT) {
        t->asked = i;
    }

    if (json_is_string(c)) {
        text = (role == NGX_HTTP_LLM_FALLBACK_MSG_USER)
               ? json_pack("{s:s,s:O}", "type", "text", "text", c)
               : json_incref(c);

        if (json_array_append_new(t->parts, text) != 0) {
            t->x->error[0] = '\0';
            return -1;
        }

        return 0;
    }

    json_array_foreach(c, j, b) {
        snprintf(where, sizeof(where), "messages.%zu.content.%zu", i, j);

        if (ngx_http_llm_fallback_msg_block(t, b, where) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
ngx_http_llm_fallback_msg_block(ngx_http_llm_fallback_msg_turn_t *t,
    json_t *b, const char *where)
{
    int                                   user;
    json_t                               *v, *part;
    const char                           *type;
    ngx_http_llm_fallback_msg_request_t  *x;

    x = t->x;
    user = (t->role == NGX_HTTP_LLM_FALLBACK_MSG_USER);

    if (!json_is_object(b)) {
        return ngx_http_llm_fallback_msg_error(x, "%s: Input should be a "
                                               "valid dictionary", where);
    }

    v = json_object_get(b, "type");

    if (!json_is_string(v)) {
        return ngx_http_llm_fallback_msg_error(x, "%s: Unable to extract tag "
                                               "using discriminator 'type'",
                                               where);
    }

    type = json_string_value(v);

    if (json_object_get(b, "cache_control")) {
        ngx_http_llm_fallback_msg_drop(x, "cache_control");
    }

    if (strcmp(type, "text") == 0) {
        if (ngx_http_llm_fallback_msg_text(x, b, where, &v) != 0) {
            return -1;
        }

        if (json_object_get(b, "citations")) {
            ngx_http_llm_fallback_msg_drop(x, "citations");
        }

        part = user ? json_pack("{s:s,s:O}", "type", "text", "text", v)
                    : json_incref(v);

        if (json_array_append_new(t->parts, part) != 0) {
            x->error[0] = '\0';
            return -1;
        }

        return 0;
    }

    if (strcmp(type, "image") == 0 || strcmp(type, "document") == 0) {
        if (!user) {
            return ngx_http_llm_fallback_msg_error(x, "%s: image and document "
                                                   "blocks are only allowed "
                                                   "in user messages", where);
        }

        if (ngx_http_llm_fallback_msg_source(x, b, where, type[0] == 'd',
                                             &part)
            != 0)
        {
            return -1;
        }

        if (part && json_array_append_new(t->parts, part) != 0) {
            x->error[0] = '\0';
            return -1;
        }

        return 0;
    }

    if (strcmp(type, "tool_use") == 0) {
        if (user) {
            return ngx_http_llm_fallback_msg_error(x, "%s: tool_use blocks "
                                                   "are only allowed in "
                                                   "assistant messages",
                                                   where);
        }

        return ngx_http_llm_fallback_msg_tool_use(t, b, where);
    }

    if (strcmp(type, "tool_result") == 0) {
        if (!user) {
            return ngx_http_llm_fallback_msg_error(x, "%s: tool_result blocks "
                                                   "are only allowed in user "
                                                   "messages", where);
        }

        return ngx_http_llm_fallback_msg_tool_result(t, b, where);
    }

    if (strcmp(type, "thinking") == 0
        || strcmp(type, "redacted_thinking") == 0)
    {
        if (user) {
            return ngx_http_llm_fallback_msg_error(x, "%s: %s blocks are only "
                                                   "allowed in assistant "
                                                   "messages", where, type);
        }

        return ngx_http_llm_fallback_msg_thinking(t, b, type, where);
    }

    /*
     * the blocks of Anthropic's server tools, in the history of a
     * conversation that used them: passed natively, dropped across
     */

    if (strcmp(type, "server_tool_use") == 0
        || strcmp(type, "web_search_tool_result") == 0)
    {
        ngx_http_llm_fallback_msg_drop(x, "server tool blocks");
        return 0;
    }

    return ngx_http_llm_fallback_msg_error(x, "%s.type: Input tag '%.*s' "
                                   "found using 'type' does not match any "
                                   "of the expected tags: "
                                   NGX_HTTP_LLM_FALLBACK_MSG_BLOCK_TAGS,
                                   where,
                                   NGX_HTTP_LLM_FALLBACK_MSG_TAG_MAX, type);
}


/* a text block's text (borrowed), non-empty */

static int
ngx_http_llm_fallback_msg_text(ngx_http_llm_fallback_msg_request_t *x,
    json_t *b, const char *where, json_t **text)
{
    *text = ngx_http_llm_fallback_msg_string(x, b, "text", where);

    if (*text == NULL) {
        return -1;
    }

    if (json_string_length(*text) == 0) {
        return ngx_http_llm_fallback_msg_error(x, "messages: text content "
                                                  "blocks must be non-empty");
    }

    return 0;
}


/*
 * an image or document block's source: the canonical part, or NULL
 * when it has none (dropped)
 */

static int
ngx_http_llm_fallback_msg_source(ngx_http_llm_fallback_msg_request_t *x,
    json_t *b, const char *where, int doc, json_t **part)
{
    json_t      *s, *v, *mt, *url, *title;
    const char  *type;

    *part = NULL;

    s = json_object_get(b, "source");

    if (s == NULL || json_is_null(s)) {
        return ngx_http_llm_fallback_msg_error(x, "%s.source: Field required",
                                               where);
    }

    if (!json_is_object(s)) {
        return ngx_http_llm_fallback_msg_error(x, "%s.source: Input should "
                                               "be a valid dictionary",
                                               where);
    }

    type = json_string_value(json_object_get(s, "type"));

    if (type && strcmp(type, "base64") == 0) {
        mt = json_object_get(s, "media_type");
        type = json_string_value(mt);

        if (doc) {
            if (type == NULL || strcmp(type, "application/pdf") != 0) {
                return ngx_http_llm_fallback_msg_error(x, "%s.source."
                                         "media_type: Input should be "
                                         "'application/pdf'", where);
            }

        } else if (type == NULL
                   || (strcmp(type, "image/jpeg") != 0
                       && strcmp(type, "image/png") != 0
                       && strcmp(type, "image/gif") != 0
                       && strcmp(type, "image/webp") != 0))
        {
            return ngx_http_llm_fallback_msg_error(x, "%s.source.media_type: "
                                     "Input should be 'image/jpeg', "
                                     "'image/png', 'image/gif' or "
                                     "'image/webp'", where);
        }

        v = ngx_http_llm_fallback_msg_string(x, s, "data", where);
        if (v == NULL) {
            return -1;
        }

        url = ngx_http_llm_fallback_msg_data_url(type, json_string_length(mt),
                                                 v);
        if (url == NULL) {
            x->error[0] = '\0';
            return -1;
        }

        if (doc) {
            title = json_object_get(b, "title");

            *part = json_pack("{s:s,s:{s:o,s:s}}",
                              "type", "file",
                              "file",
                              "file_data", url,
                              "filename",
                              json_is_string(title)
                              && json_string_length(title)
                              ? json_string_value(title) : "document.pdf");

        } else {
            *part = json_pack("{s:s,s:{s:o}}",
                              "type", "image_url",
                              "image_url",
                              "url", url);
        }

        if (*part == NULL) {
            x->error[0] = '\0';
            return -1;
        }

        return 0;
    }

    if (type && strcmp(type, "url") == 0) {
        url = json_object_get(s, "url");

        if (!json_is_string(url)
            || !ngx_http_llm_fallback_xlat_http_url(json_string_value(url),
                                                   json_string_length(url)))
        {
            return ngx_http_llm_fallback_msg_error(x, "%s.source.url: Input "
                                                   "should be a valid URL",
                                                   where);
        }

        if (doc) {
            /* a chat request cannot point at a file */
            ngx_http_llm_fallback_msg_drop(x, "document blocks with a url "
                                              "source");
            return 0;
        }

        *part = json_pack("{s:s,s:{s:O}}",
                          "type", "image_url",
                          "image_url",
                          "url", url);

        if (*part == NULL) {
            x->error[0] = '\0';
            return -1;
        }

        return 0;
    }

    if (doc && type && strcmp(type, "text") == 0) {
        type = json_string_value(json_object_get(s, "media_type"));

        if (type == NULL || strcmp(type, "text/plain") != 0) {
            return ngx_http_llm_fallback_msg_error(x, "%s.source.media_type: "
                                                   "Input should be "
                                                   "'text/plain'", where);
        }

        v = ngx_http_llm_fallback_msg_string(x, s, "data", where);
        if (v == NULL) {
            return -1;
        }

        if (json_string_length(v) == 0) {
            return 0;
        }

        *part = json_pack("{s:s,s:O}", "type", "text", "text", v);

        if (*part == NULL) {
            x->error[0] = '\0';
            return -1;
        }

        return 0;
    }

    return ngx_http_llm_fallback_msg_error(x, "%s.source.type: Input tag "
                                   "'%.*s' found using 'type' does not match "
                                   "any of the expected tags: %s", where,
                                   NGX_HTTP_LLM_FALLBACK_MSG_TAG_MAX,
                                   type ? type : "",
                                   doc ? "'base64', 'text', 'url'"
                                       : "'base64', 'url'");
}


static int
ngx_http_llm_fallback_msg_tool_use(ngx_http_llm_fallback_msg_turn_t *t,
    json_t *b, const char *where)
{
    json_t                               *id, *name, *input, *call;
    ngx_http_llm_fallback_msg_request_t  *x;

    x = t->x;

    id = json_object_get(b, "id");

    if (!json_is_string(id)
        || !ngx_http_llm_fallback_msg_id_ok(json_string_value(id),
                                            json_string_length(id)))
    {
        return ngx_http_llm_fallback_msg_error(x, "%s.id: String should match "
                                               "pattern '^[a-zA-Z0-9_-]+$'",
                                               where);
    }

    name = ngx_http_llm_fallback_msg_string(x, b, "name", where);
    if (name == NULL) {
        return -1;
    }

    input = json_object_get(b, "input");

    if (input == NULL) {
        return ngx_http_llm_fallback_msg_error(x, "%s.input: Field required",
                                               where);
    }

    if (!json_is_object(input)) {
        return ngx_http_llm_fallback_msg_error(x, "%s.input: Input should be "
                                               "a valid dictionary", where);
    }

    if (json_object_get(t->uses, json_string_value(id))) {
        return ngx_http_llm_fallback_msg_error(x, "%s: `tool_use` ids must "
                                               "be unique", where);
    }

    if (json_object_set_new(t->uses, json_string_value(id), json_true())
        != 0)
    {
        x->error[0] = '\0';
        return -1;
    }

    call = ngx_http_llm_fallback_xlat_tool_call(json_string_value(id),
                                                json_string_length(id),
                                                json_string_value(name),
                                                json_string_length(name),
                                                input);

    if (json_array_append_new(t->calls, call) != 0) {
        x->error[0] = '\0';
        return -1;
    }

    return 0;
}


/* a "tool" message; images of the result go to the user turn */

static int
ngx_http_llm_fallback_msg_tool_result(ngx_http_llm_fallback_msg_turn_t *t,
    json_t *b, const char *where)
{
    char                                  w[
                                        NGX_HTTP_LLM_FALLBACK_MSG_INNER_LEN];
    size_t                                k;
    json_t                               *id, *c, *cb, *texts, *part, *v;
    json_t                               *content;
    const char                           *type;
    ngx_http_llm_fallback_msg_request_t  *x;

    x = t->x;

    id = json_object_get(b, "tool_use_id");

    if (!json_is_string(id)
        || !ngx_http_llm_fallback_msg_id_ok(json_string_value(id),
                                            json_string_length(id)))
    {
        return ngx_http_llm_fallback_msg_error(x, "%s.tool_use_id: String "
                                               "should match pattern "
                                               "'^[a-zA-Z0-9_-]+$'", where);
    }

    v = json_object_get(b, "is_error");

    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            return ngx_http_llm_fallback_msg_error(x, "%s.is_error: Input "
                                                   "should be a valid "
                                                   "boolean", where);
        }

        if (json_is_true(v)) {
            ngx_http_llm_fallback_msg_drop(x, "tool_result.is_error");
        }
    }

    c = json_object_get(b, "content");

    if (c == NULL || json_is_null(c)) {
        content = json_string("");

    } else if (json_is_string(c)) {
        content = json_incref(c);

    } else if (!json_is_array(c)) {
        return ngx_http_llm_fallback_msg_error(x, "%s.content: Input should "
                                               "be a valid string or list",
                                               where);

    } else {
        texts = json_array();
        if (texts == NULL) {
            x->error[0] = '\0';
            return -1;
        }

        json_array_foreach(c, k, cb) {
            snprintf(w, sizeof(w), "%s.content.%zu", where, k);

            if (!json_is_object(cb)) {
                json_decref(texts);
                return ngx_http_llm_fallback_msg_error(x, "%s: Input should "
                                                       "be a valid "
                                                       "dictionary", w);
            }

            type = json_string_value(json_object_get(cb, "type"));

            if (type && strcmp(type, "text") == 0) {
                if (ngx_http_llm_fallback_msg_text(x, cb, w, &v) != 0) {
                    json_decref(texts);
                    return -1;
                }

                if (json_array_append_new(texts,
                        json_pack("{s:s,s:O}", "type", "text", "text", v))
                    != 0)
                {
                    json_decref(texts);
                    x->error[0] = '\0';
                    return -1;
                }

                continue;
            }

            if (type && strcmp(type, "image") == 0) {
                if (ngx_http_llm_fallback_msg_source(x, cb, w, 0, &part)
                    != 0)
                {
                    json_decref(texts);
                    return -1;
                }

                ngx_http_llm_fallback_msg_drop(x, "tool_result images (sent "
                                                  "in the user turn)");

                if (json_array_append_new(t->parts, part) != 0) {
                    json_decref(texts);
                    x->error[0] = '\0';
                    return -1;
                }

                continue;
            }

            json_decref(texts);

            return ngx_http_llm_fallback_msg_error(x, "%s.type: Input should "
                                                   "be 'text' or 'image'", w);
        }

        switch (json_array_size(texts)) {

        case 0:
            content = json_string("");
            break;

        case 1:
            content = json_incref(json_object_get(json_array_get(texts, 0),
                                                  "text"));
            break;

        default:
            content = json_incref(texts);
            break;
        }

        json_decref(texts);
    }

    if (content == NULL) {
        x->error[0] = '\0';
        return -1;
    }

    if (json_object_get(t->pending, json_string_value(id)) == NULL) {
        json_decref(content);

        return ngx_http_llm_fallback_msg_error(x, "%s: unexpected "
                                   "`tool_use_id` found in `tool_result` "
                                   "blocks: %.*s. Each `tool_result` block "
                                   "must have a corresponding `tool_use` "
                                   "block in the previous message.", where,
                                   NGX_HTTP_LLM_FALLBACK_MSG_TAG_MAX,
                                   json_string_value(id));
    }

    json_object_del(t->pending, json_string_value(id));

    if (json_array_append_new(t->results,
                              json_pack("{s:s,s:O,s:o}",
                                        "role", "tool",
                                        "tool_call_id", id,
                                        "content", content))
        != 0)
    {
        x->error[0] = '\0';
        return -1;
    }

    return 0;
}


static int
ngx_http_llm_fallback_msg_thinking(ngx_http_llm_fallback_msg_turn_t *t,
    json_t *b, const char *type, const char *where)
{
    json_t  *v;

    if (type[0] == 'r') {
        if (ngx_http_llm_fallback_msg_string(t->x, b, "data", where) == NULL)
        {
            return -1;
        }

    } else {
        v = ngx_http_llm_fallback_msg_string(t->x, b, "thinking", where);

        if (v == NULL
            || ngx_http_llm_fallback_msg_string(t->x, b, "signature", where)
               == NULL)
        {
            return -1;
        }

        if (json_string_length(v)
            && json_array_append(t->reasoning, v) != 0)
        {
            t->x->error[0] = '\0';
            return -1;
        }
    }

    if (json_array_append(t->thinking, b) != 0) {
        t->x->error[0] = '\0';
        return -1;
    }

    return 0;
}


/* the turn gathered, as canonical messages */

static int
ngx_http_llm_fallback_msg_flush(ngx_http_llm_fallback_msg_turn_t *t)
{
    int  rc;

    switch (t->role) {

    case NGX_HTTP_LLM_FALLBACK_MSG_USER:
        rc = ngx_http_llm_fallback_msg_flush_user(t);
        break;

    case NGX_HTTP_LLM_FALLBACK_MSG_ASSISTANT:
        rc = ngx_http_llm_fallback_msg_flush_assistant(t);
        break;

    default:
        rc = 0;
        break;
    }

    t->role = 0;

    json_decref(t->results);
    json_decref(t->parts);
    json_decref(t->calls);
    json_decref(t->reasoning);
    json_decref(t->thinking);

    t->results = NULL;
    t->parts = NULL;
    t->calls = NULL;
    t->reasoning = NULL;
    t->thinking = NULL;

    return rc;
}


static int
ngx_http_llm_fallback_msg_flush_user(ngx_http_llm_fallback_msg_turn_t *t)
{
    int          n, first;
    char        *p, *last;
    json_t      *content, *v;
    const char  *key;

    /* every tool_use of the assistant turn before is answered */

    if (json_object_size(t->pending)) {
        p = t->x->error;
        last = p + NGX_HTTP_LLM_FALLBACK_MSG_ERROR_LEN;

        n = snprintf(p, last - p, "messages.%zu: `tool_use` ids were found "
                     "without `tool_result` blocks immediately after:",
                     t->asked);
        p += (n > 0 && n < last - p) ? n : 0;
        first = 1;

        json_object_foreach(t->pending, key, v) {
            n = snprintf(p, last - p, "%s %.*s", first ? "" : ",",
                         NGX_HTTP_LLM_FALLBACK_MSG_TAG_MAX, key);

            if (n < 0 || n >= last - p) {
                break;
            }

            p += n;
            first = 0;
        }

        snprintf(p, last - p, ". Each `tool_use` block must have a "
                 "corresponding `tool_result` block in the next message.");

        return -1;
    }

    if (json_array_extend(t->out, t->results) != 0) {
        t->x->error[0] = '\0';
        return -1;
    }

    if (json_array_size(t->parts) == 0 && json_array_size(t->results)) {
        return 0;
    }

    if (json_array_size(t->parts) == 0) {
        /* all of it was dropped: the turn is kept, roles alternate */

        ngx_http_llm_fallback_msg_drop(t->x, "user turns with nothing to "
                                             "send (sent \".\")");
        content = json_string(NGX_HTTP_LLM_FALLBACK_XLAT_FIRST_TURN);

    } else {
        content = ngx_http_llm_fallback_msg_collapse(t->parts);
    }

    if (json_array_append_new(t->out,
                              json_pack("{s:s,s:o}",
                                        "role", "user",
                                        "content", content))
        != 0)
    {
        t->x->error[0] = '\0';
        return -1;
    }

    return 0;
}


static int
ngx_http_llm_fallback_msg_flush_assistant(ngx_http_llm_fallback_msg_turn_t *t)
{
    json_t  *m, *text;

    text = ngx_http_llm_fallback_xlat_join(t->parts);

    if (text == NULL && json_array_size(t->parts)) {
        goto failed;
    }

    if (text == NULL && json_array_size(t->calls) == 0) {
        /* thinking or server tools only */
        text = json_string("");
        if (text == NULL) {
            goto failed;
        }
    }

    m = json_pack("{s:s,s:o?}", "role", "assistant", "content", text);
    if (m == NULL) {
        goto failed;
    }

    if (json_array_size(t->calls)
        && json_object_set(m, "tool_calls", t->calls) != 0)
    {
        json_decref(m);
        goto failed;
    }

    /*
     * the history's thinking is not sent: the other formats cannot take
     * it back (DeepSeek refuses reasoning_content in a request, OpenAI
     * knows neither field), and only Anthropic checks its signatures
     */

    if (json_array_size(t->reasoning) || json_array_size(t->thinking)) {
        ngx_http_llm_fallback_msg_drop(t->x, "thinking");
    }

    if (json_array_append_new(t->out, m) != 0) {
        goto failed;
    }

    /* its tool_use blocks are to be answered by the next user turn */

    json_decref(t->pending);
    t->pending = t->uses;
    t->uses = json_object();

    if (t->uses == NULL) {
        goto failed;
    }

    return 0;

failed:

    t->x->error[0] = '\0';
    return -1;
}


/* content parts, a single plain text part as a string (a new reference) */

static json_t *
ngx_http_llm_fallback_msg_collapse(json_t *parts)
{
    json_t      *p;
    const char  *type;

    if (json_array_size(parts) == 1) {
        p = json_array_get(parts, 0);
        type = json_string_value(json_object_get(p, "type"));

        if (type && strcmp(type, "text") == 0) {
            return json_incref(json_object_get(p, "text"));
        }
    }

    return json_incref(parts);
}


static void
ngx_http_llm_fallback_msg_turn_free(ngx_http_llm_fallback_msg_turn_t *t)
{
    json_decref(t->out);
    json_decref(t->pending);
    json_decref(t->uses);
    json_decref(t->results);
    json_decref(t->parts);
    json_decref(t->calls);
    json_decref(t->reasoning);
    json_decref(t->thinking);
}


/* system: a string or text blocks, the first canonical message */

static int
ngx_http_llm_fallback_msg_system(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x)
{
    char     where[NGX_HTTP_LLM_FALLBACK_MSG_WHERE_LEN];
    size_t   i;
    json_t  *s, *b, *parts, *text, *content;

    s = json_object_get(req, "system");

    if (s == NULL || json_is_null(s)) {
        return 0;
    }

    if (json_is_string(s)) {
        if (json_string_length(s) == 0) {
            return 0;
        }

        content = json_incref(s);

    } else if (!json_is_array(s)) {
        return ngx_http_llm_fallback_msg_error(x, "system: Input should be a "
                                                  "valid string or list");

    } else {
        parts = json_array();
        if (parts == NULL) {
            return -1;
        }

        json_array_foreach(s, i, b) {
            snprintf(where, sizeof(where), "system.%zu", i);

            text = json_object_get(b, "type");

            if (!json_is_string(text)
                || strcmp(json_string_value(text), "text") != 0)
            {
                json_decref(parts);
                return ngx_http_llm_fallback_msg_error(x, "%s.type: Input "
                                                       "should be 'text'",
                                                       where);
            }

            if (ngx_http_llm_fallback_msg_text(x, b, where, &text) != 0) {
                json_decref(parts);
                return -1;
            }

            if (json_object_get(b, "cache_control")) {
                ngx_http_llm_fallback_msg_drop(x, "cache_control");
            }

            if (json_array_append_new(parts,
                                      json_pack("{s:s,s:O}",
                                                "type", "text",
                                                "text", text))
                != 0)
            {
                json_decref(parts);
                return -1;
            }
        }

        if (json_array_size(parts) == 0) {
            json_decref(parts);
            return 0;
        }

        content = ngx_http_llm_fallback_msg_collapse(parts);
        json_decref(parts);
    }

    if (json_array_insert_new(json_object_get(out, "messages"), 0,
                              json_pack("{s:s,s:o}",
                                        "role", "system",
                                        "content", content))
        != 0)
    {
        x->error[0] = '\0';
        return -1;
    }

    return 0;
}


/* temperature, top_p (kept), top_k (checked, dropped) */

static int
ngx_http_llm_fallback_msg_sampling(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x)
{
    json_t       *v;
    const char  **key;
    json_int_t    k;

    for (key = ngx_http_llm_fallback_msg_ranged; *key; key++) {
        v = json_object_get(req, *key);

        if (v == NULL || json_is_null(v)) {
            continue;
        }

        if (!json_is_number(v)) {
            return ngx_http_llm_fallback_msg_error(x, "%s: Input should be a "
                                                   "valid number", *key);
        }

        if (json_number_value(v) > 1.0) {
            return ngx_http_llm_fallback_msg_error(x, "%s: Input should be "
                                                   "less than or equal to 1",
                                                   *key);
        }

        if (!(json_number_value(v) >= 0.0)) {
            return ngx_http_llm_fallback_msg_error(x, "%s: Input should be "
                                                   "greater than or equal "
                                                   "to 0", *key);
        }

        if (json_object_set(out, *key, v) != 0) {
            x->error[0] = '\0';
            return -1;
        }
    }

    v = json_object_get(req, "top_k");

    if (v && !json_is_null(v)) {
        if (ngx_http_llm_fallback_msg_integer(v, &k) != 0) {
            return ngx_http_llm_fallback_msg_error(x, "top_k: Input should be "
                                                      "a valid integer");
        }

        if (k < 0) {
            return ngx_http_llm_fallback_msg_error(x, "top_k: Input should be "
                                                      "greater than or equal "
                                                      "to 0");
        }
    }

    return 0;
}


static int
ngx_http_llm_fallback_msg_stop_sequences(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x)
{
    size_t   i;
    json_t  *ss, *s;

    ss = json_object_get(req, "stop_sequences");

    if (ss == NULL || json_is_null(ss)) {
        return 0;
    }

    if (!json_is_array(ss)) {
        return ngx_http_llm_fallback_msg_error(x, "stop_sequences: Input "
                                                  "should be a valid list");
    }

    json_array_foreach(ss, i, s) {
        if (!json_is_string(s)) {
            return ngx_http_llm_fallback_msg_error(x, "stop_sequences.%zu: "
                                                   "Input should be a valid "
                                                   "string", i);
        }

        if (ngx_http_llm_fallback_msg_blank(json_string_value(s),
                                            json_string_length(s)))
        {
            return ngx_http_llm_fallback_msg_error(x, "stop_sequences: each "
                                                   "stop sequence must "
                                                   "contain non-whitespace");
        }
    }

    if (json_array_size(ss) && json_object_set(out, "stop", ss) != 0) {
        x->error[0] = '\0';
        return -1;
    }

    return 0;
}


static int
ngx_http_llm_fallback_msg_metadata(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x)
{
    json_t      *md, *v;
    const char  *key;

    md = json_object_get(req, "metadata");

    if (md == NULL || json_is_null(md)) {
        return 0;
    }

    if (!json_is_object(md)) {
        return ngx_http_llm_fallback_msg_error(x, "metadata: Input should be "
                                                  "a valid dictionary");
    }

    json_object_foreach(md, key, v) {
        if (strcmp(key, "user_id") != 0) {
            return ngx_http_llm_fallback_msg_error(x, "metadata.%.*s: Extra "
                                   "inputs are not permitted",
                                   NGX_HTTP_LLM_FALLBACK_MSG_TAG_MAX, key);
        }

        if (json_is_null(v)) {
            continue;
        }

        if (!json_is_string(v)) {
            return ngx_http_llm_fallback_msg_error(x, "metadata.user_id: "
                                                      "Input should be a "
                                                      "valid string");
        }

        if (json_string_length(v) && json_object_set(out, "user", v) != 0) {
            x->error[0] = '\0';
            return -1;
        }
    }

    return 0;
}


/* client tools as functions; server tools (with a "type") dropped */

static int
ngx_http_llm_fallback_msg_tools(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x)
{
    size_t       i, len;
    json_t      *tools, *tool, *v, *name, *schema, *f, *fns;
    const char  *s;

    tools = json_object_get(req, "tools");

    if (tools == NULL || json_is_null(tools)) {
        return 0;
    }

    if (!json_is_array(tools)) {
        return ngx_http_llm_fallback_msg_error(x, "tools: Input should be a "
                                                  "valid list");
    }

    fns = json_array();
    if (fns == NULL) {
        return -1;
    }

    json_array_foreach(tools, i, tool) {

        if (!json_is_object(tool)) {
            ngx_http_llm_fallback_msg_error(x, "tools.%zu: Input should be a "
                                               "valid dictionary", i);
            goto failed;
        }

        v = json_object_get(tool, "type");

        if (v && !json_is_null(v)
            && !(json_is_string(v)
                 && strcmp(json_string_value(v), "custom") == 0))
        {
            if (!json_is_string(v)) {
                ngx_http_llm_fallback_msg_error(x, "tools.%zu.type: Input "
                                                   "should be a valid string",
                                                   i);
                goto failed;
            }

            ngx_http_llm_fallback_msg_drop(x,
                           ngx_http_llm_fallback_msg_printable(
                               json_string_value(v))
                           ? json_string_value(v) : "server tools");
            continue;
        }

        name = json_object_get(tool, "name");
        s = json_string_value(name);
        len = json_string_length(name);

        if (s == NULL || len > 128
            || !ngx_http_llm_fallback_msg_id_ok(s, len))
        {
            ngx_http_llm_fallback_msg_error(x, "tools.%zu.name: String should "
                                               "match pattern "
                                               "'^[a-zA-Z0-9_-]{1,128}$'", i);
            goto failed;
        }

        schema = json_object_get(tool, "input_schema");

        if (!json_is_object(schema)) {
            ngx_http_llm_fallback_msg_error(x, "tools.%zu.input_schema: %s",
                                            i, schema && !json_is_null(schema)
                                               ? "Input should be a valid "
                                                 "dictionary"
                                               : "Field required");
            goto failed;
        }

        s = json_string_value(json_object_get(schema, "type"));

        if (s == NULL || strcmp(s, "object") != 0) {
            ngx_http_llm_fallback_msg_error(x, "tools.%zu.input_schema.type: "
                                               "Input should be 'object'", i);
            goto failed;
        }

        v = json_object_get(tool, "description");

        if (v && !json_is_null(v) && !json_is_string(v)) {
            ngx_http_llm_fallback_msg_error(x, "tools.%zu.description: Input "
                                               "should be a valid string", i);
            goto failed;
        }

        if (json_object_get(tool, "cache_control")) {
            ngx_http_llm_fallback_msg_drop(x, "cache_control");
        }

        f = json_pack("{s:O,s:O*,s:O}",
                      "name", name,
                      "description", json_is_string(v) ? v : NULL,
                      "parameters", schema);

        if (f == NULL) {
            json_decref(f);
            goto nomem;
        }

        if (json_array_append_new(fns,
                                  json_pack("{s:s,s:o}",
                                            "type", "function",
                                            "function", f))
            != 0)
        {
            goto nomem;
        }
    }

    if (json_array_size(fns) && json_object_set(out, "tools", fns) != 0) {
        goto nomem;
    }

    json_decref(fns);

    return 0;

nomem:

    x->error[0] = '\0';

failed:

    json_decref(fns);
    return -1;
}


static int
ngx_http_llm_fallback_msg_tool_choice(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x)
{
    json_t      *tc, *v, *name, *choice;
    const char  *type;

    tc = json_object_get(req, "tool_choice");

    if (tc == NULL || json_is_null(tc)) {
        return 0;
    }

    if (!json_is_object(tc)) {
        return ngx_http_llm_fallback_msg_error(x, "tool_choice: Input should "
                                                  "be a valid dictionary");
    }

    v = json_object_get(req, "tools");

    if (v == NULL || json_is_null(v)) {
        return ngx_http_llm_fallback_msg_error(x, "tool_choice may only be "
                                                  "specified while providing "
                                                  "tools");
    }

    type = json_string_value(json_object_get(tc, "type"));
    name = json_object_get(tc, "name");

    if (type == NULL
        || (strcmp(type, "auto") != 0 && strcmp(type, "any") != 0
            && strcmp(type, "tool") != 0 && strcmp(type, "none") != 0))
    {
        return ngx_http_llm_fallback_msg_error(x, "tool_choice.type: Input "
                                   "tag '%.*s' found using 'type' does not "
                                   "match any of the expected tags: 'auto', "
                                   "'any', 'tool', 'none'",
                                   NGX_HTTP_LLM_FALLBACK_MSG_TAG_MAX,
                                   type ? type : "");
    }

    if (strcmp(type, "tool") == 0 && !json_is_string(name)) {
        return ngx_http_llm_fallback_msg_error(x, "tool_choice.tool.name: "
                                                  "Field required");
    }

    v = json_object_get(tc, "disable_parallel_tool_use");

    if (v && !json_is_null(v) && !json_is_boolean(v)) {
        return ngx_http_llm_fallback_msg_error(x, "tool_choice."
                                   "disable_parallel_tool_use: Input should "
                                   "be a valid boolean");
    }

    if (json_object_get(out, "tools") == NULL) {
        /* server tools only: nothing to choose from */
        ngx_http_llm_fallback_msg_drop(x, "tool_choice");
        return 0;
    }

    if (strcmp(type, "tool") == 0) {
        choice = json_pack("{s:s,s:{s:O}}",
                           "type", "function",
                           "function",
                           "name", name);

    } else {
        choice = json_string(strcmp(type, "any") == 0 ? "required" : type);
    }

    if (json_object_set_new(out, "tool_choice", choice) != 0
        || (json_is_true(v)
            && json_object_set_new(out, "parallel_tool_calls", json_false())
               != 0))
    {
        x->error[0] = '\0';
        return -1;
    }

    return 0;
}


/* thinking: enabled (a budget) or disabled */

static int
ngx_http_llm_fallback_msg_think(json_t *req, json_t *out,
    ngx_http_llm_fallback_msg_request_t *x, json_int_t max)
{
    json_t      *th, *v;
    const char  *type, *effort;
    json_int_t   budget;

    th = json_object_get(req, "thinking");

    if (th == NULL || json_is_null(th)) {
        return 0;
    }

    if (!json_is_object(th)) {
        return ngx_http_llm_fallback_msg_error(x, "thinking: Input should be "
                                                  "a valid dictionary");
    }

    type = json_string_value(json_object_get(th, "type"));

    if (type && strcmp(type, "disabled") == 0) {
        return 0;
    }

    if (type == NULL || strcmp(type, "enabled") != 0) {
        return ngx_http_llm_fallback_msg_error(x, "thinking.type: Input tag "
                                   "'%.*s' found using 'type' does not match "
                                   "any of the expected tags: 'enabled', "
                                   "'disabled'",
                                   NGX_HTTP_LLM_FALLBACK_MSG_TAG_MAX,
                                   type ? type : "");
    }

    v = json_object_get(th, "budget_tokens");

    if (v == NULL || json_is_null(v)) {
        return ngx_http_llm_fallback_msg_error(x, "thinking.enabled."
                                                  "budget_tokens: Field "
                                                  "required");
    }

    if (ngx_http_llm_fallback_msg_integer(v, &budget) != 0) {
        return ngx_http_llm_fallback_msg_error(x, "thinking.enabled."
                                                  "budget_tokens: Input "
                                                  "should be a valid "
                                                  "integer");
    }

    if (budget < NGX_HTTP_LLM_FALLBACK_MSG_MIN_BUDGET) {
        return ngx_http_llm_fallback_msg_error(x, "thinking.enabled."
                                                  "budget_tokens: Input "
                                                  "should be greater than or "
                                                  "equal to 1024");
    }

    if (max && budget >= max) {
        return ngx_http_llm_fallback_msg_error(x, "`max_tokens` must be "
                                                  "greater than "
                                                  "`thinking.budget_tokens`");
    }

    if (budget < NGX_HTTP_LLM_FALLBACK_MSG_LOW_BUDGET) {
        effort = "low";

    } else if (budget < NGX_HTTP_LLM_FALLBACK_MSG_HIGH_BUDGET) {
        effort = "medium";

    } else {
        effort = "high";
    }

    if (json_object_set_new(out, "reasoning_effort", json_string(effort))
        != 0)
    {
        x->error[0] = '\0';
        return -1;
    }

    return 0;
}


/* "data:MIME;base64,DATA" */

static json_t *
ngx_http_llm_fallback_msg_data_url(const char *mime, size_t mime_len,
    json_t *data)
{
    char    *buf, *p;
    size_t   len;
    json_t  *url;

    len = sizeof("data:") - 1 + mime_len + sizeof(";base64,") - 1
          + json_string_length(data);

    buf = malloc(len);
    if (buf == NULL) {
        return NULL;
    }

    p = buf;
    memcpy(p, "data:", sizeof("data:") - 1);
    p += sizeof("data:") - 1;
    memcpy(p, mime, mime_len);
    p += mime_len;
    memcpy(p, ";base64,", sizeof(";base64,") - 1);
    p += sizeof(";base64,") - 1;
    memcpy(p, json_string_value(data), json_string_length(data));

    url = json_stringn(buf, len);

    free(buf);

    return url;
}


/* ----------------------------------------------------------- response */


json_t *
ngx_http_llm_fallback_msg_response(json_t *completion,
    ngx_http_llm_fallback_msg_response_t *x)
{
    int          tools;
    size_t       i;
    json_t      *choice, *message, *content, *matched, *sequence, *id;
    json_t      *model, *b;
    const char  *reason, *type;
    json_int_t   in, out, cached;

    choice = json_array_get(json_object_get(completion, "choices"), 0);

    if (!json_is_object(choice)) {
        return NULL;
    }

    message = json_object_get(choice, "message");

    content = json_array();
    if (content == NULL) {
        return NULL;
    }

    if (ngx_http_llm_fallback_msg_thinking_blocks(message, content) != 0
        || ngx_http_llm_fallback_msg_texts(message, content) != 0
        || ngx_http_llm_fallback_msg_tool_uses(message, content, x) != 0)
    {
        json_decref(content);
        return NULL;
    }

    tools = 0;

    json_array_foreach(content, i, b) {
        type = json_string_value(json_object_get(b, "type"));
        tools |= (type && strcmp(type, "tool_use") == 0);
    }

    matched = ngx_http_llm_fallback_msg_matched(choice, x->stop_sequences);
    reason = ngx_http_llm_fallback_msg_stop_reason(
                 json_string_value(json_object_get(choice, "finish_reason")),
                 tools, matched, &sequence);

    ngx_http_llm_fallback_msg_counts(json_object_get(completion, "usage"),
                                     &in, &out, &cached);

    id = ngx_http_llm_fallback_msg_id(json_object_get(completion, "id"),
                                      x->id, x->id_len);
    model = ngx_http_llm_fallback_msg_model(
                json_object_get(completion, "model"), x->model,
                x->model_len);

    return json_pack("{s:o,s:s,s:s,s:o,s:o,s:s,s:O?,"
                     "s:{s:I,s:I,s:i,s:I}}",
                     "id", id,
                     "type", "message",
                     "role", "assistant",
                     "model", model,
                     "content", content,
                     "stop_reason", reason,
                     "stop_sequence", sequence,
                     "usage",
                     "input_tokens", in,
                     "output_tokens", out,
                     "cache_creation_input_tokens", 0,
                     "cache_read_input_tokens", cached);
}


/* "msg_..." : the answer's own id when it is one, else "msg_" + uid */

static json_t *
ngx_http_llm_fallback_msg_id(json_t *id, const char *uid, size_t uid_len)
{
    int   len;
    char  buf[NGX_HTTP_LLM_FALLBACK_MSG_ID_MAX + 8];

    if (json_is_string(id) && json_string_length(id) > sizeof("msg_") - 1
        && strncmp(json_string_value(id), "msg_", sizeof("msg_") - 1) == 0)
    {
        return json_incref(id);
    }

    len = snprintf(buf, sizeof(buf), "msg_%.*s",
                   (int) (uid_len < NGX_HTTP_LLM_FALLBACK_MSG_ID_MAX
                          ? uid_len : NGX_HTTP_LLM_FALLBACK_MSG_ID_MAX),
                   uid ? uid : "");

    if (len < 0 || (size_t) len >= sizeof(buf)) {
        return NULL;
    }

    return json_stringn(buf, len);
}


static json_t *
ngx_http_llm_fallback_msg_model(json_t *model, const char *dflt,
    size_t dflt_len)
{
    if (json_is_string(model) && json_string_length(model)) {
        return json_incref(model);
    }

    return json_stringn(dflt ? dflt : "", dflt ? dflt_len : 0);
}


/*
 * a tool use id as Anthropic takes it back (^[a-zA-Z0-9_-]+$): other
 * bytes become "_"; none is "toolu_" + uid + "_" + n
 */

static json_t *
ngx_http_llm_fallback_msg_tool_id(json_t *id, const char *uid,
    size_t uid_len, size_t n)
{
    int          len;
    char        *p;
    char         buf[NGX_HTTP_LLM_FALLBACK_MSG_ID_MAX + 32];
    size_t       i, l;
    json_t      *out;
    const char  *s;

    if (json_is_string(id) && json_string_length(id)) {
        s = json_string_value(id);
        l = json_string_length(id);

        if (ngx_http_llm_fallback_msg_id_ok(s, l)) {
            return json_incref(id);
        }

        p = malloc(l);
        if (p == NULL) {
            return NULL;
        }

    } else {
        len = snprintf(buf, sizeof(buf), "toolu_%.*s_%zu",
                       (int) (uid_len < NGX_HTTP_LLM_FALLBACK_MSG_ID_MAX
                              ? uid_len : NGX_HTTP_LLM_FALLBACK_MSG_ID_MAX),
                       uid ? uid : "", n);

        if (len < 0 || (size_t) len >= sizeof(buf)) {
            return NULL;
        }

        s = buf;
        l = len;
        p = buf;
    }

    for (i = 0; i < l; i++) {
        p[i] = ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
                || (s[i] >= '0' && s[i] <= '9') || s[i] == '-')
               ? s[i] : '_';
    }

    out = json_stringn(p, l);

    if (p != buf) {
        free(p);
    }

    return out;
}


/*
 * the stop sequence that ended the answer (borrowed), when the server
 * says which (vLLM "stop_reason", SGLang "matched_stop") and it is one
 * of the request's
 */

static json_t *
ngx_http_llm_fallback_msg_matched(json_t *choice, json_t *stop_sequences)
{
    size_t   i;
    json_t  *v, *s;

    v = json_object_get(choice, "stop_reason");

    if (!json_is_string(v)) {
        v = json_object_get(choice, "matched_stop");
    }

    if (!json_is_string(v)) {
        return NULL;
    }

    json_array_foreach(stop_sequences, i, s) {
        if (json_equal(s, v)) {
            return v;
        }
    }

    return NULL;
}


/*
 * the canonical finish reason as Anthropic's stop_reason; *sequence is
 * the matched stop sequence (borrowed) or NULL
 */

static const char *
ngx_http_llm_fallback_msg_stop_reason(const char *finish, int tools,
    json_t *matched, json_t **sequence)
{
    *sequence = NULL;

    if (finish == NULL || strcmp(finish, "stop") == 0) {
        /* some servers end tool calls with "stop" */

        if (tools) {
            return "tool_use";
        }

        if (matched) {
            *sequence = matched;
            return "stop_sequence";
        }

        return "end_turn";
    }

    if (strcmp(finish, "length") == 0) {
        return "max_tokens";
    }

    if (strcmp(finish, "tool_calls") == 0
        || strcmp(finish, "function_call") == 0)
    {
        return "tool_use";
    }

    if (strcmp(finish, "content_filter") == 0) {
        return "refusal";
    }

    return "end_turn";
}


/* Anthropic's counts: the input without the cached part */

static void
ngx_http_llm_fallback_msg_counts(json_t *usage, json_int_t *in,
    json_int_t *out, json_int_t *cached)
{
    json_int_t  p, c, k;

    p = ngx_http_llm_fallback_xlat_count(json_object_get(usage,
                                                         "prompt_tokens"));
    c = ngx_http_llm_fallback_xlat_count(json_object_get(usage,
                                                       "completion_tokens"));
    k = ngx_http_llm_fallback_xlat_count(
            json_object_get(json_object_get(usage, "prompt_tokens_details"),
                            "cached_tokens"));

    p = (p < 0) ? 0 : p;
    c = (c < 0) ? 0 : c;
    k = (k < 0) ? 0 : (k > p ? p : k);

    *in = p - k;
    *out = c;
    *cached = k;
}


/* thinking_blocks as they are, else reasoning_content as one block */

static int
ngx_http_llm_fallback_msg_thinking_blocks(json_t *message, json_t *content)
{
    size_t       i, n;
    json_t      *b, *v, *sig;
    const char  *type;

    n = json_array_size(content);

    json_array_foreach(json_object_get(message, "thinking_blocks"), i, b) {
        type = json_string_value(json_object_get(b, "type"));

        if (type == NULL) {
            continue;
        }

        if (strcmp(type, "thinking") == 0) {
            v = json_object_get(b, "thinking");
            sig = json_object_get(b, "signature");

            if (!json_is_string(v)) {
                continue;
            }

            sig = json_is_string(sig) ? json_incref(sig) : json_string("");

            if (json_array_append_new(content,
                    json_pack("{s:s,s:O,s:o}",
                              "type", "thinking",
                              "thinking", v,
                              "signature", sig))
                != 0)
            {
                return -1;
            }

            continue;
        }

        if (strcmp(type, "redacted_thinking") == 0) {
            v = json_object_get(b, "data");

            if (json_is_string(v)
                && json_array_append_new(content,
                       json_pack("{s:s,s:O}",
                                 "type", "redacted_thinking",
                                 "data", v))
                   != 0)
            {
                return -1;
            }
        }
    }

    if (json_array_size(content) > n) {
        return 0;
    }

    v = json_object_get(message, "reasoning_content");

    if (!json_is_string(v)) {
        v = json_object_get(message, "reasoning");
    }

    if (!json_is_string(v) || json_string_length(v) == 0) {
        return 0;
    }

    return json_array_append_new(content,
                                 json_pack("{s:s,s:O,s:s}",
                                           "type", "thinking",
                                           "thinking", v,
                                           "signature", ""));
}


/* the text, parts of text and a refusal: text blocks */

static int
ngx_http_llm_fallback_msg_texts(json_t *message, json_t *content)
{
    size_t       i;
    json_t      *c, *p, *v;
    const char  *type;

    c = json_object_get(message, "content");

    if (json_is_string(c) && json_string_length(c)) {
        if (json_array_append_new(content,
                                  json_pack("{s:s,s:O}",
                                            "type", "text",
                                            "text", c))
            != 0)
        {
            return -1;
        }
    }

    json_array_foreach(c, i, p) {
        type = json_string_value(json_object_get(p, "type"));
        v = json_object_get(p, "text");

        if (type && strcmp(type, "text") == 0
            && json_is_string(v) && json_string_length(v)
            && json_array_append_new(content,
                                     json_pack("{s:s,s:O}",
                                               "type", "text",
                                               "text", v))
               != 0)
        {
            return -1;
        }
    }

    v = json_object_get(message, "refusal");

    if (json_is_string(v) && json_string_length(v)) {
        if (json_array_append_new(content,
                                  json_pack("{s:s,s:O}",
                                            "type", "text",
                                            "text", v))
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


static int
ngx_http_llm_fallback_msg_tool_uses(json_t *message, json_t *content,
    ngx_http_llm_fallback_msg_response_t *x)
{
    size_t   i, n;
    json_t  *call, *fc;

    n = 0;

    json_array_foreach(json_object_get(message, "tool_calls"), i, call) {
        if (ngx_http_llm_fallback_msg_tool_block(call, content, n++, x) != 0)
        {
            return -1;
        }
    }

    /* the legacy function_call */

    fc = json_object_get(message, "function_call");

    if (json_is_object(fc)) {
        call = json_pack("{s:O}", "function", fc);

        if (call == NULL
            || ngx_http_llm_fallback_msg_tool_block(call, content, n, x) != 0)
        {
            json_decref(call);
            return -1;
        }

        json_decref(call);
    }

    return 0;
}


static int
ngx_http_llm_fallback_msg_tool_block(json_t *call, json_t *content,
    size_t n, ngx_http_llm_fallback_msg_response_t *x)
{
    json_t  *name, *id, *input;

    name = json_object_get(json_object_get(call, "function"), "name");

    if (!json_is_string(name)) {
        return 0;
    }

    input = ngx_http_llm_fallback_xlat_arguments(call);

    if (input == NULL) {
        input = json_object();
        if (input == NULL) {
            return -1;
        }
    }

    id = ngx_http_llm_fallback_msg_tool_id(json_object_get(call, "id"),
                                           x->id, x->id_len, n);

    return json_array_append_new(content,
                                 json_pack("{s:s,s:o,s:O,s:o}",
                                           "type", "tool_use",
                                           "id", id,
                                           "name", name,
                                           "input", input));
}


/* ------------------------------------------------------------- events */


/* message_start's data; takes id and model */

static json_t *
ngx_http_llm_fallback_msg_start_event(json_t *id, json_t *model,
    json_int_t in, json_int_t cached)
{
    return json_pack("{s:s,s:{s:o,s:s,s:s,s:o,s:[],s:n,s:n,"
                     "s:{s:I,s:i,s:i,s:I}}}",
                     "type", "message_start",
                     "message",
                     "id", id,
                     "type", "message",
                     "role", "assistant",
                     "model", model,
                     "content",
                     "stop_reason",
                     "stop_sequence",
                     "usage",
                     "input_tokens", in,
                     "output_tokens", 0,
                     "cache_creation_input_tokens", 0,
                     "cache_read_input_tokens", cached);
}


/* message_delta's data; sequence borrowed */

static json_t *
ngx_http_llm_fallback_msg_delta_event(const char *reason, json_t *sequence,
    json_int_t in, json_int_t out, json_int_t cached)
{
    return json_pack("{s:s,s:{s:s,s:O?},s:{s:I,s:I,s:I}}",
                     "type", "message_delta",
                     "delta",
                     "stop_reason", reason,
                     "stop_sequence", sequence,
                     "usage",
                     "output_tokens", out,
                     "input_tokens", in,
                     "cache_read_input_tokens", cached);
}


/* [NAME, DATA]; takes data */

static int
ngx_http_llm_fallback_msg_event(json_t *out, const char *name, json_t *data)
{
    return json_array_append_new(out, json_pack("[s,o]", name, data));
}


/* {"type":NAME,"index":N,KEY:VALUE} (KEY NULL: none); takes value */

static int
ngx_http_llm_fallback_msg_block_event(json_t *out, const char *name,
    int index, const char *key, json_t *value)
{
    json_t  *data;

    data = json_pack("{s:s,s:i}", "type", name, "index", index);

    if (data == NULL) {
        json_decref(value);
        return -1;
    }

    if (key && json_object_set_new(data, key, value) != 0) {
        json_decref(data);
        return -1;
    }

    return ngx_http_llm_fallback_msg_event(out, name, data);
}


static void
ngx_http_llm_fallback_msg_undo(json_t *out, size_t n)
{
    size_t  i;

    for (i = json_array_size(out); i > n; i--) {
        json_array_remove(out, i - 1);
    }
}


static void
ngx_http_llm_fallback_msg_keep(json_t **ref, json_t *v)
{
    json_incref(v);
    json_decref(*ref);
    *ref = v;
}


/* ---------------------------------------------------------- streaming */


int
ngx_http_llm_fallback_msg_stream(ngx_http_llm_fallback_msg_stream_t *s,
    json_t *chunk, json_t *out)
{
    size_t   n;
    json_t  *choices, *choice, *delta, *v, *usage, *matched;

    if (s->ended) {
        return 0;
    }

    if (!json_is_object(chunk)) {
        return -1;
    }

    choices = json_object_get(chunk, "choices");

    if (!json_is_array(choices)) {
        return -1;
    }

    n = json_array_size(out);

    if (!s->started
        && ngx_http_llm_fallback_msg_stream_start(s, chunk, out) != 0)
    {
        goto failed;
    }

    usage = json_object_get(chunk, "usage");

    if (json_is_object(usage)) {
        ngx_http_llm_fallback_msg_counts(usage, &s->input_tokens,
                                         &s->output_tokens, &s->cache_read);
    }

    choice = json_array_get(choices, 0);

    if (!json_is_object(choice)) {
        return 0;
    }

    delta = json_object_get(choice, "delta");

    if (json_is_object(delta)) {

        v = json_object_get(delta, "reasoning_content");

        if (!json_is_string(v)) {
            v = json_object_get(delta, "reasoning");
        }

        if (json_is_string(v) && json_string_length(v)
            && ngx_http_llm_fallback_msg_stream_thinking(s, out, v) != 0)
        {
            goto failed;
        }

        if (ngx_http_llm_fallback_msg_stream_blocks(s, out,
                                      json_object_get(delta,
                                                      "thinking_blocks"),
                                      !json_is_string(v)
                                      || json_string_length(v) == 0)
            != 0)
        {
            goto failed;
        }

        v = json_object_get(delta, "content");

        if (json_is_string(v) && json_string_length(v)
            && ngx_http_llm_fallback_msg_stream_text(s, out, v) != 0)
        {
            goto failed;
        }

        v = json_object_get(delta, "refusal");

        if (json_is_string(v) && json_string_length(v)
            && ngx_http_llm_fallback_msg_stream_text(s, out, v) != 0)
        {
            goto failed;
        }

        if (ngx_http_llm_fallback_msg_stream_tools(s, out,
                                        json_object_get(delta, "tool_calls"))
            != 0)
        {
            goto failed;
        }
    }

    v = json_object_get(choice, "finish_reason");

    if (json_is_string(v)) {
        ngx_http_llm_fallback_msg_keep(&s->finish, v);

        matched = ngx_http_llm_fallback_msg_matched(choice,
                                                    s->stop_sequences);
        if (matched) {
            ngx_http_llm_fallback_msg_keep(&s->stop_sequence, matched);
        }
    }

    return 0;

failed:

    ngx_http_llm_fallback_msg_undo(out, n);
    return -1;
}


int
ngx_http_llm_fallback_msg_stream_end(ngx_http_llm_fallback_msg_stream_t *s,
    json_t *out)
{
    int          i, tools;
    size_t       n;
    json_t      *sequence, *data;
    const char  *reason;

    if (s->ended) {
        return 0;
    }

    n = json_array_size(out);

    if (!s->started
        && ngx_http_llm_fallback_msg_stream_start(s, NULL, out) != 0)
    {
        goto failed;
    }

    if (ngx_http_llm_fallback_msg_stream_close(s, out) != 0) {
        goto failed;
    }

    tools = 0;

    for (i = 0; i < NGX_HTTP_LLM_FALLBACK_MSG_MAX_TOOLS; i++) {
        tools |= (s->tools[i] != 0);
    }

    reason = ngx_http_llm_fallback_msg_stop_reason(
                 json_string_value(s->finish), tools, s->stop_sequence,
                 &sequence);

    data = ngx_http_llm_fallback_msg_delta_event(reason, sequence,
                                                 s->input_tokens,
                                                 s->output_tokens,
                                                 s->cache_read);

    if (ngx_http_llm_fallback_msg_event(out, "message_delta", data) != 0
        || ngx_http_llm_fallback_msg_event(out, "message_stop",
                                           json_pack("{s:s}",
                                                     "type", "message_stop"))
           != 0)
    {
        goto failed;
    }

    s->ended = 1;

    return 0;

failed:

    ngx_http_llm_fallback_msg_undo(out, n);
    return -1;
}


void
ngx_http_llm_fallback_msg_stream_free(ngx_http_llm_fallback_msg_stream_t *s)
{
    json_decref(s->finish);
    json_decref(s->stop_sequence);
    json_decref(s->signature);

    s->finish = NULL;
    s->stop_sequence = NULL;
    s->signature = NULL;
}


/* message_start, from the first chunk (NULL: none came) */

static int
ngx_http_llm_fallback_msg_stream_start(ngx_http_llm_fallback_msg_stream_t *s,
    json_t *chunk, json_t *out)
{
    json_t  *id, *model;

    id = ngx_http_llm_fallback_msg_id(json_object_get(chunk, "id"),
                                      s->id, s->id_len);
    model = ngx_http_llm_fallback_msg_model(json_object_get(chunk, "model"),
                                            s->model, s->model_len);

    if (id == NULL || model == NULL) {
        json_decref(id);
        json_decref(model);
        return -1;
    }

    if (ngx_http_llm_fallback_msg_event(out, "message_start",
            ngx_http_llm_fallback_msg_start_event(id, model, 0, 0))
        != 0)
    {
        return -1;
    }

    s->started = 1;

    return 0;
}


/* a new content block, the open one closed first; takes block */

static int
ngx_http_llm_fallback_msg_stream_open(ngx_http_llm_fallback_msg_stream_t *s,
    json_t *out, int kind, json_t *block)
{
    if (ngx_http_llm_fallback_msg_stream_close(s, out) != 0) {
        json_decref(block);
        return -1;
    }

    if (ngx_http_llm_fallback_msg_block_event(out, "content_block_start",
                                              s->nblocks, "content_block",
                                              block)
        != 0)
    {
        return -1;
    }

    s->block = s->nblocks++;
    s->kind = kind;

    return 0;
}


/* content_block_stop of the open block, its signature before */

static int
ngx_http_llm_fallback_msg_stream_close(ngx_http_llm_fallback_msg_stream_t *s,
    json_t *out)
{
    if (s->kind == 0) {
        return 0;
    }

    if (s->kind == NGX_HTTP_LLM_FALLBACK_MSG_THINKING && s->signature
        && ngx_http_llm_fallback_msg_stream_delta(s, out, "signature_delta",
                                                  "signature", s->signature)
           != 0)
    {
        return -1;
    }

    if (ngx_http_llm_fallback_msg_block_event(out, "content_block_stop",
                                              s->block, NULL, NULL)
        != 0)
    {
        return -1;
    }

    s->kind = 0;
    json_decref(s->signature);
    s->signature = NULL;

    return 0;
}


/* content_block_delta {"type":TYPE,KEY:VALUE}; value borrowed */

static int
ngx_http_llm_fallback_msg_stream_delta(ngx_http_llm_fallback_msg_stream_t *s,
    json_t *out, const char *type, const char *key, json_t *value)
{
    return ngx_http_llm_fallback_msg_block_event(out, "content_block_delta",
               s->block, "delta",
               json_pack("{s:s,s:O}", "type", type, key, value));
}


static int
ngx_http_llm_fallback_msg_stream_thinking(
    ngx_http_llm_fallback_msg_stream_t *s, json_t *out, json_t *text)
{
    /* a thinking block that got its signature is complete */

    if ((s->kind != NGX_HTTP_LLM_FALLBACK_MSG_THINKING || s->signature)
        && ngx_http_llm_fallback_msg_stream_open(s, out,
                            NGX_HTTP_LLM_FALLBACK_MSG_THINKING,
                            json_pack("{s:s,s:s,s:s}",
                                      "type", "thinking",
                                      "thinking", "",
                                      "signature", ""))
           != 0)
    {
        return -1;
    }

    if (json_string_length(text) == 0) {
        return 0;
    }

    return ngx_http_llm_fallback_msg_stream_delta(s, out, "thinking_delta",
                                                  "thinking", text);
}


/*
 * a delta's thinking_blocks: the signatures of thinking blocks (their
 * text too when "texts", the delta having no reasoning text), redacted
 * blocks whole
 */

static int
ngx_http_llm_fallback_msg_stream_blocks(ngx_http_llm_fallback_msg_stream_t *s,
    json_t *out, json_t *blocks, int texts)
{
    size_t       i;
    json_t      *b, *v, *sig;
    const char  *type;

    json_array_foreach(blocks, i, b) {
        type = json_string_value(json_object_get(b, "type"));

        if (type == NULL) {
            continue;
        }

        if (strcmp(type, "redacted_thinking") == 0) {
            v = json_object_get(b, "data");

            if (!json_is_string(v)) {
                continue;
            }

            if (ngx_http_llm_fallback_msg_stream_open(s, out,
                                NGX_HTTP_LLM_FALLBACK_MSG_THINKING,
                                json_pack("{s:s,s:O}",
                                          "type", "redacted_thinking",
                                          "data", v))
                != 0
                || ngx_http_llm_fallback_msg_stream_close(s, out) != 0)
            {
                return -1;
            }

            continue;
        }

        if (strcmp(type, "thinking") != 0) {
            continue;
        }

        v = json_object_get(b, "thinking");
        sig = json_object_get(b, "signature");

        if (texts && json_is_string(v) && json_string_length(v)) {
            if (ngx_http_llm_fallback_msg_stream_thinking(s, out, v) != 0) {
                return -1;
            }
        }

        if (!json_is_string(sig) || json_string_length(sig) == 0) {
            continue;
        }

        if (s->kind != NGX_HTTP_LLM_FALLBACK_MSG_THINKING || s->signature) {
            if (ngx_http_llm_fallback_msg_stream_thinking(s, out, v) != 0) {
                return -1;
            }
        }

        ngx_http_llm_fallback_msg_keep(&s->signature, sig);
    }

    return 0;
}


static int
ngx_http_llm_fallback_msg_stream_text(ngx_http_llm_fallback_msg_stream_t *s,
    json_t *out, json_t *text)
{
    if (s->kind != NGX_HTTP_LLM_FALLBACK_MSG_TEXT
        && ngx_http_llm_fallback_msg_stream_open(s, out,
                            NGX_HTTP_LLM_FALLBACK_MSG_TEXT,
                            json_pack("{s:s,s:s}", "type", "text",
                                      "text", ""))
           != 0)
    {
        return -1;
    }

    return ngx_http_llm_fallback_msg_stream_delta(s, out, "text_delta",
                                                  "text", text);
}


/*
 * tool call deltas: a new index opens a tool_use block; arguments go to
 * the open block of their call (a call continued after another one
 * started cannot be, the blocks being sequential: its arguments are
 * lost, which OpenAI-compatible servers do not make happen)
 */

static int
ngx_http_llm_fallback_msg_stream_tools(ngx_http_llm_fallback_msg_stream_t *s,
    json_t *out, json_t *calls)
{
    size_t       i;
    json_t      *call, *fn, *id, *name, *args, *v;
    json_int_t   k;

    json_array_foreach(calls, i, call) {
        v = json_object_get(call, "index");
        k = json_is_integer(v) ? json_integer_value(v) : (json_int_t) i;

        if (k < 0 || k >= NGX_HTTP_LLM_FALLBACK_MSG_MAX_TOOLS) {
            continue;
        }

        fn = json_object_get(call, "function");
        args = json_object_get(fn, "arguments");

        if (s->tools[k] == 0) {
            name = json_object_get(fn, "name");
            id = ngx_http_llm_fallback_msg_tool_id(json_object_get(call, "id"),
                                                   s->id, s->id_len,
                                                   (size_t) k);
            if (id == NULL) {
                return -1;
            }

            if (ngx_http_llm_fallback_msg_stream_open(s, out,
                                NGX_HTTP_LLM_FALLBACK_MSG_TOOL,
                                json_pack("{s:s,s:o,s:s%,s:{}}",
                                          "type", "tool_use",
                                          "id", id,
                                          "name",
                                          json_is_string(name)
                                          ? json_string_value(name) : "",
                                          json_string_length(name),
                                          "input"))
                != 0)
            {
                return -1;
            }

            s->tools[k] = s->block + 1;
        }

        if (!json_is_string(args) || json_string_length(args) == 0
            || s->kind != NGX_HTTP_LLM_FALLBACK_MSG_TOOL
            || s->tools[k] != s->block + 1)
        {
            continue;
        }

        if (ngx_http_llm_fallback_msg_stream_delta(s, out, "input_json_delta",
                                                   "partial_json", args)
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* ------------------------------------------------------------- replay */


int
ngx_http_llm_fallback_msg_replay(json_t *completion,
    ngx_http_llm_fallback_msg_response_t *x, json_t *out)
{
    int          index;
    size_t       n, i;
    json_t      *msg, *b, *u, *data;
    json_int_t   in, cached;

    msg = ngx_http_llm_fallback_msg_response(completion, x);
    if (msg == NULL) {
        return -1;
    }

    n = json_array_size(out);
    u = json_object_get(msg, "usage");

    in = json_integer_value(json_object_get(u, "input_tokens"));
    cached = json_integer_value(json_object_get(u, "cache_read_input_tokens"));

    data = ngx_http_llm_fallback_msg_start_event(
               json_incref(json_object_get(msg, "id")),
               json_incref(json_object_get(msg, "model")), in, cached);

    if (ngx_http_llm_fallback_msg_event(out, "message_start", data) != 0) {
        goto failed;
    }

    index = 0;

    json_array_foreach(json_object_get(msg, "content"), i, b) {
        if (ngx_http_llm_fallback_msg_replay_block(out, index++, b) != 0) {
            goto failed;
        }
    }

    data = ngx_http_llm_fallback_msg_delta_event(
               json_string_value(json_object_get(msg, "stop_reason")),
               json_object_get(msg, "stop_sequence"), in,
               json_integer_value(json_object_get(u, "output_tokens")),
               cached);

    if (ngx_http_llm_fallback_msg_event(out, "message_delta", data) != 0
        || ngx_http_llm_fallback_msg_event(out, "message_stop",
                                           json_pack("{s:s}",
                                                     "type", "message_stop"))
           != 0)
    {
        goto failed;
    }

    json_decref(msg);

    return 0;

failed:

    ngx_http_llm_fallback_msg_undo(out, n);
    json_decref(msg);

    return -1;
}


/* one content block as start, deltas and stop */

static int
ngx_http_llm_fallback_msg_replay_block(json_t *out, int index, json_t *b)
{
    int          rc;
    char        *s;
    json_t      *start, *v, *sig;
    const char  *type;

    type = json_string_value(json_object_get(b, "type"));

    if (type == NULL) {
        return -1;
    }

    if (strcmp(type, "text") == 0) {
        if (ngx_http_llm_fallback_msg_block_event(out, "content_block_start",
                index, "content_block",
                json_pack("{s:s,s:s}", "type", "text", "text", ""))
            != 0
            || ngx_http_llm_fallback_msg_block_event(out,
                   "content_block_delta", index, "delta",
                   json_pack("{s:s,s:O}",
                             "type", "text_delta",
                             "text", json_object_get(b, "text")))
               != 0)
        {
            return -1;
        }

    } else if (strcmp(type, "thinking") == 0) {
        v = json_object_get(b, "thinking");
        sig = json_object_get(b, "signature");

        if (ngx_http_llm_fallback_msg_block_event(out, "content_block_start",
                index, "content_block",
                json_pack("{s:s,s:s,s:s}", "type", "thinking",
                          "thinking", "", "signature", ""))
            != 0)
        {
            return -1;
        }

        if (json_string_length(v)
            && ngx_http_llm_fallback_msg_block_event(out,
                   "content_block_delta", index, "delta",
                   json_pack("{s:s,s:O}",
                             "type", "thinking_delta",
                             "thinking", v))
               != 0)
        {
            return -1;
        }

        if (json_string_length(sig)
            && ngx_http_llm_fallback_msg_block_event(out,
                   "content_block_delta", index, "delta",
                   json_pack("{s:s,s:O}",
                             "type", "signature_delta",
                             "signature", sig))
               != 0)
        {
            return -1;
        }

    } else if (strcmp(type, "tool_use") == 0) {
        start = json_pack("{s:s,s:O,s:O,s:{}}",
                          "type", "tool_use",
                          "id", json_object_get(b, "id"),
                          "name", json_object_get(b, "name"),
                          "input");

        if (ngx_http_llm_fallback_msg_block_event(out, "content_block_start",
                                                  index, "content_block",
                                                  start)
            != 0)
        {
            return -1;
        }

        s = json_dumps(json_object_get(b, "input"), JSON_COMPACT);
        if (s == NULL) {
            return -1;
        }

        rc = ngx_http_llm_fallback_msg_block_event(out, "content_block_delta",
                 index, "delta",
                 json_pack("{s:s,s:s}",
                           "type", "input_json_delta",
                           "partial_json", s));
        free(s);

        if (rc != 0) {
            return -1;
        }

    } else {
        /* redacted_thinking, whole in its start */

        if (ngx_http_llm_fallback_msg_block_event(out, "content_block_start",
                                                  index, "content_block",
                                                  json_incref(b))
            != 0)
        {
            return -1;
        }
    }

    return ngx_http_llm_fallback_msg_block_event(out, "content_block_stop",
                                                 index, NULL, NULL);
}


/* ------------------------------------------------------------- errors */


const char *
ngx_http_llm_fallback_msg_error_type(unsigned status)
{
    switch (status) {

    case 400:
        return "invalid_request_error";

    case 401:
        return "authentication_error";

    case 403:
        return "permission_error";

    case 404:
        return "not_found_error";

    case 413:
        return "request_too_large";

    case 429:
        return "rate_limit_error";

    case 529:
        return "overloaded_error";

    default:
        break;
    }

    if (status >= 400 && status < 500) {
        return "invalid_request_error";
    }

    return "api_error";
}
