
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"
#include "ngx_http_llm_fallback_translate.h"


static ngx_int_t ngx_http_llm_fallback_chat_parse(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err);
static ngx_int_t ngx_http_llm_fallback_unparsable(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err);
static ngx_int_t ngx_http_llm_fallback_invalid(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err,
    const char *fmt, const char *param, ngx_int_t index, const char *field,
    const char *expected);
static ngx_int_t ngx_http_llm_fallback_chat_result(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *type, ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_chat_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err,
    ngx_str_t *body);
static json_t *ngx_http_llm_fallback_chat_attempts(
    ngx_http_llm_fallback_ctx_t *ctx);
static ngx_int_t ngx_http_llm_fallback_chat_stream_start(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sse_t *sse);
static ngx_int_t ngx_http_llm_fallback_chat_stream_chunk(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sse_t *sse,
    json_t *chunk, ngx_str_t *raw);
static ngx_int_t ngx_http_llm_fallback_chat_stream_end(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sse_t *sse);
static ngx_int_t ngx_http_llm_fallback_chat_stream_error(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_sse_t *sse,
    json_t *error);
static ngx_int_t ngx_http_llm_fallback_chat_replay(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *out);
static ngx_int_t ngx_http_llm_fallback_chat_replay_reasoning(
    ngx_array_t *events, json_t *completion, json_int_t index,
    json_t *message);
static ngx_int_t ngx_http_llm_fallback_chat_replay_delta(ngx_array_t *events,
    json_t *completion, json_int_t index, json_t *delta, ngx_uint_t first);
static ngx_int_t ngx_http_llm_fallback_chat_replay_event(ngx_array_t *events,
    json_t *chunk);
static json_t *ngx_http_llm_fallback_chat_chunk(json_t *completion,
    json_t *choices);
static json_t *ngx_http_llm_fallback_json_str(ngx_str_t *s);
static ngx_int_t ngx_http_llm_fallback_error_shape(json_t *error,
    const char *type);


/*
 * The OpenAI Chat Completions front door (README "Front doors"): its
 * requests are the canonical request, its answers the canonical result
 * and its stream events the canonical chunks, so that nothing is
 * translated on the way in or out.
 */


ngx_http_llm_fallback_api_t  ngx_http_llm_fallback_api_chat = {
    ngx_string("chat"),
    ngx_null_string,            /* the cache keys predate the tag */
    ngx_null_string,
    NGX_HTTP_LLM_FALLBACK_FORMAT_OPENAI,  /* passed through by openai.c */
    0,
    NULL,
    NULL,
    ngx_http_llm_fallback_chat_parse,
    ngx_http_llm_fallback_chat_result,
    ngx_http_llm_fallback_chat_error,
    ngx_http_llm_fallback_chat_stream_start,
    ngx_http_llm_fallback_chat_stream_chunk,
    ngx_http_llm_fallback_chat_stream_end,
    ngx_http_llm_fallback_chat_stream_error,
    NULL
};


static ngx_str_t  ngx_http_llm_fallback_chat_json =
    ngx_string("application/json");
static ngx_str_t  ngx_http_llm_fallback_chat_sse =
    ngx_string("text/event-stream");
static ngx_str_t  ngx_http_llm_fallback_chat_no_cache =
    ngx_string("no-cache");


/*
 * Parses the client's body with the scanner, checks it and fills
 * client_model, stream and include_usage: no jansson tree is built.
 * NGX_DECLINED with err filled for the client, NGX_ERROR on no memory.
 */

