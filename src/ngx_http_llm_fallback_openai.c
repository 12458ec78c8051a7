
/*
 * Copyright (C) The ngx_http_llm_fallback_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_llm_fallback_common.h"


static ngx_int_t ngx_http_llm_fallback_openai_create_request(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_openai_parse_response(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body, ngx_http_llm_fallback_result_t *res);
static json_t *ngx_http_llm_fallback_openai_parse_error(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_llm_fallback_openai_complete(
    ngx_http_llm_fallback_ctx_t *ctx, ngx_http_llm_fallback_provider_t *p,
    ngx_str_t *body, ngx_http_llm_fallback_result_t *res);


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
    json_t     *json, *model;
    ngx_str_t  *m;

    m = p->model.len ? &p->model : &ctx->client_model;

    /* the client's own bytes, when nothing has to change */

    if (ctx->native_json == NULL
        && m->len == ctx->client_model.len
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

    json = ngx_http_llm_fallback_request_json(ctx);
    if (json == NULL) {
        return NGX_ERROR;
    }

    if (m->len) {
        model = json_stringn((char *) m->data, m->len);
        if (model == NULL) {
            return NGX_ERROR;
        }

        if (json_object_set_new(json, "model", model) != 0) {
            return NGX_ERROR;
        }

    } else {
        (void) json_object_del(json, "model");
    }

    if (ngx_http_llm_fallback_dump(ctx->request->pool, json, body)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->body_format = p->format;
    ctx->body_model = *m;
    ctx->provider_body = *body;

    return NGX_OK;
}


/*
 * The answer is scanned, not parsed into a tree: when it is usable and
 * complete, its bytes are the result as they are.
 */

static ngx_int_t
ngx_http_llm_fallback_openai_parse_response(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body,
    ngx_http_llm_fallback_result_t *res)
{
    int                                      rc;
    ngx_http_llm_fallback_json_t             json;
    ngx_http_llm_fallback_json_completion_t  c;

    rc = ngx_http_llm_fallback_json_parse(&json, body->data, body->len,
                                          ngx_http_llm_fallback_json_palloc,
                                          ctx->request->pool);

    if (rc == NGX_HTTP_LLM_FALLBACK_JSON_NOMEM) {
        return NGX_ERROR;
    }

    if (rc != NGX_HTTP_LLM_FALLBACK_JSON_OK) {
        return NGX_DECLINED;
    }

    ngx_http_llm_fallback_json_completion(&json, &c);

    if (!c.usable) {
        return NGX_DECLINED;
    }

    res->prompt_tokens = (ngx_int_t) c.prompt_tokens;
    res->completion_tokens = (ngx_int_t) c.completion_tokens;

    if (c.model == NGX_HTTP_LLM_FALLBACK_JSON_NONE
        || !c.has_id || !c.has_object || !c.has_created || !c.shaped)
    {
        return ngx_http_llm_fallback_openai_complete(ctx, p, body, res);
    }

    if (ngx_http_llm_fallback_json_tok_str(ctx->request->pool,
                                           &json.toks[c.model], &res->model)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    res->json = NULL;
    res->body = *body;

    return NGX_OK;
}


/*
 * a usable answer without model, id, object or created, or a choice
 * without "logprobs" or "refusal" in its message (compatible servers
 * leave them out, OpenAI's schema requires them): they are added, null
 * for the last two
 */

static ngx_int_t
ngx_http_llm_fallback_openai_complete(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_http_llm_fallback_provider_t *p, ngx_str_t *body,
    ngx_http_llm_fallback_result_t *res)
{
    u_char      id[sizeof("chatcmpl-") - 1 + 24];
    size_t      i;
    json_t     *root, *v, *choice, *message;
    ngx_str_t  *m;

    root = ngx_http_llm_fallback_json_load(ctx->request->pool, body);
    if (root == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_llm_fallback_json_keep(ctx->request->pool, root) != NGX_OK) {
        json_decref(root);
        return NGX_ERROR;
    }

    v = json_object_get(root, "model");

    if (!json_is_string(v) || json_string_length(v) == 0) {
        m = p->model.len ? &p->model : &ctx->client_model;

        v = m->len ? json_stringn((char *) m->data, m->len) : json_string("");

        if (json_object_set_new(root, "model", v) != 0) {
            return NGX_ERROR;
        }

        v = json_object_get(root, "model");
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
    }

    if (!json_is_integer(json_object_get(root, "created"))) {
        if (json_object_set_new(root, "created", json_integer(ngx_time()))
            != 0)
        {
            return NGX_ERROR;
        }
    }

    json_array_foreach(json_object_get(root, "choices"), i, choice) {
        if (!json_is_object(choice)) {
            continue;
        }

        if (json_object_get(choice, "logprobs") == NULL
            && json_object_set_new(choice, "logprobs", json_null()) != 0)
        {
            return NGX_ERROR;
        }

        message = json_object_get(choice, "message");

        if (json_is_object(message)
            && json_object_get(message, "refusal") == NULL
            && json_object_set_new(message, "refusal", json_null()) != 0)
        {
            return NGX_ERROR;
        }
    }

    res->json = root;

    return ngx_http_llm_fallback_dump(ctx->request->pool, root, &res->body);
}


static json_t *
ngx_http_llm_fallback_openai_parse_error(ngx_http_llm_fallback_ctx_t *ctx,
    ngx_str_t *body)
{
    json_t  *root, *error;

    root = ngx_http_llm_fallback_json_load(ctx->request->pool, body);
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
