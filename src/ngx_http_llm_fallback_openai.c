
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_module.h"


static ngx_int_t ngx_http_llm_fallback_openai_create_request(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_openai_parse_response(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body, ngx_http_llm_fallback_result_t *res);
static json_t *ngx_http_llm_fallback_openai_parse_error(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_openai_usable(json_t *root);


ngx_http_llm_fallback_format_t  ngx_http_llm_fallback_format_openai = {
    ngx_string("openai"),
    NGX_HTTP_LLM_FALLBACK_FORMAT_OPENAI,
    ngx_string("Authorization"),
    ngx_string("Bearer "),
    ngx_http_llm_fallback_openai_create_request,
    ngx_http_llm_fallback_openai_parse_response,
    ngx_http_llm_fallback_openai_parse_error,
    NULL
};


static ngx_int_t
ngx_http_llm_fallback_openai_create_request(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body)
{
    json_t     *model;
    ngx_str_t  *m;

    m = p->model.len ? &p->model : &ctx->client_model;

    /* the client's own bytes, when nothing has to change */

    if (m->len == ctx->client_model.len
        && ngx_strncmp(m->data, ctx->client_model.data, m->len) == 0)
    {
        *body = ctx->body;
        return NGX_OK;
    }

    if (ctx->body_format == p->format
        && ctx->body_model.len == m->len
        && ngx_strncmp(ctx->body_model.data, m->data, m->len) == 0)
    {
        *body = ctx->provider_body;
        return NGX_OK;
    }

    if (m->len) {
        model = json_stringn((char *) m->data, m->len);
        if (model == NULL) {
            return NGX_ERROR;
        }

        if (json_object_set_new(ctx->json, "model", model) != 0) {
            return NGX_ERROR;
        }

    } else {
        (void) json_object_del(ctx->json, "model");
    }

    if (ngx_http_llm_fallback_dump(ctx->request->pool, ctx->json, body)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->body_format = p->format;
    ctx->body_model = *m;
    ctx->provider_body = *body;

    return NGX_OK;
}


static ngx_int_t
ngx_http_llm_fallback_openai_parse_response(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body,
    ngx_http_llm_fallback_result_t *res)
{
    u_char        id[sizeof("chatcmpl-") - 1 + 24];
    json_t       *root, *v, *usage;
    ngx_str_t    *m;
    ngx_uint_t    changed;
    json_error_t  jerr;

    root = json_loadb((char *) body->data, body->len, 0, &jerr);
    if (root == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_llm_fallback_json_keep(ctx->request->pool, root) != NGX_OK) {
        json_decref(root);
        return NGX_ERROR;
    }

    if (!ngx_http_llm_fallback_openai_usable(root)) {
        return NGX_DECLINED;
    }

    changed = 0;

    v = json_object_get(root, "model");

    if (!json_is_string(v) || json_string_length(v) == 0) {
        m = p->model.len ? &p->model : &ctx->client_model;

        v = m->len ? json_stringn((char *) m->data, m->len) : json_string("");

        if (json_object_set_new(root, "model", v) != 0)
        {
            return NGX_ERROR;
        }

        v = json_object_get(root, "model");
        changed = 1;
    }

    res->model.data = (u_char *) json_string_value(v);
    res->model.len = json_string_length(v);

    if (!json_is_string(json_object_get(root, "id"))) {
        ngx_sprintf(id, "chatcmpl-%08xD%08xD%08xD",
                    (uint32_t) ngx_random(), (uint32_t) ngx_random(),
                    (uint32_t) ngx_random());

        if (json_object_set_new(root, "id",
                                json_stringn((char *) id, sizeof(id)))
            != 0)
        {
            return NGX_ERROR;
        }

        changed = 1;
    }

    v = json_object_get(root, "object");

    if (!json_is_string(v)
        || ngx_strcmp(json_string_value(v), "chat.completion") != 0)
    {
        if (json_object_set_new(root, "object",
                                json_string("chat.completion"))
            != 0)
        {
            return NGX_ERROR;
        }

        changed = 1;
    }

    if (!json_is_integer(json_object_get(root, "created"))) {
        if (json_object_set_new(root, "created", json_integer(ngx_time()))
            != 0)
        {
            return NGX_ERROR;
        }

        changed = 1;
    }

    usage = json_object_get(root, "usage");

    v = json_object_get(usage, "prompt_tokens");
    res->prompt_tokens = json_is_integer(v) ? json_integer_value(v) : -1;

    v = json_object_get(usage, "completion_tokens");
    res->completion_tokens = json_is_integer(v) ? json_integer_value(v) : -1;

    res->json = root;

    if (!changed) {
        res->body = *body;
        return NGX_OK;
    }

    return ngx_http_llm_fallback_dump(ctx->request->pool, root, &res->body);
}


static ngx_int_t
ngx_http_llm_fallback_openai_usable(json_t *root)
{
    json_t  *choices, *choice, *message, *v;

    if (!json_is_object(root)) {
        return 0;
    }

    choices = json_object_get(root, "choices");

    if (!json_is_array(choices) || json_array_size(choices) == 0) {
        return 0;
    }

    choice = json_array_get(choices, 0);
    message = json_object_get(choice, "message");

    if (!json_is_object(message)) {
        return 0;
    }

    if (json_is_string(json_object_get(message, "content"))) {
        return 1;
    }

    v = json_object_get(message, "tool_calls");

    if (json_is_array(v) && json_array_size(v) > 0) {
        return 1;
    }

    return json_is_string(json_object_get(message, "refusal"));
}


static json_t *
ngx_http_llm_fallback_openai_parse_error(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_str_t *body)
{
    json_t        *root, *error;
    json_error_t   jerr;

    root = json_loadb((char *) body->data, body->len, 0, &jerr);
    if (root == NULL) {
        return NULL;
    }

    if (ngx_http_llm_fallback_json_keep(ctx->request->pool, root) != NGX_OK) {
        json_decref(root);
        return NULL;
    }

    error = json_object_get(root, "error");

    if (json_is_object(error)
        && json_is_string(json_object_get(error, "message")))
    {
        return error;
    }

    return NULL;
}
