
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


/*
 * Helpers every layer may use, and that use nothing of the module's
 * above them: jansson values tied to a pool, the request's tree, response
 * headers, the attempts' reason strings, configuration lookups.
 */


static void ngx_http_llm_fallback_json_cleanup(void *data);


/* parameter names that say their value is a secret, in lowercase */

static ngx_str_t  ngx_http_llm_fallback_secret_names[] = {
    ngx_string("key"),
    ngx_string("pass"),
    ngx_string("secret"),
    ngx_string("token"),
    ngx_null_string
};


static ngx_str_t  ngx_http_llm_fallback_redacted = ngx_string("[redacted]");


ngx_int_t
ngx_http_llm_fallback_json_keep(ngx_pool_t *pool, json_t *json)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_llm_fallback_json_cleanup;
    cln->data = json;

    return NGX_OK;
}


static void
ngx_http_llm_fallback_json_cleanup(void *data)
{
    json_decref(data);
}


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
 * A parameter as configuration errors print it: the value of one whose
 * name contains "key", "pass", "secret" or "token", in any case, is
 * replaced, so that a misspelt "api_key=" or "password=" never prints
 * the secret (nginx -t output ends up in CI logs and tickets).
 */

ngx_str_t *
ngx_http_llm_fallback_conf_param(ngx_conf_t *cf, ngx_str_t *value)
{
    u_char      *eq, *p;
    ngx_str_t   *s, *w;

    eq = ngx_strlchr(value->data, value->data + value->len, '=');

    if (eq == NULL || eq + 1 == value->data + value->len) {
        return value;
    }

    for (w = ngx_http_llm_fallback_secret_names; w->len; w++) {
        if (ngx_strlcasestrn(value->data, eq, w->data, w->len - 1)) {
            break;
        }
    }

    if (w->len == 0) {
        return value;
    }

    s = ngx_palloc(cf->temp_pool, sizeof(ngx_str_t));
    if (s == NULL) {
        return &ngx_http_llm_fallback_redacted;
    }

    s->len = eq + 1 - value->data + ngx_http_llm_fallback_redacted.len;

    s->data = ngx_pnalloc(cf->temp_pool, s->len);
    if (s->data == NULL) {
        return &ngx_http_llm_fallback_redacted;
    }

    p = ngx_cpymem(s->data, value->data, eq + 1 - value->data);
    ngx_memcpy(p, ngx_http_llm_fallback_redacted.data,
               ngx_http_llm_fallback_redacted.len);

    return s;
}


ngx_http_llm_fallback_provider_t *
ngx_http_llm_fallback_find_provider(ngx_http_llm_fallback_main_conf_t *lmcf,
    u_char *name, size_t len)
{
    ngx_uint_t                         i;
    ngx_http_llm_fallback_provider_t  *p;

    p = lmcf->providers.elts;

    for (i = 0; i < lmcf->providers.nelts; i++) {
        if (p[i].name.len == len
            && ngx_strncmp(p[i].name.data, name, len) == 0)
        {
            return &p[i];
        }
    }

    return NULL;
}


/*
 * An answer over llm_max_response_size is not read to its end (it may
 * never end): the attempt's upstream stops reading and closes the
 * provider connection as soon as it regains control.  An error returned
 * from the body filter would do that too, but nginx then marks the
 * client connection as failed.
 */

void
ngx_http_llm_fallback_stop_upstream(ngx_http_request_t *r)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    if (u == NULL) {
        return;
    }

    if (u->buffering) {
        if (u->pipe) {
            u->pipe->upstream_error = 1;
        }

        return;
    }

    u->length = 0;
    u->keepalive = 0;
}
