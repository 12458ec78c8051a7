
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"
#include "ngx_http_llm_fallback_translate.h"


/*
 * The nginx side of the translated formats (anthropic, gemini): the
 * pure translators of ngx_http_llm_fallback_translate.h plugged into
 * the format interface, with pool-tied JSON and debug logging.
 */


typedef json_t *(*ngx_http_llm_fallback_xlat_request_pt)(json_t *req,
    ngx_http_llm_fallback_xlat_request_t *x);
typedef json_t *(*ngx_http_llm_fallback_xlat_response_pt)(json_t *resp,
    ngx_http_llm_fallback_xlat_response_t *x);
typedef json_t *(*ngx_http_llm_fallback_xlat_error_pt)(json_t *body);


static ngx_int_t ngx_http_llm_fallback_anthropic_create_request(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_anthropic_parse_response(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body, ngx_http_llm_fallback_result_t *res);
static json_t *ngx_http_llm_fallback_anthropic_parse_error(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_gemini_create_request(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_gemini_parse_response(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body, ngx_http_llm_fallback_result_t *res);
static json_t *ngx_http_llm_fallback_gemini_parse_error(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_xlat_create_request(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body, ngx_http_llm_fallback_xlat_request_pt translate);
static ngx_int_t ngx_http_llm_fallback_xlat_parse_response(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body, ngx_http_llm_fallback_result_t *res,
    ngx_http_llm_fallback_xlat_response_pt translate);
static json_t *ngx_http_llm_fallback_xlat_parse_error(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *body,
    ngx_http_llm_fallback_xlat_error_pt translate);
static ngx_int_t ngx_http_llm_fallback_xlat_dump(ngx_pool_t *pool,
    json_t *json, size_t hint, ngx_str_t *out);


static ngx_keyval_t  ngx_http_llm_fallback_anthropic_headers[] = {
    { ngx_string("anthropic-version"), ngx_string("2023-06-01") },
    { ngx_null_string, ngx_null_string }
};


ngx_http_llm_fallback_format_t  ngx_http_llm_fallback_format_anthropic = {
    ngx_string("anthropic"),
    NGX_HTTP_LLM_FALLBACK_FORMAT_ANTHROPIC,
    ngx_string("x-api-key"),
    ngx_null_string,
    ngx_http_llm_fallback_anthropic_create_request,
    ngx_http_llm_fallback_anthropic_parse_response,
    ngx_http_llm_fallback_anthropic_parse_error,
    ngx_http_llm_fallback_anthropic_headers
};


ngx_http_llm_fallback_format_t  ngx_http_llm_fallback_format_gemini = {
    ngx_string("gemini"),
    NGX_HTTP_LLM_FALLBACK_FORMAT_GEMINI,
    ngx_string("x-goog-api-key"),
    ngx_null_string,
    ngx_http_llm_fallback_gemini_create_request,
    ngx_http_llm_fallback_gemini_parse_response,
    ngx_http_llm_fallback_gemini_parse_error,
    NULL
};


static ngx_int_t
ngx_http_llm_fallback_anthropic_create_request(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body)
{
    return ngx_http_llm_fallback_xlat_create_request(ctx, p, body,
                                   ngx_http_llm_fallback_anthropic_request);
}


static ngx_int_t
ngx_http_llm_fallback_anthropic_parse_response(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body, ngx_http_llm_fallback_result_t *res)
{
    return ngx_http_llm_fallback_xlat_parse_response(ctx, p, body, res,
                                   ngx_http_llm_fallback_anthropic_response);
}


static json_t *
ngx_http_llm_fallback_anthropic_parse_error(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_str_t *body)
{
    return ngx_http_llm_fallback_xlat_parse_error(ctx, body,
                                   ngx_http_llm_fallback_anthropic_error);
}


static ngx_int_t
ngx_http_llm_fallback_gemini_create_request(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body)
{
    return ngx_http_llm_fallback_xlat_create_request(ctx, p, body,
                                   ngx_http_llm_fallback_gemini_request);
}


static ngx_int_t
ngx_http_llm_fallback_gemini_parse_response(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body,
    ngx_http_llm_fallback_result_t *res)
{
    return ngx_http_llm_fallback_xlat_parse_response(ctx, p, body, res,
                                   ngx_http_llm_fallback_gemini_response);
}


static json_t *
ngx_http_llm_fallback_gemini_parse_error(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_str_t *body)
{
    return ngx_http_llm_fallback_xlat_parse_error(ctx, body,
                                   ngx_http_llm_fallback_gemini_error);
}


static ngx_int_t
ngx_http_llm_fallback_xlat_create_request(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body,
    ngx_http_llm_fallback_xlat_request_pt translate)
{
    json_t                                *in, *out;
    ngx_int_t                              rc;
    ngx_str_t                             *m;
    ngx_uint_t                             i;
    ngx_http_llm_fallback_xlat_request_t   x;

    m = p->model.len ? &p->model : &ctx->client_model;

    /* the body built for the previous attempt, when it fits this one */

    if (ctx->body_format == p->format
        && ctx->body_max_tokens == p->max_tokens
        && ctx->body_model.len == m->len
        && ngx_strncmp(ctx->body_model.data, m->data, m->len) == 0)
    {
        *body = ctx->provider_body;
        return NGX_OK;
    }

    ngx_memzero(&x, sizeof(ngx_http_llm_fallback_xlat_request_t));

    x.model = (const char *) m->data;
    x.model_len = m->len;
    x.max_tokens = p->max_tokens;
    x.stream = ctx->stream ? 1 : 0;

    in = ngx_http_llm_fallback_request_json(ctx);
    if (in == NULL) {
        return NGX_ERROR;
    }

    out = translate(in, &x);

    for (i = 0; i < x.ndropped; i++) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "llm fallback: \"%V\" format %V: not sent: %s",
                       &p->name, &p->format->name, x.dropped[i]);
    }

    if (out == NULL) {
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "llm fallback: could not translate the request for "
                      "provider \"%V\" (%V)", &p->name, &p->format->name);
        return NGX_ERROR;
    }

    rc = ngx_http_llm_fallback_xlat_dump(ctx->request->pool, out,
                                         ctx->body.len + 256, body);

    json_decref(out);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->body_format = p->format;
    ctx->body_model = *m;
    ctx->body_max_tokens = p->max_tokens;
    ctx->provider_body = *body;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_xlat_parse_response(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body,
    ngx_http_llm_fallback_result_t *res,
    ngx_http_llm_fallback_xlat_response_pt translate)
{
    u_char                                  id[24];
    json_t                                 *root, *out, *model;
    ngx_str_t                              *m;
    ngx_http_llm_fallback_xlat_response_t   x;

    root = ngx_http_llm_fallback_json_load(ctx->request->pool, body);
    if (root == NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "llm fallback: \"%V\" answer is not JSON", &p->name);
        return NGX_DECLINED;
    }

    m = p->model.len ? &p->model : &ctx->client_model;

    ngx_sprintf(id, "%08xD%08xD%08xD", (uint32_t) ngx_random(),
                (uint32_t) ngx_random(), (uint32_t) ngx_random());

    ngx_memzero(&x, sizeof(ngx_http_llm_fallback_xlat_response_t));

    x.model = (const char *) m->data;
    x.model_len = m->len;
    x.id = (const char *) id;
    x.id_len = sizeof(id);
    x.created = ngx_time();

    out = translate(root, &x);

    json_decref(root);

    if (out == NULL) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "llm fallback: \"%V\" answer is not usable: %s",
                       &p->name, x.reason ? x.reason : "no memory");
        return NGX_DECLINED;
    }

    if (ngx_http_llm_fallback_json_keep(ctx->request->pool, out) != NGX_OK) {
        json_decref(out);
        return NGX_ERROR;
    }

    model = json_object_get(out, "model");

    res->json = out;
    res->model.data = (u_char *) json_string_value(model);
    res->model.len = json_string_length(model);
    res->prompt_tokens = (ngx_int_t) x.prompt_tokens;
    res->completion_tokens = (ngx_int_t) x.completion_tokens;

    return ngx_http_llm_fallback_xlat_dump(ctx->request->pool, out,
                                           body->len + 512, &res->body);
}


