
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#ifndef _NGX_HTTP_LLM_FALLBACK_FUZZ_MESSAGES_H_INCLUDED_
#define _NGX_HTTP_LLM_FALLBACK_FUZZ_MESSAGES_H_INCLUDED_


/*
 * Shared by the harnesses of the Messages door's translators
 * (ngx_http_llm_fallback_messages.h): the shape of an Anthropic message
 * and the grammar of Anthropic's stream events, checked event by event,
 * with the content the events give folded back into blocks.
 */


#include "ngx_http_llm_fallback_fuzz.h"
#include "ngx_http_llm_fallback_messages.h"


#define NGX_HTTP_LLM_FALLBACK_FUZZ_TEXT      1
#define NGX_HTTP_LLM_FALLBACK_FUZZ_THINKING  2
#define NGX_HTTP_LLM_FALLBACK_FUZZ_REDACTED  3
#define NGX_HTTP_LLM_FALLBACK_FUZZ_TOOL      4


/* where a stream of events is */
typedef struct {
    int                               started;
    int                               delta;
    int                               stopped;
    /* the open block's index (-1: none), its kind, whether it is signed */
    int                               open;
    int                               kind;
    int                               signed_;
    int                               nblocks;
    size_t                            text;
    size_t                            tools;
    json_t                           *stop_reason;
    /* the blocks as the events give them; tool input as "partial" */
    json_t                           *blocks;
} ngx_http_llm_fallback_fuzz_events_t;


static int ngx_http_llm_fallback_fuzz_msg_id_ok(json_t *id);
static int ngx_http_llm_fallback_fuzz_msg_reason(json_t *reason,
    json_t *sequence);
static void ngx_http_llm_fallback_fuzz_msg_usage(json_t *usage);
static void ngx_http_llm_fallback_fuzz_msg_block(json_t *b, int start);
static void ngx_http_llm_fallback_fuzz_message(json_t *m);
static void ngx_http_llm_fallback_fuzz_events_init(
    ngx_http_llm_fallback_fuzz_events_t *e);
static void ngx_http_llm_fallback_fuzz_append(json_t *block,
    const char *key, json_t *more);
static void ngx_http_llm_fallback_fuzz_event(
    ngx_http_llm_fallback_fuzz_events_t *e, json_t *ev);
static void ngx_http_llm_fallback_fuzz_events(
    ngx_http_llm_fallback_fuzz_events_t *e, json_t *out, size_t from);
static void ngx_http_llm_fallback_fuzz_events_done(
    ngx_http_llm_fallback_fuzz_events_t *e);
static void ngx_http_llm_fallback_fuzz_events_free(
    ngx_http_llm_fallback_fuzz_events_t *e);


/* ^[a-zA-Z0-9_-]+$, as Anthropic takes tool use ids back */

static int
ngx_http_llm_fallback_fuzz_msg_id_ok(json_t *id)
{
    size_t       i, len;
    const char  *s;

    s = json_string_value(id);
    len = json_string_length(id);

    if (s == NULL || len == 0) {
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


/* a stop reason of Anthropic's; a sequence exactly with stop_sequence */

static int
ngx_http_llm_fallback_fuzz_msg_reason(json_t *reason, json_t *sequence)
{
    const char  *s;

    s = json_string_value(reason);

    if (s == NULL) {
        return 0;
    }

    if (strcmp(s, "stop_sequence") == 0) {
        return json_is_string(sequence);
    }

    return json_is_null(sequence)
           && (strcmp(s, "end_turn") == 0 || strcmp(s, "max_tokens") == 0
               || strcmp(s, "tool_use") == 0 || strcmp(s, "refusal") == 0);
}


static void
ngx_http_llm_fallback_fuzz_msg_usage(json_t *usage)
{
    json_t      *v;
    const char  *key;

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(usage));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_integer(json_object_get(usage, "input_tokens")));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_integer(json_object_get(usage, "output_tokens")));

    json_object_foreach(usage, key, v) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_integer(v)
                                          && json_integer_value(v) >= 0);
    }
}


/* a content block of a message (start: as content_block_start has it) */

