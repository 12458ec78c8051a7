
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_module.h"
#include "ngx_http_llm_fallback_translate.h"


static ngx_int_t ngx_http_llm_fallback_send(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_uint_t status, ngx_str_t *type,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_send_json(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_uint_t status, json_t *json);
static ngx_int_t ngx_http_llm_fallback_llm_headers(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);
static ngx_int_t ngx_http_llm_fallback_sse(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *out);
static ngx_int_t ngx_http_llm_fallback_sse_event(ngx_array_t *events,
    json_t *chunk);
static json_t *ngx_http_llm_fallback_chunk(json_t *completion, json_t *choices);
static json_t *ngx_http_llm_fallback_json_str(ngx_str_t *s);
static ngx_int_t ngx_http_llm_fallback_error_shape(json_t *error,
    const char *type);
static ngx_int_t ngx_http_llm_fallback_redact_json(ngx_pool_t *pool,
    ngx_array_t *keys, json_t *json);
static ngx_int_t ngx_http_llm_fallback_redact_str(ngx_pool_t *pool,
    ngx_array_t *keys, const char *s, size_t len, ngx_str_t *out);
static u_char *ngx_http_llm_fallback_find_key(ngx_array_t *keys, u_char *p,
    u_char *last, ngx_str_t **found);


#define NGX_HTTP_LLM_FALLBACK_REDACTED     "[redacted]"

/* shorter keys are no real credentials, and too likely in any text */
#define NGX_HTTP_LLM_FALLBACK_REDACT_MIN   8


static ngx_str_t  ngx_http_llm_fallback_type_json =
    ngx_string("application/json");
static ngx_str_t  ngx_http_llm_fallback_type_sse =
    ngx_string("text/event-stream");
static ngx_str_t  ngx_http_llm_fallback_no_cache = ngx_string("no-cache");


ngx_int_t
ngx_http_llm_fallback_dump(ngx_pool_t *pool, json_t *json, ngx_str_t *out)
{
    size_t  size;

    size = ngx_http_llm_fallback_json_dumpb(json, NULL, 0,
                                            NGX_HTTP_LLM_FALLBACK_JSON_FLAGS);
    if (size == 0) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, size);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_http_llm_fallback_json_dumpb(json, out->data, size,
                                            NGX_HTTP_LLM_FALLBACK_JSON_FLAGS);

    return (out->len == size) ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_llm_fallback_send_result(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    ngx_str_t  body;

    if (!ctx->stream) {
        return ngx_http_llm_fallback_send(r, ctx, NGX_HTTP_OK,
                                          &ngx_http_llm_fallback_type_json,
                                          &ctx->result.body);
    }

    if (ngx_http_llm_fallback_sse(r, ctx, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_llm_fallback_add_header(r, "Cache-Control",
                                         &ngx_http_llm_fallback_no_cache)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_llm_fallback_send(r, ctx, NGX_HTTP_OK,
                                      &ngx_http_llm_fallback_type_sse, &body);
}


/*
 * the header of a stream, at its commit point: no length, so that
 * HTTP/1.1 clients get it chunked, each event flushed as it comes
 */

ngx_int_t
ngx_http_llm_fallback_send_stream_header(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ngx_http_llm_fallback_type_sse;
    r->headers_out.content_type_len = ngx_http_llm_fallback_type_sse.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = -1;

    if (ngx_http_llm_fallback_add_header(r, "Cache-Control",
                                         &ngx_http_llm_fallback_no_cache)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_llm_fallback_llm_headers(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_send_header(r);
}


ngx_int_t
ngx_http_llm_fallback_send_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err)
{
    json_t     *root, *error;
    ngx_int_t   rc;
    ngx_str_t   allow = ngx_string("POST");

    if (err->error) {

        /* a provider's own error may quote the credential it was sent */

        if (ctx && ngx_http_llm_fallback_redact(r, ctx, err->error) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_llm_fallback_error_shape(err->error, err->type)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
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
            || json_object_set_new(error, "code", json_null()) != 0)
        {
            json_decref(error);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    root = json_pack("{so}", "error", error);
    if (root == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (err->status == NGX_HTTP_NOT_ALLOWED
        && ngx_http_llm_fallback_add_header(r, "Allow", &allow) != NGX_OK)
    {
        json_decref(root);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_llm_fallback_send_json(r, ctx, err->status, root);

    json_decref(root);

    return rc;
}


ngx_int_t
ngx_http_llm_fallback_send_exhausted(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_uint_t status, const char *type,
    const char *message)
{
    json_t                           *root, *attempts, *a;
    ngx_int_t                         rc;
    ngx_str_t                         no = ngx_string("false");
    ngx_uint_t                        i;
    ngx_http_llm_fallback_attempt_t  *at;

    attempts = json_array();
    if (attempts == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
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
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
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

    root = json_pack("{s:{s:s,s:s,s:n,s:n,s:o}}",
                     "error",
                     "message", message,
                     "type", type,
                     "param",
                     "code",
                     "attempts", attempts);
    if (root == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_BAD_GATEWAY || status == NGX_HTTP_GATEWAY_TIME_OUT)
    {
        if (ngx_http_llm_fallback_add_header(r, "x-should-retry", &no)
            != NGX_OK)
        {
            json_decref(root);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    rc = ngx_http_llm_fallback_send_json(r, ctx, status, root);

    json_decref(root);

    return rc;
}


static ngx_int_t
ngx_http_llm_fallback_send_json(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_uint_t status, json_t *json)
{
    ngx_str_t  body;

    if (ngx_http_llm_fallback_dump(r->pool, json, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_llm_fallback_send(r, ctx, status,
                                      &ngx_http_llm_fallback_type_json, &body);
}


static ngx_int_t
ngx_http_llm_fallback_send(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_uint_t status, ngx_str_t *type,
    ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = body->len;

    if (ctx && ngx_http_llm_fallback_llm_headers(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = body->len ? 1 : 0;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_llm_fallback_llm_headers(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    u_char                           *p;
    ngx_str_t                         v, *cache;
    ngx_uint_t                        i, skipped;
    ngx_http_llm_fallback_attempt_t  *a;

    if (!ctx->conf->response_headers) {
        return NGX_OK;
    }

    cache = ngx_http_llm_fallback_cache_status(ctx);

    if (cache
        && ngx_http_llm_fallback_add_header(r, "X-LLM-Cache", cache) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a cache HIT has a result without any attempt */

    if (ctx->tries == 0 && ctx->attempts.nelts == 0 && !ctx->has_result) {
        return NGX_OK;
    }

    if (ctx->served) {
        if (ngx_http_llm_fallback_add_header(r, "X-LLM-Provider",
                                             &ctx->served->name)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v.data = p;
    v.len = ngx_sprintf(p, "%ui", ctx->tries) - p;

    if (ngx_http_llm_fallback_add_header(r, "X-LLM-Attempts", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    a = ctx->attempts.elts;
    skipped = 0;

    for (i = 0; i < ctx->attempts.nelts; i++) {
        if (a[i].reason == NGX_HTTP_LLM_FALLBACK_OPEN) {
            skipped = 1;
        }
    }

    if (ctx->tries > 1 || skipped) {
        if (ngx_http_llm_fallback_add_header(r, "X-LLM-Fallback",
                                             ngx_http_llm_fallback_reasons(ctx))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_llm_fallback_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;
    h->lowcase_key = NULL;

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


const char *
ngx_http_llm_fallback_reason_name(ngx_uint_t reason)
{
    switch (reason) {

    case NGX_HTTP_LLM_FALLBACK_ERROR:
        return "error";

    case NGX_HTTP_LLM_FALLBACK_TIMEOUT:
        return "timeout";

    case NGX_HTTP_LLM_FALLBACK_INVALID:
        return "invalid_response";

    case NGX_HTTP_LLM_FALLBACK_HTTP:
        return "http";

    case NGX_HTTP_LLM_FALLBACK_OPEN:
        return "open";

    default:
        return "ok";
    }
}


/* "openai:http_503,claude:open", built again when attempts were added */

ngx_str_t *
ngx_http_llm_fallback_reasons(ngx_http_llm_fallback_ctx_t *ctx)
{
    u_char                           *p;
    size_t                            len;
    ngx_uint_t                        i;
    ngx_http_llm_fallback_attempt_t  *a;

    if (ctx->nreasons == ctx->attempts.nelts) {
        return &ctx->reasons;
    }

    a = ctx->attempts.elts;
    len = 0;

    for (i = 0; i < ctx->attempts.nelts; i++) {
        len += a[i].provider->name.len + sizeof(":invalid_response,") - 1;
    }

    p = ngx_pnalloc(ctx->request->pool, len);
    if (p == NULL) {
        ctx->reasons.len = 0;
        return &ctx->reasons;
    }

    ctx->reasons.data = p;

    for (i = 0; i < ctx->attempts.nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        if (a[i].reason == NGX_HTTP_LLM_FALLBACK_HTTP) {
            p = ngx_sprintf(p, "%V:http_%ui", &a[i].provider->name,
                            a[i].status);

        } else {
            p = ngx_sprintf(p, "%V:%s", &a[i].provider->name,
                            ngx_http_llm_fallback_reason_name(a[i].reason));
        }
    }

    ctx->reasons.len = p - ctx->reasons.data;
    ctx->nreasons = ctx->attempts.nelts;

    return &ctx->reasons;
}


/*
 * A complete chat.completion replayed as chat.completion.chunk events,
 * for clients that asked for "stream": true.
 */

static ngx_int_t
ngx_http_llm_fallback_sse(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *out)
{
    u_char       *p;
    size_t        i, len;
    json_t       *completion, *choice, *message, *delta, *chunk;
    json_t       *v, *calls, *call, *c;
    ngx_str_t    *ev;
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

        delta = json_pack("{s:s}", "role", "assistant");
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

        index = json_is_integer(v) ? json_integer_value(v)
                                   : (json_int_t) i;

        chunk = ngx_http_llm_fallback_chunk(completion,
                    json_pack("[{s:I,s:o,s:n}]",
                              "index", index,
                              "delta", delta,
                              "finish_reason"));

        if (ngx_http_llm_fallback_sse_event(&events, chunk) != NGX_OK) {
            return NGX_ERROR;
        }

        v = json_object_get(choice, "finish_reason");

        chunk = ngx_http_llm_fallback_chunk(completion,
                    json_pack("[{s:I,s:{},s:s}]",
                              "index", index,
                              "delta",
                              "finish_reason",
                              json_is_string(v) ? json_string_value(v)
                                                : "stop"));

        if (ngx_http_llm_fallback_sse_event(&events, chunk) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ctx->include_usage && json_object_get(completion, "usage")) {
        chunk = ngx_http_llm_fallback_chunk(completion, json_array());

        if (chunk) {
            json_object_set(chunk, "usage",
                            json_object_get(completion, "usage"));
        }

        if (ngx_http_llm_fallback_sse_event(&events, chunk) != NGX_OK) {
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


static json_t *
ngx_http_llm_fallback_chunk(json_t *completion, json_t *choices)
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
ngx_http_llm_fallback_sse_event(ngx_array_t *events, json_t *chunk)
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


/*
 * Every string (and object key) of a provider's error that contains the
 * credential of a provider of the chain (8 bytes or more) gets
 * "[redacted]" in its place: some APIs answer a refused key with the
 * whole key in the message, and that error is relayed to the client, as
 * an HTTP error or as a stream's error event.
 */

ngx_int_t
ngx_http_llm_fallback_redact(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, json_t *json)
{
    ngx_str_t                         *k, v;
    ngx_uint_t                         i;
    ngx_array_t                        keys;
    ngx_http_llm_fallback_provider_t  *p;

    if (ngx_array_init(&keys, r->pool, ctx->nchain, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < ctx->nchain; i++) {
        p = ctx->chain[i];

        if (p->key) {
            if (ngx_http_complex_value(r, p->key, &v) != NGX_OK) {
                return NGX_ERROR;
            }

        } else {
            v = p->static_key;
        }

        if (v.len < NGX_HTTP_LLM_FALLBACK_REDACT_MIN) {
            continue;
        }

        k = ngx_array_push(&keys);
        if (k == NULL) {
            return NGX_ERROR;
        }

        /* NUL-terminated, for ngx_strnstr() */

        k->len = v.len;
        k->data = ngx_pnalloc(r->pool, v.len + 1);
        if (k->data == NULL) {
            return NGX_ERROR;
        }

        *ngx_cpymem(k->data, v.data, v.len) = '\0';
    }

    if (keys.nelts == 0) {
        return NGX_OK;
    }

    return ngx_http_llm_fallback_redact_json(r->pool, &keys, json);
}


static ngx_int_t
ngx_http_llm_fallback_redact_json(ngx_pool_t *pool, ngx_array_t *keys,
    json_t *json)
{
    size_t         i;
    json_t        *v;
    ngx_int_t      rc;
    ngx_str_t      s;
    ngx_array_t    renamed;
    const char    *key;
    ngx_keyval_t  *kv;

    switch (json_typeof(json)) {

    case JSON_STRING:
        rc = ngx_http_llm_fallback_redact_str(pool, keys,
                                              json_string_value(json),
                                              json_string_length(json), &s);
        if (rc != NGX_OK) {
            return (rc == NGX_DECLINED) ? NGX_OK : NGX_ERROR;
        }

        return (json_string_setn(json, (char *) s.data, s.len) == 0)
               ? NGX_OK : NGX_ERROR;

    case JSON_ARRAY:
        json_array_foreach(json, i, v) {
            if (ngx_http_llm_fallback_redact_json(pool, keys, v) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        return NGX_OK;

    case JSON_OBJECT:
        break;

    default:
        return NGX_OK;
    }

    if (ngx_array_init(&renamed, pool, 1, sizeof(ngx_keyval_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    json_object_foreach(json, key, v) {
        if (ngx_http_llm_fallback_redact_json(pool, keys, v) != NGX_OK) {
            return NGX_ERROR;
        }

        rc = ngx_http_llm_fallback_redact_str(pool, keys, key,
                                              ngx_strlen(key), &s);
        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        kv = ngx_array_push(&renamed);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        kv->key.len = ngx_strlen(key);
        kv->key.data = ngx_pnalloc(pool, kv->key.len + 1);
        if (kv->key.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(kv->key.data, key, kv->key.len + 1);
        kv->value = s;
    }

    /* keys are renamed once the object is no longer iterated */

    kv = renamed.elts;

    for (i = 0; i < renamed.nelts; i++) {
        v = json_incref(json_object_get(json, (char *) kv[i].key.data));

        if (json_object_del(json, (char *) kv[i].key.data) != 0
            || json_object_set_new(json, (char *) kv[i].value.data, v) != 0)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * NGX_OK and the string with every key replaced in "out" (NUL-terminated),
 * or NGX_DECLINED when no key occurs in it
 */

static ngx_int_t
ngx_http_llm_fallback_redact_str(ngx_pool_t *pool, ngx_array_t *keys,
    const char *s, size_t len, ngx_str_t *out)
{
    u_char      *p, *last, *hit, *d;
    ngx_str_t   *key;
    ngx_uint_t   pass, hits;

    /* the first pass measures the result, the second one writes it */

    d = NULL;
    key = NULL;
    hits = 0;
    out->len = 0;

    for (pass = 0; pass < 2; pass++) {

        for (p = (u_char *) s, last = p + len; p < last; /* void */) {

            hit = ngx_http_llm_fallback_find_key(keys, p, last, &key);

            if (hit == NULL) {
                hit = last;
            }

            if (pass == 0) {
                out->len += hit - p;

            } else {
                d = ngx_cpymem(d, p, hit - p);
            }

            if (hit == last) {
                break;
            }

            if (pass == 0) {
                out->len += sizeof(NGX_HTTP_LLM_FALLBACK_REDACTED) - 1;
                hits++;

            } else {
                d = ngx_cpymem(d, NGX_HTTP_LLM_FALLBACK_REDACTED,
                               sizeof(NGX_HTTP_LLM_FALLBACK_REDACTED) - 1);
            }

            p = hit + key->len;
        }

        if (pass == 0) {
            if (hits == 0) {
                return NGX_DECLINED;
            }

            out->data = ngx_pnalloc(pool, out->len + 1);
            if (out->data == NULL) {
                return NGX_ERROR;
            }

            d = out->data;
        }
    }

    *d = '\0';

    return NGX_OK;
}


/* the first occurrence of any of the keys in [p, last), or NULL */

static u_char *
ngx_http_llm_fallback_find_key(ngx_array_t *keys, u_char *p, u_char *last,
    ngx_str_t **found)
{
    u_char      *hit, *first;
    ngx_str_t   *k;
    ngx_uint_t   i;

    k = keys->elts;
    first = NULL;

    for (i = 0; i < keys->nelts; i++) {
        hit = ngx_strnstr(p, (char *) k[i].data, last - p);

        if (hit && (first == NULL || hit < first)) {
            first = hit;
            *found = &k[i];
        }
    }

    return first;
}