static ngx_int_t
ngx_http_llm_fallback_chat_parse(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_error_t *err)
{
    int                                    rc;
    ngx_http_llm_fallback_json_t          *json;
    ngx_http_llm_fallback_json_request_t   req;

    if (ctx->body.len == 0) {
        err->status = NGX_HTTP_BAD_REQUEST;
        err->type = "invalid_request_error";
        ngx_str_set(&err->message,
                    "The request body is empty: expected a JSON object "
                    "with 'messages'.");
        return NGX_DECLINED;
    }

    json = &ctx->scan;

    rc = ngx_http_llm_fallback_json_parse(json, ctx->body.data,
                                          ctx->body.len,
                                          ngx_http_llm_fallback_json_palloc,
                                          ctx->request->pool);

    if (rc == NGX_HTTP_LLM_FALLBACK_JSON_NOMEM) {
        return NGX_ERROR;
    }

    if (rc != NGX_HTTP_LLM_FALLBACK_JSON_OK) {
        return ngx_http_llm_fallback_unparsable(ctx, err);
    }

    ngx_http_llm_fallback_json_request(json, &req);

    if (req.fmt) {
        return ngx_http_llm_fallback_invalid(ctx, err, req.fmt, req.param,
                                             req.index, req.field,
                                             req.expected);
    }

    if (req.model
        && ngx_http_llm_fallback_json_tok_str(ctx->request->pool,
                                              &json->toks[req.model],
                                              &ctx->client_model)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->stream = req.stream;
    ctx->include_usage = req.include_usage;

    return NGX_OK;
}


/*
 * The scanner refuses what jansson refuses: jansson is asked for its
 * error text, off the hot path.
 */

static ngx_int_t
ngx_http_llm_fallback_unparsable(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_error_t *err)
{
    json_t        *json;
    json_error_t   jerr;

    json = json_loadb((char *) ctx->body.data, ctx->body.len, 0, &jerr);

    if (json) {
        json_decref(json);

        ngx_log_error(NGX_LOG_ALERT, ctx->request->connection->log, 0,
                      "llm fallback: the JSON scanner refused a body that "
                      "jansson accepts");

        ngx_cpystrn((u_char *) jerr.text, (u_char *) "invalid JSON",
                    sizeof(jerr.text));
        jerr.line = 0;
        jerr.column = 0;
    }

    err->status = NGX_HTTP_BAD_REQUEST;
    err->type = "invalid_request_error";
    ngx_str_null(&err->param);

    err->message.data = ngx_pnalloc(ctx->request->pool,
                                    sizeof(jerr.text) + 128);
    if (err->message.data == NULL) {
        return NGX_ERROR;
    }

    err->message.len = ngx_sprintf(err->message.data,
                                   "We could not parse the JSON body of "
                                   "your request: %s (line %d, column %d)",
                                   jerr.text, jerr.line, jerr.column)
                       - err->message.data;

    return NGX_DECLINED;
}


/*
 * fills an invalid_request_error; "param" is the field name, with
 * "[index]" and ".field" appended when index >= 0 and field != NULL;
 * the message format takes the param (%s) and then "expected" (%s)
 */

static ngx_int_t
ngx_http_llm_fallback_invalid(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_error_t *err, const char *fmt, const char *param,
    ngx_int_t index, const char *field, const char *expected)
{
    u_char      *p;
    size_t       len;
    ngx_pool_t  *pool;

    pool = ctx->request->pool;

    err->status = NGX_HTTP_BAD_REQUEST;
    err->type = "invalid_request_error";

    ngx_str_null(&err->param);

    if (param) {
        len = ngx_strlen(param) + NGX_INT_T_LEN + 3
              + (field ? ngx_strlen(field) + 1 : 0);

        p = ngx_pnalloc(pool, len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        err->param.data = p;

        p = ngx_sprintf(p, "%s", param);

        if (index >= 0) {
            p = ngx_sprintf(p, "[%i]", index);
        }

        if (field) {
            p = ngx_sprintf(p, ".%s", field);
        }

        *p = '\0';
        err->param.len = p - err->param.data;
    }

    len = ngx_strlen(fmt) + err->param.len
          + (expected ? ngx_strlen(expected) : 0);

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    err->message.data = p;

    /* fmt is a constant with at most two %s, param first */

    if (expected) {
        p = ngx_sprintf(p, fmt, err->param.data, expected);

    } else if (param) {
        p = ngx_sprintf(p, fmt, err->param.data);

    } else {
        p = ngx_cpymem(p, fmt, ngx_strlen(fmt));
    }

    err->message.len = p - err->message.data;

    return NGX_DECLINED;
}


/*
 * The result as the client's body: the completion's bytes, or replayed as
 * chunk events for a "stream": true request (a cache entry, or an answer
 * that was not an event stream)
 */

static ngx_int_t
ngx_http_llm_fallback_chat_result(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *type, ngx_str_t *body)
{
    if (!ctx->stream) {
        *type = ngx_http_llm_fallback_chat_json;
        *body = ctx->result.body;
        return NGX_OK;
    }

    if (ngx_http_llm_fallback_chat_replay(r, ctx, body) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_llm_fallback_add_header(r, "Cache-Control",
                                         &ngx_http_llm_fallback_chat_no_cache)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    *type = ngx_http_llm_fallback_chat_sse;

    return NGX_OK;
}


/*
 * {"error":{"message","type","param","code"}}: a provider's own error
 * object as it came, given what an OpenAI error has; with the attempts
 * when the chain ended without an answer
 */

static ngx_int_t
ngx_http_llm_fallback_chat_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err,
    ngx_str_t *body)
{
    json_t     *root, *error, *attempts;
    ngx_int_t   rc;

    if (err->error) {

        if (ngx_http_llm_fallback_error_shape(err->error, err->type)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        error = json_incref(err->error);

    } else {
        error = json_object();

        if (error == NULL
            || json_object_set_new(error, "message",
                   ngx_http_llm_fallback_json_str(&err->message)) != 0
            || json_object_set_new(error, "type", json_string(err->type)) != 0
            || json_object_set_new(error, "param",
                   err->param.len ? ngx_http_llm_fallback_json_str(&err->param)
                                  : json_null()) != 0
            || json_object_set_new(error, "code",
                                   err->code ? json_string(err->code)
                                             : json_null()) != 0)
        {
            json_decref(error);
            return NGX_ERROR;
        }
    }

    if (err->attempts && ctx) {
        attempts = ngx_http_llm_fallback_chat_attempts(ctx);

        if (attempts == NULL
            || json_object_set_new(error, "attempts", attempts) != 0)
        {
            json_decref(error);
            return NGX_ERROR;
        }
    }

    root = json_pack("{so}", "error", error);
    if (root == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_llm_fallback_dump(r->pool, root, body);

    json_decref(root);

    return rc;
}


/* [{"provider","status","reason"}], as the attempts were made */

static json_t *
ngx_http_llm_fallback_chat_attempts(ngx_http_llm_fallback_ctx_t *ctx)
{
    json_t                           *attempts, *a;
    ngx_uint_t                        i;
    ngx_http_llm_fallback_attempt_t  *at;

    attempts = json_array();
    if (attempts == NULL) {
        return NULL;
    }

    at = ctx->attempts.elts;

    for (i = 0; i < ctx->attempts.nelts; i++) {
        a = json_pack("{s:s%,s:i,s:s}",
                      "provider", at[i].provider->name.data,
                      at[i].provider->name.len,
                      "status", (json_int_t) at[i].status,
                      "reason", ngx_http_llm_fallback_reason_name(
                                                              at[i].reason));

        if (a == NULL || json_array_append_new(attempts, a) != 0) {
            json_decref(attempts);
            return NULL;
        }

        if (at[i].reason == NGX_HTTP_LLM_FALLBACK_OPEN) {
            /* skipped: no status */
            json_object_set_new(a, "status", json_null());
        }

        if (at[i].reason == NGX_HTTP_LLM_FALLBACK_HTTP) {
            /* "http" alone says little: report http_NNN as in the log */
            json_object_set_new(a, "reason",
                                json_sprintf("http_%u",
                                             (unsigned) at[i].status));
        }
    }

    return attempts;
}


/* an attempt's stream begins: chunks need no opening event */

static ngx_int_t
ngx_http_llm_fallback_chat_stream_start(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sse_t *sse)
{
    return NGX_OK;
}


/*
 * a canonical chunk (content, tool call or usage deltas): the provider's
 * own bytes when they can go as they are, else the chunk serialised
 */

static ngx_int_t
ngx_http_llm_fallback_chat_stream_chunk(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sse_t *sse, json_t *chunk, ngx_str_t *raw)
{
    if (raw) {
        return ngx_http_llm_fallback_sse_data(sse, raw->data, raw->len);
    }

    return ngx_http_llm_fallback_sse_json(sse, chunk);
}


static ngx_int_t
ngx_http_llm_fallback_chat_stream_end(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sse_t *sse)
{
    return ngx_http_llm_fallback_sse_data(sse, (u_char *) "[DONE]",
                                          sizeof("[DONE]") - 1);
}


/* after the commit point: {"error":{...}} as the stream's last event */

static ngx_int_t
ngx_http_llm_fallback_chat_stream_error(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_sse_t *sse, json_t *error)
{
    json_t     *event;
    ngx_int_t   rc;

    event = json_pack("{s:O}", "error", error);
    if (event == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_llm_fallback_sse_json(sse, event);

    json_decref(event);

    return rc;
}


/*
 * A complete chat.completion replayed as chat.completion.chunk events,
 * for clients that asked for "stream": true.
 */

static ngx_int_t
ngx_http_llm_fallback_chat_replay(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *out)
{
    u_char       *p;
    size_t        i, len;
    json_t       *completion, *choice, *message, *delta, *chunk;
    json_t       *v, *calls, *call, *c;
    ngx_str_t    *ev;
    ngx_int_t     rc;
    ngx_uint_t    n;
    json_int_t    index;
    ngx_array_t   events;
    json_error_t  jerr;

    completion = ctx->result.json;

    if (completion == NULL) {
        completion = json_loadb((char *) ctx->result.body.data,
                                ctx->result.body.len, 0, &jerr);
        if (completion == NULL
            || ngx_http_llm_fallback_json_keep(r->pool, completion)
               != NGX_OK)
        {
            json_decref(completion);
            return NGX_ERROR;
        }
    }

    if (ngx_array_init(&events, r->pool, 8, sizeof(ngx_str_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    json_array_foreach(json_object_get(completion, "choices"), i, choice) {

        message = json_object_get(choice, "message");
        v = json_object_get(choice, "index");

        index = json_is_integer(v) ? json_integer_value(v)
                                   : (json_int_t) i;

        /* reasoning first, in the chunks a stream gives it in */

        rc = ngx_http_llm_fallback_chat_replay_reasoning(&events, completion,
                                                         index, message);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        delta = (rc == NGX_DECLINED) ? json_pack("{s:s}", "role", "assistant")
                                     : json_object();
        if (delta == NULL) {
            return NGX_ERROR;
        }

        c = json_object_get(message, "content");
        json_object_set(delta, "content", c ? c : json_null());

        if (json_object_get(message, "refusal")) {
            json_object_set(delta, "refusal",
                            json_object_get(message, "refusal"));
        }

        calls = json_object_get(message, "tool_calls");

        if (json_is_array(calls) && json_array_size(calls)) {
            c = json_array();

            json_array_foreach(calls, n, call) {
                call = json_deep_copy(call);
                if (call == NULL) {
                    continue;
                }

                json_object_set_new(call, "index", json_integer(n));
                json_array_append_new(c, call);
            }

            json_object_set_new(delta, "tool_calls", c);
        }

        chunk = ngx_http_llm_fallback_chat_chunk(completion,
                    json_pack("[{s:I,s:o,s:n}]",
                              "index", index,
                              "delta", delta,
                              "finish_reason"));

        if (ngx_http_llm_fallback_chat_replay_event(&events, chunk) != NGX_OK) {
            return NGX_ERROR;
        }

        v = json_object_get(choice, "finish_reason");

        chunk = ngx_http_llm_fallback_chat_chunk(completion,
                    json_pack("[{s:I,s:{},s:s}]",
                              "index", index,
                              "delta",
                              "finish_reason",
                              json_is_string(v) ? json_string_value(v)
                                                : "stop"));

        if (ngx_http_llm_fallback_chat_replay_event(&events, chunk) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ctx->include_usage && json_object_get(completion, "usage")) {
        chunk = ngx_http_llm_fallback_chat_chunk(completion, json_array());

        if (chunk) {
            json_object_set(chunk, "usage",
                            json_object_get(completion, "usage"));
        }

        if (ngx_http_llm_fallback_chat_replay_event(&events, chunk) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    ev = events.elts;
    len = sizeof("data: [DONE]\n\n") - 1;

    for (i = 0; i < events.nelts; i++) {
        len += sizeof("data: \n\n") - 1 + ev[i].len;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    for (i = 0; i < events.nelts; i++) {
        p = ngx_cpymem(p, "data: ", 6);
        p = ngx_cpymem(p, ev[i].data, ev[i].len);
        *p++ = '\n';
        *p++ = '\n';
    }

    p = ngx_cpymem(p, "data: [DONE]\n\n", sizeof("data: [DONE]\n\n") - 1);

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * a message's reasoning as a stream has it: each thinking block's text
 * (reasoning_content) then its signature (a thinking_blocks delta with an
 * empty "thinking"), redacted_thinking blocks whole; reasoning_content
 * without thinking blocks that carry text in one delta.  NGX_DECLINED
 * when there is none.
 */

static ngx_int_t
ngx_http_llm_fallback_chat_replay_reasoning(ngx_array_t *events,
    json_t *completion, json_int_t index, json_t *message)
{
    size_t       i;
    json_t      *blocks, *b, *text, *delta;
    ngx_uint_t   first, texts;
    const char  *type;

    first = 1;
    texts = 0;
    blocks = json_object_get(message, "thinking_blocks");

    json_array_foreach(blocks, i, b) {
        text = json_object_get(b, "thinking");

        if (json_is_string(text) && json_string_length(text)) {
            texts = 1;
        }
    }

    text = json_object_get(message, "reasoning_content");

    if (!texts && json_is_string(text) && json_string_length(text)) {
        delta = json_pack("{s:O}", "reasoning_content", text);

        if (ngx_http_llm_fallback_chat_replay_delta(events, completion, index,
                                                    delta, first)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        first = 0;
    }

    json_array_foreach(blocks, i, b) {
        type = json_string_value(json_object_get(b, "type"));
        text = json_object_get(b, "thinking");

        if (type == NULL || ngx_strcmp(type, "thinking") != 0) {
            delta = json_pack("{s:[O]}", "thinking_blocks", b);

        } else {
            if (json_is_string(text) && json_string_length(text)) {
                delta = json_pack("{s:O}", "reasoning_content", text);

                if (ngx_http_llm_fallback_chat_replay_delta(events,
                                                            completion, index,
                                                            delta, first)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                first = 0;
            }

            delta = json_pack("{s:[{s:s,s:s,s:O*}]}",
                              "thinking_blocks",
                              "type", "thinking",
                              "thinking", "",
                              "signature", json_object_get(b, "signature"));
        }

        if (ngx_http_llm_fallback_chat_replay_delta(events, completion, index,
                                                    delta, first)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        first = 0;
    }

    return first ? NGX_DECLINED : NGX_OK;
}


/* a chunk of one delta (taken), the role in the first one */

static ngx_int_t
ngx_http_llm_fallback_chat_replay_delta(ngx_array_t *events,
    json_t *completion, json_int_t index, json_t *delta, ngx_uint_t first)
{
    json_t  *d;

    if (delta == NULL) {
        return NGX_ERROR;
    }

    if (first) {
        d = json_pack("{s:s}", "role", "assistant");

        if (d == NULL || json_object_update(d, delta) != 0) {
            json_decref(d);
            json_decref(delta);
            return NGX_ERROR;
        }

        json_decref(delta);
        delta = d;
    }

    return ngx_http_llm_fallback_chat_replay_event(events,
               ngx_http_llm_fallback_chat_chunk(completion,
                   json_pack("[{s:I,s:o,s:n}]",
                             "index", index,
                             "delta", delta,
                             "finish_reason")));
}


static json_t *
ngx_http_llm_fallback_chat_chunk(json_t *completion, json_t *choices)
{
    json_t  *chunk;

    if (choices == NULL) {
        return NULL;
    }

    chunk = json_pack("{s:O?,s:s,s:O?,s:O?,s:o}",
                      "id", json_object_get(completion, "id"),
                      "object", "chat.completion.chunk",
                      "created", json_object_get(completion, "created"),
                      "model", json_object_get(completion, "model"),
                      "choices", choices);

    return chunk;
}


static ngx_int_t
ngx_http_llm_fallback_chat_replay_event(ngx_array_t *events, json_t *chunk)
{
    ngx_str_t  *ev;

    if (chunk == NULL) {
        return NGX_ERROR;
    }

    ev = ngx_array_push(events);
    if (ev == NULL) {
        json_decref(chunk);
        return NGX_ERROR;
    }

    if (ngx_http_llm_fallback_dump(events->pool, chunk, ev) != NGX_OK) {
        json_decref(chunk);
        return NGX_ERROR;
    }

    json_decref(chunk);

    return NGX_OK;
}


static json_t *
ngx_http_llm_fallback_json_str(ngx_str_t *s)
{
    return json_stringn((char *) s->data, s->len);
}


/*
 * A provider's error object as it came may lack what an OpenAI error has:
 * a string "type" (else the given one, "provider_error"), "param" and
 * "code", each a string or null (a code that is a number, as some
 * compatible servers send, becomes its string; anything else, null).
 * The rest is the provider's and is kept.
 */

static ngx_int_t
ngx_http_llm_fallback_error_shape(json_t *error, const char *type)
{
    json_t  *v;

    if (!json_is_string(json_object_get(error, "type"))
        && json_object_set_new(error, "type", json_string(type)) != 0)
    {
        return NGX_ERROR;
    }

    v = json_object_get(error, "param");

    if (!json_is_string(v) && !json_is_null(v)
        && json_object_set_new(error, "param", json_null()) != 0)
    {
        return NGX_ERROR;
    }

    v = json_object_get(error, "code");

    if (!json_is_string(v) && !json_is_null(v)
        && json_object_set_new(error, "code",
                               ngx_http_llm_fallback_xlat_error_code(v))
           != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