static void
ngx_http_llm_fallback_fuzz_msg_block(json_t *b, int start)
{
    json_t      *v;
    const char  *type;

    type = json_string_value(json_object_get(b, "type"));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(type != NULL);

    if (strcmp(type, "text") == 0) {
        v = json_object_get(b, "text");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(start ? json_string_length(v) == 0
                                                : json_string_length(v) > 0);
        return;
    }

    if (strcmp(type, "thinking") == 0) {
        v = json_object_get(b, "thinking");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!start
                                          || json_string_length(v) == 0);
        v = json_object_get(b, "signature");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(v));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!start
                                          || json_string_length(v) == 0);
        return;
    }

    if (strcmp(type, "redacted_thinking") == 0) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_string(json_object_get(b, "data")));
        return;
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(type, "tool_use") == 0);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        ngx_http_llm_fallback_fuzz_msg_id_ok(json_object_get(b, "id")));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_string(json_object_get(b, "name")));

    v = json_object_get(b, "input");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(v));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!start || json_object_size(v) == 0);
}


/* an Anthropic message, as the door sends it */

static void
ngx_http_llm_fallback_fuzz_message(json_t *m)
{
    size_t       i;
    json_t      *b;
    const char  *s;

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_object(m));

    s = json_string_value(json_object_get(m, "id"));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s && strncmp(s, "msg_", 4) == 0);

    s = json_string_value(json_object_get(m, "type"));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s && strcmp(s, "message") == 0);

    s = json_string_value(json_object_get(m, "role"));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(s && strcmp(s, "assistant") == 0);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_string(json_object_get(m, "model")));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_array(json_object_get(m, "content")));

    json_array_foreach(json_object_get(m, "content"), i, b) {
        ngx_http_llm_fallback_fuzz_msg_block(b, 0);
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(ngx_http_llm_fallback_fuzz_msg_reason(
        json_object_get(m, "stop_reason"),
        json_object_get(m, "stop_sequence")));

    ngx_http_llm_fallback_fuzz_msg_usage(json_object_get(m, "usage"));

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_is_integer(json_object_get(json_object_get(m, "usage"),
                                        "cache_read_input_tokens")));
}


static void
ngx_http_llm_fallback_fuzz_events_init(ngx_http_llm_fallback_fuzz_events_t *e)
{
    memset(e, 0, sizeof(ngx_http_llm_fallback_fuzz_events_t));

    e->open = -1;
    e->blocks = json_array();
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(e->blocks != NULL);
}


/* block[key] .= more */

static void
ngx_http_llm_fallback_fuzz_append(json_t *block, const char *key,
    json_t *more)
{
    char    *buf;
    size_t   a, b;
    json_t  *old;

    old = json_object_get(block, key);
    a = json_string_length(old);
    b = json_string_length(more);

    buf = malloc(a + b + 1);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(buf != NULL);

    memcpy(buf, json_string_value(old) ? json_string_value(old) : "", a);
    memcpy(buf + a, json_string_value(more), b);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
        json_object_set_new(block, key, json_stringn(buf, a + b)) == 0);

    free(buf);
}


/* one [NAME, DATA] event, where the grammar allows it */

