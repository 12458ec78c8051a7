
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


#define NGX_HTTP_LLM_FALLBACK_VAR_PROVIDER           0
#define NGX_HTTP_LLM_FALLBACK_VAR_MODEL              1
#define NGX_HTTP_LLM_FALLBACK_VAR_ATTEMPTS           2
#define NGX_HTTP_LLM_FALLBACK_VAR_REASONS            3
#define NGX_HTTP_LLM_FALLBACK_VAR_PROMPT_TOKENS      4
#define NGX_HTTP_LLM_FALLBACK_VAR_COMPLETION_TOKENS  5
#define NGX_HTTP_LLM_FALLBACK_VAR_TTFT               6
#define NGX_HTTP_LLM_FALLBACK_VAR_CACHE_STATUS       7
#define NGX_HTTP_LLM_FALLBACK_VAR_REQUEST_MODEL      8


static ngx_int_t ngx_http_llm_fallback_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_llm_fallback_variable_int(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_int_t n);
static ngx_int_t ngx_http_llm_fallback_provider_model_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_llm_fallback_gemini_method_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_llm_fallback_vars[] = {

    { ngx_string("llm_provider"), NULL, ngx_http_llm_fallback_variable,
      NGX_HTTP_LLM_FALLBACK_VAR_PROVIDER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_model"), NULL, ngx_http_llm_fallback_variable,
      NGX_HTTP_LLM_FALLBACK_VAR_MODEL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_attempts"), NULL, ngx_http_llm_fallback_variable,
      NGX_HTTP_LLM_FALLBACK_VAR_ATTEMPTS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_fallback_reasons"), NULL,
      ngx_http_llm_fallback_variable,
      NGX_HTTP_LLM_FALLBACK_VAR_REASONS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_prompt_tokens"), NULL, ngx_http_llm_fallback_variable,
      NGX_HTTP_LLM_FALLBACK_VAR_PROMPT_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_completion_tokens"), NULL,
      ngx_http_llm_fallback_variable,
      NGX_HTTP_LLM_FALLBACK_VAR_COMPLETION_TOKENS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_ttft"), NULL, ngx_http_llm_fallback_variable,
      NGX_HTTP_LLM_FALLBACK_VAR_TTFT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_cache_status"), NULL, ngx_http_llm_fallback_variable,
      NGX_HTTP_LLM_FALLBACK_VAR_CACHE_STATUS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /*
     * not cacheable, so that a map of it, read by a chain variable once
     * the body is read, sees the model (a map read earlier keeps its
     * first value unless it is "volatile")
     */
    { ngx_string("llm_request_model"), NULL, ngx_http_llm_fallback_variable,
      NGX_HTTP_LLM_FALLBACK_VAR_REQUEST_MODEL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_provider_model"), NULL,
      ngx_http_llm_fallback_provider_model_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("llm_gemini_method"), NULL,
      ngx_http_llm_fallback_gemini_method_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_llm_fallback_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_llm_fallback_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                        *s;
    ngx_http_llm_fallback_ctx_t      *ctx;
    ngx_http_llm_fallback_attempt_t  *a;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_llm_fallback_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = NULL;

    switch (data) {

    case NGX_HTTP_LLM_FALLBACK_VAR_PROVIDER:

        if (ctx->served) {
            s = &ctx->served->name;

        } else if (ctx->attempts.nelts) {
            a = ctx->attempts.elts;
            s = &a[ctx->attempts.nelts - 1].provider->name;
        }

        break;

    case NGX_HTTP_LLM_FALLBACK_VAR_MODEL:
        s = ctx->has_result ? &ctx->result.model : NULL;
        break;

    case NGX_HTTP_LLM_FALLBACK_VAR_ATTEMPTS:
        return ngx_http_llm_fallback_variable_int(r, v, ctx->tries);

    case NGX_HTTP_LLM_FALLBACK_VAR_REASONS:
        s = ngx_http_llm_fallback_reasons(ctx);
        break;

    case NGX_HTTP_LLM_FALLBACK_VAR_PROMPT_TOKENS:
        return ngx_http_llm_fallback_variable_int(r, v,
                                                 ctx->result.prompt_tokens);

    case NGX_HTTP_LLM_FALLBACK_VAR_COMPLETION_TOKENS:
        return ngx_http_llm_fallback_variable_int(r, v,
                                             ctx->result.completion_tokens);

    case NGX_HTTP_LLM_FALLBACK_VAR_TTFT:
        return ngx_http_llm_fallback_variable_int(r, v,
                   ctx->has_result ? (ngx_int_t) ctx->ttft : -1);

    case NGX_HTTP_LLM_FALLBACK_VAR_REQUEST_MODEL:
        s = &ctx->client_model;
        break;

    default: /* NGX_HTTP_LLM_FALLBACK_VAR_CACHE_STATUS */
        s = &ctx->cache_status;
        break;
    }

    if (s == NULL || s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = s->len;
    v->data = s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_variable_int(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_int_t n)
{
    u_char  *p;

    if (n < 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = ngx_sprintf(p, "%i", n) - p;
    v->data = p;

    return NGX_OK;
}


/*
 * $llm_provider_model: inside an attempt, the model asked of its
 * provider (model=, else the client's), escaped as a URI component,
 * for a provider location whose URL names the model (Gemini)
 */

static ngx_int_t
ngx_http_llm_fallback_provider_model_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                          *p;
    ngx_str_t                       *m;
    uintptr_t                        escape;
    ngx_http_llm_fallback_sr_ctx_t  *sc;

    sc = ngx_http_llm_fallback_attempt_ctx(r);

    if (sc == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    m = sc->provider->model.len ? &sc->provider->model
                                : &sc->ctx->client_model;

    if (m->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    escape = 2 * ngx_escape_uri(NULL, m->data, m->len,
                                NGX_ESCAPE_URI_COMPONENT);

    if (escape == 0) {
        p = m->data;

    } else {
        p = ngx_pnalloc(r->pool, m->len + escape);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_escape_uri(p, m->data, m->len, NGX_ESCAPE_URI_COMPONENT);
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = m->len + escape;
    v->data = p;

    return NGX_OK;
}


/*
 * $llm_gemini_method: inside an attempt, Gemini's method for it,
 * "streamGenerateContent?alt=sse" for a stream, else "generateContent"
 */

static ngx_int_t
ngx_http_llm_fallback_gemini_method_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_llm_fallback_sr_ctx_t  *sc;

    sc = ngx_http_llm_fallback_attempt_ctx(r);

    if (sc == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (sc->ctx->stream) {
        v->data = (u_char *) "streamGenerateContent?alt=sse";
        v->len = sizeof("streamGenerateContent?alt=sse") - 1;

    } else {
        v->data = (u_char *) "generateContent";
        v->len = sizeof("generateContent") - 1;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}

