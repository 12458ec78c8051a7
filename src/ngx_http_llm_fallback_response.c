
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


static ngx_int_t ngx_http_llm_fallback_send(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_uint_t status, ngx_str_t *type,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_llm_headers(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx);


/*
 * Sending the client's response: the front door writes the body in its
 * API's shape, this adds the headers of the chain and sends it.
 */


static ngx_str_t  ngx_http_llm_fallback_type_json =
    ngx_string("application/json");
static ngx_str_t  ngx_http_llm_fallback_type_sse =
    ngx_string("text/event-stream");
static ngx_str_t  ngx_http_llm_fallback_no_cache = ngx_string("no-cache");


/* ctx->result, an answer or a cache entry, in the door's shape */

ngx_int_t
ngx_http_llm_fallback_send_result(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx)
{
    ngx_str_t  type, body;

    if (ctx->api->result(r, ctx, &type, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_llm_fallback_send(r, ctx, NGX_HTTP_OK, &type, &body);
}


/*
 * An error in the door's shape; ctx is NULL before the request body is
 * read.  A provider's own error may quote the credential it was sent: it
 * is redacted first.
 */

ngx_int_t
ngx_http_llm_fallback_send_error(ngx_http_request_t *r,
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err)
{
    ngx_str_t                          body;
    ngx_str_t                          allow = ngx_string("POST");
    ngx_str_t                          no = ngx_string("false");
    ngx_http_llm_fallback_loc_conf_t  *lcf;

    if (err->error && ctx
        && ngx_http_llm_fallback_redact(r, ctx, err->error) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_llm_fallback_module);

    if (lcf->api->error(r, ctx, err, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (err->status == NGX_HTTP_NOT_ALLOWED
        && ngx_http_llm_fallback_add_header(r, "Allow", &allow) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the whole chain failed: an SDK's own retries would not help */

    if (err->attempts
        && (err->status == NGX_HTTP_BAD_GATEWAY
            || err->status == NGX_HTTP_GATEWAY_TIME_OUT)
        && ngx_http_llm_fallback_add_header(r, "x-should-retry", &no)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_llm_fallback_send(r, ctx, err->status,
                                      &ngx_http_llm_fallback_type_json, &body);
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
    ngx_str_t                         v;
    ngx_uint_t                        i, skipped;
    ngx_http_llm_fallback_attempt_t  *a;

    if (!ctx->conf->response_headers) {
        return NGX_OK;
    }

    if (ctx->cache_status.len
        && ngx_http_llm_fallback_add_header(r, "X-LLM-Cache",
                                            &ctx->cache_status)
           != NGX_OK)
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