static void
ngx_http_llm_fallback_fuzz_event(ngx_http_llm_fallback_fuzz_events_t *e,
    json_t *ev)
{
    json_t      *data, *v, *b, *block;
    const char  *name, *type;

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_array(ev)
                                      && json_array_size(ev) == 2);

    name = json_string_value(json_array_get(ev, 0));
    data = json_array_get(ev, 1);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(name != NULL && json_is_object(data));

    type = json_string_value(json_object_get(data, "type"));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(type && strcmp(type, name) == 0);

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!e->stopped);

    if (strcmp(name, "message_start") == 0) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!e->started);
        e->started = 1;

        v = json_object_get(data, "message");
        type = json_string_value(json_object_get(v, "id"));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(type
                                          && strncmp(type, "msg_", 4) == 0);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_string(json_object_get(v, "model")));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_array(json_object_get(v, "content"))
            && json_array_size(json_object_get(v, "content")) == 0);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_null(json_object_get(v, "stop_reason")));
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_is_null(json_object_get(v, "stop_sequence")));
        ngx_http_llm_fallback_fuzz_msg_usage(json_object_get(v, "usage"));
        return;
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(e->started);

    if (strcmp(name, "message_stop") == 0) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(e->delta);
        e->stopped = 1;
        return;
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!e->delta);

    if (strcmp(name, "message_delta") == 0) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(e->open == -1);
        e->delta = 1;

        v = json_object_get(data, "delta");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            ngx_http_llm_fallback_fuzz_msg_reason(
                json_object_get(v, "stop_reason"),
                json_object_get(v, "stop_sequence")));

        e->stop_reason = json_object_get(v, "stop_reason");

        ngx_http_llm_fallback_fuzz_msg_usage(json_object_get(data, "usage"));
        return;
    }

    v = json_object_get(data, "index");
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_integer(v));

    if (strcmp(name, "content_block_start") == 0) {
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(e->open == -1);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_integer_value(v)
                                          == e->nblocks);

        b = json_object_get(data, "content_block");
        ngx_http_llm_fallback_fuzz_msg_block(b, 1);

        type = json_string_value(json_object_get(b, "type"));

        e->kind = (strcmp(type, "text") == 0)
                  ? NGX_HTTP_LLM_FALLBACK_FUZZ_TEXT
                  : (strcmp(type, "thinking") == 0)
                  ? NGX_HTTP_LLM_FALLBACK_FUZZ_THINKING
                  : (strcmp(type, "redacted_thinking") == 0)
                  ? NGX_HTTP_LLM_FALLBACK_FUZZ_REDACTED
                  : NGX_HTTP_LLM_FALLBACK_FUZZ_TOOL;

        e->open = e->nblocks++;
        e->signed_ = 0;
        e->tools += (e->kind == NGX_HTTP_LLM_FALLBACK_FUZZ_TOOL);

        block = json_deep_copy(b);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(block != NULL);
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(
            json_array_append_new(e->blocks, block) == 0);
        return;
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(e->open >= 0
                                      && json_integer_value(v) == e->open);

    if (strcmp(name, "content_block_stop") == 0) {
        e->open = -1;
        e->kind = 0;
        return;
    }

    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(name, "content_block_delta")
                                      == 0);

    block = json_array_get(e->blocks, e->open);
    v = json_object_get(data, "delta");
    type = json_string_value(json_object_get(v, "type"));
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(type != NULL);

    switch (e->kind) {

    case NGX_HTTP_LLM_FALLBACK_FUZZ_TEXT:
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(type, "text_delta") == 0);
        b = json_object_get(v, "text");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(b));
        e->text += json_string_length(b);
        ngx_http_llm_fallback_fuzz_append(block, "text", b);
        break;

    case NGX_HTTP_LLM_FALLBACK_FUZZ_THINKING:

        /* the signature comes last */

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(!e->signed_);

        if (strcmp(type, "signature_delta") == 0) {
            b = json_object_get(v, "signature");
            NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(b));
            ngx_http_llm_fallback_fuzz_append(block, "signature", b);
            e->signed_ = 1;
            break;
        }

        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(type, "thinking_delta")
                                          == 0);
        b = json_object_get(v, "thinking");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(b));
        ngx_http_llm_fallback_fuzz_append(block, "thinking", b);
        break;

    case NGX_HTTP_LLM_FALLBACK_FUZZ_TOOL:
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(strcmp(type, "input_json_delta")
                                          == 0);
        b = json_object_get(v, "partial_json");
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(json_is_string(b));
        ngx_http_llm_fallback_fuzz_append(block, "partial", b);
        break;

    default:
        /* redacted thinking has no delta */
        NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(0);
    }
}


static void
ngx_http_llm_fallback_fuzz_events(ngx_http_llm_fallback_fuzz_events_t *e,
    json_t *out, size_t from)
{
    size_t  i;

    for (i = from; i < json_array_size(out); i++) {
        ngx_http_llm_fallback_fuzz_event(e, json_array_get(out, i));
    }
}


/* a whole stream: started, every block closed, ended */

static void
ngx_http_llm_fallback_fuzz_events_done(ngx_http_llm_fallback_fuzz_events_t *e)
{
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(e->started && e->delta && e->stopped);
    NGX_HTTP_LLM_FALLBACK_FUZZ_ASSERT(e->open == -1);
}


static void
ngx_http_llm_fallback_fuzz_events_free(ngx_http_llm_fallback_fuzz_events_t *e)
{
    json_decref(e->blocks);
}


#endif /* _NGX_HTTP_LLM_FALLBACK_FUZZ_MESSAGES_H_INCLUDED_ */
