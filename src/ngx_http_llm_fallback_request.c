
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_module.h"


static ngx_int_t ngx_http_llm_fallback_unparsable(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err);
static ngx_int_t ngx_http_llm_fallback_invalid(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_error_t *err,
    const char *fmt, const char *param, ngx_int_t index, const char *field,
    const char *expected);


ngx_int_t
ngx_http_llm_fallback_is_json(ngx_http_request_t *r)
{
    u_char  *p, *last;
    size_t   len;

    if (r->headers_in.content_type == NULL) {
        return 1;
    }

    p = r->headers_in.content_type->value.data;
    len = r->headers_in.content_type->value.len;
    last = ngx_strlchr(p, p + len, ';');

    if (last) {
        len = last - p;
    }

    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    if (len == sizeof("application/json") - 1
        && ngx_strncasecmp(p, (u_char *) "application/json", len) == 0)
    {
        return 1;
    }

    /* application/<anything>+json */

    if (len > sizeof("application/+json") - 1
        && ngx_strncasecmp(p, (u_char *) "application/", 12) == 0
        && ngx_strncasecmp(p + len - 5, (u_char *) "+json", 5) == 0)
    {
        return 1;
    }

    return 0;
}


/*
 * Parses the client's body with the scanner, checks it and fills
 * client_model, stream and include_usage: no jansson tree is built.
 * NGX_DECLINED with err filled for the client, NGX_ERROR on no memory.
 */

ngx_int_t
ngx_http_llm_fallback_validate(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_error_t *err)
{
    int                                    rc;
    ngx_http_llm_fallback_json_t          *json;
    ngx_http_llm_fallback_json_request_t   req;

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
 * The request as a jansson tree, built from the validation's tokens on
 * first use: the cache key, the translators and a changed model need
 * it, pass-through does not.  NULL on no memory.
 */

json_t *
ngx_http_llm_fallback_request_json(ngx_http_llm_fallback_ctx_t *ctx)
{
    if (ctx->json) {
        return ctx->json;
    }

    ctx->json = ngx_http_llm_fallback_json_tree(&ctx->scan);

    if (ctx->json == NULL) {
        return NULL;
    }

    if (ngx_http_llm_fallback_json_keep(ctx->request->pool, ctx->json)
        != NGX_OK)
    {
        json_decref(ctx->json);
        ctx->json = NULL;
    }

    return ctx->json;
}


/*
 * What json_loadb(body, 0) returns, a new reference or NULL, without
 * jansson's lexer: scanned, then built from the tokens
 */

json_t *
ngx_http_llm_fallback_json_load(ngx_pool_t *pool, ngx_str_t *body)
{
    ngx_http_llm_fallback_json_t  json;

    if (ngx_http_llm_fallback_json_parse(&json, body->data, body->len,
                                         ngx_http_llm_fallback_json_palloc,
                                         pool)
        != NGX_HTTP_LLM_FALLBACK_JSON_OK)
    {
        return NULL;
    }

    return ngx_http_llm_fallback_json_tree(&json);
}


/* the scanner's allocator */

void *
ngx_http_llm_fallback_json_palloc(void *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


/* a string token's value: in place when it has no escapes */

ngx_int_t
ngx_http_llm_fallback_json_tok_str(ngx_pool_t *pool,
    ngx_http_llm_fallback_json_tok_t *tok, ngx_str_t *out)
{
    if (!tok->escaped) {
        out->data = (u_char *) tok->start;
        out->len = tok->len;
        return NGX_OK;
    }

    out->data = ngx_pnalloc(pool, tok->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_http_llm_fallback_json_unescape(tok, out->data);

    return NGX_OK;
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