static json_t *
ngx_http_llm_fallback_xlat_parse_error(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_str_t *body, ngx_http_llm_fallback_xlat_error_pt translate)
{
    json_t  *root, *error;

    root = ngx_http_llm_fallback_json_load(ctx->request->pool, body);
    if (root == NULL) {
        return NULL;
    }

    error = translate(root);

    json_decref(root);

    if (error == NULL) {
        return NULL;
    }

    if (ngx_http_llm_fallback_json_keep(ctx->request->pool, error) != NGX_OK)
    {
        json_decref(error);
        return NULL;
    }

    return error;
}


/*
 * serialised in one pass when the output fits the hint, the size of
 * what it was translated from, as it mostly does
 */

static ngx_int_t
ngx_http_llm_fallback_xlat_dump(ngx_pool_t *pool, json_t *json, size_t hint,
    ngx_str_t *out)
{
    u_char  *p;
    size_t   n;

    p = ngx_pnalloc(pool, hint);
    if (p == NULL) {
        return NGX_ERROR;
    }

    n = ngx_http_llm_fallback_json_dumpb(json, p, hint,
                                         NGX_HTTP_LLM_FALLBACK_JSON_FLAGS);

    if (n == 0) {
        return NGX_ERROR;
    }

    if (n <= hint) {
        out->data = p;
        out->len = n;
        return NGX_OK;
    }

    return ngx_http_llm_fallback_dump(pool, json, out);
}
